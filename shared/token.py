"""Print a development token: python -m shared.token --role advisor [--branch BR01]."""

import argparse
import os

from shared.auth import Role, issue_dev_token
from shared.settings import ServiceSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--role", default="advisor", help="comma-separated roles")
    parser.add_argument("--branch", default="BR01")
    parser.add_argument("--sub", default=None)
    parser.add_argument("--name", default=None)
    parser.add_argument("--ttl", type=int, default=12 * 3600, help="seconds")
    args = parser.parse_args()
    roles = [r.strip() for r in args.role.split(",") if r.strip()]
    unknown = [r for r in roles if r not in {x.value for x in Role}]
    if unknown:
        parser.error(f"unknown role(s) {unknown}; known: {', '.join(r.value for r in Role)}")
    secret = os.environ.get("WORKSHOP_JWT_SECRET") or ServiceSettings().jwt_secret
    print(
        issue_dev_token(
            secret, role=roles, branch=args.branch, sub=args.sub, name=args.name, ttl=args.ttl
        )
    )


if __name__ == "__main__":
    main()
