"""`python -m shared.alembic_cli SERVICE alembic-args...`: alembic for one service,
with its migrations folder and its configured database URL."""

import importlib
import sys
from pathlib import Path

from alembic.config import CommandLine

from shared.migrations import alembic_config


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit("usage: python -m shared.alembic_cli SERVICE ALEMBIC-ARGS (e.g. upgrade head)")
    service = sys.argv[1]
    settings = importlib.import_module(f"services.{service}.config").Settings()
    here = Path(importlib.import_module(f"services.{service}").__file__ or ".").parent
    config = alembic_config(here / "migrations", settings.database_url)
    cli = CommandLine(prog=f"alembic ({service})")
    options = cli.parser.parse_args(sys.argv[2:])
    cli.run_cmd(config, options)


if __name__ == "__main__":
    main()
