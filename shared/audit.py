"""Audit trail: who changed what, and when, written in the same transaction as the change.

A service declares its `audit_entry` table (`make_audit_model`) and names it in its
`ServiceSpec`; a use case calls `record(...)` where it changes the rows. Like the outbox
(`shared.outbox.add_event`), the entry waits in the session's `info` and is inserted just
before the commit: a change refused or rolled back leaves no entry. The manager reads the
branch's entries per object or per person at `GET /audit`; housekeeping deletes entries
older than `audit_retention_days`."""

import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from pydantic_core import to_jsonable_python
from sqlalchemy import JSON, Index, String, event, insert
from sqlalchemy.orm import Session
from sqlmodel import Column, Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.auth import Role, User, require
from shared.driver import DriverStatement, DriverTransaction, Statements, before_commit
from shared.events import utcnow
from shared.pagination import Cursor, Limit, Page, after, page
from shared.problems import InvalidInput
from shared.types import Instant, UTCDateTime

AUDIT_MODEL = "audit_model"
_PENDING = "audit_pending"
# Who changed a row when no person did: an event handler, a timer.
SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who changed it when no signed-in user did: a customer on their approval link, the
    technician an event names."""

    id: str
    name: str


def make_audit_model(base: type[SQLModel]) -> Any:
    """The audit_entry table, declared in the calling service's own metadata."""

    class AuditEntry(base, table=True):  # type: ignore[call-arg,valid-type,misc]
        __tablename__ = "audit_entry"
        __table_args__ = (
            Index("ix_audit_entry_object", "branch", "object_type", "object_id", "at"),
            Index("ix_audit_entry_actor", "branch", "actor_id", "at"),
            Index("ix_audit_entry_branch_at", "branch", "at"),
            Index("ix_audit_entry_at", "at"),  # retention
        )

        id: uuid.UUID = Field(default_factory=ordered_id, primary_key=True)
        at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
        branch: str = Field(sa_column=Column(String(32), nullable=False))
        action: str = Field(sa_column=Column(String(64), nullable=False))
        object_type: str = Field(sa_column=Column(String(40), nullable=False))
        object_id: str = Field(sa_column=Column(String(64), nullable=False))
        actor_id: str = Field(sa_column=Column(String(64), nullable=False))
        actor_name: str = Field(sa_column=Column(String(100), nullable=False))
        changes: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))

    return AuditEntry


_last_ms, _last_tail = 0, 0


def ordered_id() -> uuid.UUID:
    """A UUIDv7 (RFC 9562): the milliseconds first, then a counter, so entries written at
    the same `at` (a set clock, one request's several changes) still list newest first
    (`ORDER BY at DESC, id DESC`) in the order this process wrote them."""
    global _last_ms, _last_tail
    ms = time.time_ns() // 1_000_000
    if ms > _last_ms:
        _last_ms, _last_tail = ms, secrets.randbits(73)  # a bit of headroom for the counter
    else:
        _last_tail += 1
    rand_a, rand_b = _last_tail >> 62, _last_tail & ((1 << 62) - 1)
    return uuid.UUID(int=_last_ms << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b)


