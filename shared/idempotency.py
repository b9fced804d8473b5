"""Idempotency-Key for POSTs from tablets on shaky Wi-Fi.

The first answer is stored in the same transaction as the change it reports, so a retry
gets exactly that answer and the change happens once; the same key with another body is
refused with 422. Keys are scoped to the user who sent them and the branch their token was
for: one person working in two branches never gets one branch's answer in the other.
"""

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from functools import cache
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, TypeAdapter
from sqlalchemy import JSON, Column, Integer, String, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.driver import DriverStatement, SessionStatements, Statements
from shared.events import utcnow
from shared.problems import Conflict, InvalidInput
from shared.types import UTCDateTime

IDEMPOTENCY_MODEL = "idempotency_model"
REPLAYED_HEADER = "Idempotent-Replayed"
# An answer that came with an ETag is stored as {_ANSWER: body, _ETAG: tag}, in the body's
# own column (no service needs a migration for it); no response model has these keys.
_ANSWER, _ETAG = "__answer__", "__etag__"


def make_idempotency_model(base: type[SQLModel]) -> Any:
    class IdempotencyRecord(base, table=True):  # type: ignore[call-arg,valid-type,misc]
        __tablename__ = "idempotency_record"

        user_id: str = Field(sa_column=Column(String(64), primary_key=True))
        branch: str = Field(sa_column=Column(String(32), primary_key=True))
        key: str = Field(sa_column=Column(String(200), primary_key=True))
        fingerprint: str = Field(sa_column=Column(String(64), nullable=False))
        status_code: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
        body: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
        created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))

    return IdempotencyRecord


class Idempotency:
    def __init__(
        self,
        session: AsyncSession | Statements,
        user_id: str,
        key: str | None,
        fingerprint: str,
        *,
        branch: str,
    ):
        self.statements: Statements = (
            SessionStatements(session) if isinstance(session, AsyncSession) else session
        )
        self.user_id, self.key, self.fingerprint = user_id, key, fingerprint
        self.branch = branch

    async def stored(self) -> Sequence[Any] | None:
        """The key's record in this scope (fingerprint, status code, body), or None."""
        find = _statements(self.statements.info[IDEMPOTENCY_MODEL].__table__)[0]
        return await self.statements.first(
            find, {"user_id": self.user_id, "branch": self.branch, "key": self.key}
        )

    async def run(
        self,
        work: Callable[[], Awaitable[Any]],
        response_model: type[BaseModel],
        status_code: int = 201,
        *,
        response: Response | None = None,
        replay: Callable[[Any], Awaitable[Any]] | None = None,
    ) -> Any:
        """Do `work` once per key; a retry gets the stored answer. Given the route's
        `response`, the ETag `work` set on it is kept with the answer and sent with every
        retry: the tablet that lost the first answer needs it for its next write.

        An answer that holds something never stored (a secret shown once) stores only
        `response_model`'s part; `replay` then makes a retry's whole answer from that part
        (with `response`, where it sets the ETag), so the retry's body has the same shape
        as the first."""
        if self.key is None:
            return await work()
        find, claim, answer = _statements(self.statements.info[IDEMPOTENCY_MODEL].__table__)
        record = {"user_id": self.user_id, "branch": self.branch, "key": self.key}
        stored = await self.statements.first(find, record)
        if stored is not None:
            fingerprint, stored_status, stored_body = stored
            if fingerprint != self.fingerprint:
                raise InvalidInput("Idempotency-Key", "this key was used with another request body")
            headers = {REPLAYED_HEADER: "true"}
            if isinstance(stored_body, dict) and stored_body.keys() == {_ANSWER, _ETAG}:
                stored_body, headers["ETag"] = stored_body[_ANSWER], stored_body[_ETAG]
            if replay is not None and response is not None:
                response.status_code = stored_status
                response.headers[REPLAYED_HEADER] = "true"
                return await replay(stored_body)
            return JSONResponse(stored_body, status_code=stored_status, headers=headers)
        try:
            await self.statements.execute(
                claim, {**record, "fingerprint": self.fingerprint, "created_at": utcnow()}
            )
        except IntegrityError as exc:
            raise Conflict(
                "a request with this Idempotency-Key is still being processed; retry shortly"
            ) from exc
        result = await work()
        body = _stored_answer(response_model).dump_python(
            response_model.model_validate(result, from_attributes=True), mode="json"
        )
        tag = response.headers.get("etag") if response is not None else None
        if tag is not None:
            body = {_ANSWER: body, _ETAG: tag}
        await self.statements.execute(
            answer,
            {
                "for_user": self.user_id,
                "for_branch": self.branch,
                "for_key": self.key,
                "new_status_code": status_code,
                "new_body": body,
            },
        )
        return result


@cache
def _statements(table: Any) -> tuple[DriverStatement, DriverStatement, DriverStatement]:
    """Find a key's record, claim a key (its primary key refuses a second claim), store the
    answer."""
    find = select(table.c.fingerprint, table.c.status_code, table.c.body).where(
        table.c.user_id == bindparam("user_id"),
        # Records from before keys were scoped by branch too carry an empty branch; they
        # still answer their retries until housekeeping removes them (a day).
        table.c.branch.in_([bindparam("branch"), bindparam("unscoped", "")]),
        table.c.key == bindparam("key"),
    )
    answer = (
        update(table)
        .where(
            table.c.user_id == bindparam("for_user"),
            table.c.branch == bindparam("for_branch"),
            table.c.key == bindparam("for_key"),
        )
        .values(status_code=bindparam("new_status_code"), body=bindparam("new_body"))
    )
    return DriverStatement(find), DriverStatement(insert(table)), DriverStatement(answer)


@cache
def _stored_answer(response_model: type[BaseModel]) -> TypeAdapter[Any]:
    """Dumps exactly `response_model`'s fields: an answer that is an instance of a
    subclass keeps its extra fields through `model_validate`, and a retry must not get (nor
    the table keep) more than the declared answer."""
    return TypeAdapter(response_model)


IdempotencyKey = Annotated[str | None, Header(max_length=200, min_length=1)]


async def _idempotency(
    request: Request, idempotency_key: IdempotencyKey = None
) -> Callable[[AsyncSession | Statements], Idempotency]:
    # Keys are per user and branch: the route's role dependency has authenticated the
    # caller by the time the endpoint runs (a test holds every keyed route to that).
    # Depending on the current user here as well, and hashing the body of a request
    # without a key, cost 4% of a clock-on.
    if idempotency_key is None:
        return lambda session: Idempotency(session, "", None, "", branch="")
    body = await request.body()
    digest = hashlib.sha256(
        request.method.encode() + b" " + request.url.path.encode() + b"\n" + body
    ).hexdigest()

    def keyed(session: AsyncSession | Statements) -> Idempotency:
        user = request.state.user
        return Idempotency(session, user.id, idempotency_key, digest, branch=user.branch)

    return keyed


IdempotencyDep = Annotated[
    Callable[[AsyncSession | Statements], Idempotency], Depends(_idempotency)
]
