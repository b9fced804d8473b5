"""Keyset (cursor) pagination: stable under inserts, bounded, index-friendly."""

import base64
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import and_, or_

from shared.problems import InvalidInput
from shared.types import FIRST_YEAR, LAST_YEAR

T = TypeVar("T")

MAX_LIMIT = 200


class Page(BaseModel, Generic[T]):
    """Every list answers this shape; `next_cursor` is null on the last page (and always on
    a list that is bounded by nature, e.g. a day's appointments)."""

    items: list[T]
    next_cursor: str | None = None


def whole(items: list[T]) -> Page[T]:
    """A bounded list: one page, no cursor."""
    return Page(items=items, next_cursor=None)


def encode_cursor(at: datetime, row_id: object) -> str:
    raw = orjson.dumps([at.isoformat(), str(row_id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, key: Callable[[str], Any] = uuid.UUID) -> tuple[datetime, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at_text, row_id = orjson.loads(base64.urlsafe_b64decode(padded))
        at = datetime.fromisoformat(at_text)
        # A made-up cursor is a time the request carries: without an offset, or in year 1,
        # it failed only when the database bound it (500).
        if at.tzinfo is None or not FIRST_YEAR <= at.year <= LAST_YEAR:
            raise ValueError(at_text)
        if not isinstance(row_id, str):
            raise ValueError(row_id)
        return at, key(row_id)
    except Exception as exc:
        raise InvalidInput("cursor", "not a cursor this service issued") from exc


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")]
Cursor = Annotated[
    str | None, Query(max_length=200, description="next_cursor of the previous page")
]


def after(
    at_column: Any, id_column: Any, cursor: str | None, key: Callable[[str], Any] = uuid.UUID
) -> Any:
    """Condition for rows after the cursor, newest first (order by at desc, id desc)."""
    if cursor is None:
        return True
    at, row_id = decode_cursor(cursor, key)
    return or_(at_column < at, and_(at_column == at, id_column < row_id))


def page(rows: list[Any], limit: int, at: str, key: str = "id") -> tuple[list[Any], str | None]:
    """Cut a limit+1 fetch to `limit` rows and make the cursor for the next page."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, encode_cursor(getattr(last, at), getattr(last, key))
