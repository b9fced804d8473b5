"""Ids in a request that name another object of the same service: a create or an update
may point only at the caller's branch's objects."""

import uuid
from typing import Any, Protocol, TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession

from shared.auth import User
from shared.problems import InvalidInput


class _Branched(Protocol):
    branch: Any


T = TypeVar("T", bound=_Branched)


async def referenced(
    session: AsyncSession,
    model: type[T],
    object_id: uuid.UUID,
    by: User,
    *,
    field: str,
    what: str | None = None,
) -> T:
    """The `model` row `object_id` of the caller's branch; 422 naming `field` when there is
    none. Another branch's object is answered exactly like an unknown one, so an id says
    nothing about another branch."""
    row = await session.get(model, object_id)
    if row is None or row.branch != by.branch:
        what = what or model.__tablename__.replace("_", " ")  # type: ignore[attr-defined]
        raise InvalidInput(field, f"no {what} {object_id} in branch {by.branch}")
    return row
