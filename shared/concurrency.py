"""ETag / If-Match for resources edited from several tablets: a stale write gets 412.

A table adds `version: int` and maps it as SQLAlchemy's version counter
(`__mapper_args__ = {"version_id_col": ...}`), so even two writers that both passed the
If-Match check cannot both commit: the second UPDATE matches no row and fails.
"""

from typing import Annotated

from fastapi import Header, Response

from shared.problems import DomainError, PreconditionFailed

IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=100)]


class PreconditionRequired(DomainError):
    status, slug, title = 428, "precondition-required", "If-Match header required"


def etag(version: int) -> str:
    return f'"{version}"'


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = etag(version)


def check_if_match(if_match: str | None, version: int, *, required: bool = True) -> None:
    """Refuse a write based on a version other than the current one."""
    if if_match is None:
        if required:
            raise PreconditionRequired("send the ETag you read in If-Match")
        return
    if if_match.strip() == "*":
        return
    tags = {t.strip().removeprefix("W/") for t in if_match.split(",")}
    if etag(version) not in tags:
        raise PreconditionFailed(
            f"the resource is at version {version}; reload it and apply your change again",
            current_etag=etag(version),
        )