def changed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The fields that differ, each as [before, after]."""
    return {
        key: [before.get(key), after.get(key)]
        for key in sorted(before.keys() | after.keys())
        if before.get(key) != after.get(key)
    }


def record(
    session: AsyncSession | Session | Statements,
    *,
    action: str,
    object_type: str,
    object_id: object,
    branch: str,
    actor: User | Actor | None,
    changes: dict[str, Any] | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """Write an audit entry in the session's transaction (inserted just before its commit).

    `changes` is a small JSON of what changed; given `before` and `after` instead, it is
    the fields that differ, each as [before, after]. Nothing changed, nothing is written.
    `actor` None is the system."""
    if AUDIT_MODEL not in session.info:  # found by the first test, not at commit
        raise RuntimeError("the service's Database names no audit model (ServiceSpec)")
    if changes is None:
        changes = changed(before or {}, after or {})
    if not changes:
        return  # an edit that changed nothing (every field as it was) is no change
    session.info.setdefault(_PENDING, []).append(
        {
            "id": ordered_id(),
            "at": at or utcnow(),
            "branch": branch,
            "action": action,
            "object_type": object_type,
            "object_id": str(object_id)[:64],
            "actor_id": actor.id[:64] if actor else SYSTEM,
            "actor_name": actor.name[:100] if actor else SYSTEM,
            "changes": to_jsonable_python(changes),
        }
    )


_INSERTS: dict[Any, DriverStatement] = {}


def _insert(table: Any) -> DriverStatement:
    statement = _INSERTS.get(table)
    if statement is None:
        statement = _INSERTS[table] = DriverStatement(insert(table))
    return statement


@event.listens_for(Session, "before_commit")
def _write_audit(session: Session) -> None:
    pending: list[dict[str, Any]] | None = session.info.pop(_PENDING, None)
    if not pending:
        return
    session.connection().execute(insert(session.info[AUDIT_MODEL].__table__), pending)


@before_commit
async def _write_audit_on_driver(transaction: DriverTransaction) -> None:
    pending: list[dict[str, Any]] | None = transaction.info.pop(_PENDING, None)
    if not pending:
        return
    statement = _insert(transaction.info[AUDIT_MODEL].__table__)
    for row in pending:
        await transaction.execute(statement, row)


@event.listens_for(Session, "after_soft_rollback")
def _forget_audit(session: Session, previous: Any) -> None:
    if not getattr(previous, "nested", False):
        session.info.pop(_PENDING, None)


class AuditEntryPublic(BaseModel):
    id: uuid.UUID
    at: datetime
    branch: str
    action: str
    object_type: str
    object_id: str
    actor_id: str
    actor_name: str
    changes: dict[str, Any]


async def _reader(request: Request) -> Any:
    async with request.app.state.runtime.db.reader() as session:
        yield session


Auditor = Annotated[User, Depends(require(Role.manager, Role.admin))]


def audit_router(model: Any) -> APIRouter:
    """`GET /audit`: the branch's audit entries, newest first, for managers and admins."""
    router = APIRouter(tags=["audit"])

    @router.get(
        "/audit",
        response_model=Page[AuditEntryPublic],
        summary="Who changed what, and when, in your branch: per object or per person, newest "
        "first",
    )
    async def list_audit_entries(
        session: Annotated[AsyncSession, Depends(_reader, scope="function")],
        user: Auditor,
        limit: Limit = 50,
        cursor: Cursor = None,
        object_type: Annotated[str | None, Query(max_length=40)] = None,
        object_id: Annotated[str | None, Query(max_length=64)] = None,
        actor: Annotated[str | None, Query(max_length=64, description="the person's id")] = None,
        since: Annotated[Instant | None, Query(alias="from")] = None,
        until: Annotated[Instant | None, Query(alias="to", description="exclusive")] = None,
    ) -> Any:
        if since is not None and until is not None and until <= since:
            raise InvalidInput("to", "must be after from")
        query = select(model).where(model.branch == user.branch)
        if object_type is not None:
            query = query.where(model.object_type == object_type)
        if object_id is not None:
            query = query.where(model.object_id == object_id)
        if actor is not None:
            query = query.where(model.actor_id == actor)
        if since is not None:
            query = query.where(model.at >= since)
        if until is not None:
            query = query.where(model.at < until)
        query = (
            query.where(after(model.at, model.id, cursor))
            .order_by(model.at.desc(), model.id.desc())
            .limit(limit + 1)
        )
        rows, next_cursor = page(list((await session.exec(query)).all()), limit, "at")
        return Page(
            items=[AuditEntryPublic.model_validate(row, from_attributes=True) for row in rows],
            next_cursor=next_cursor,
        )

    return router
