"""CloudEvents 1.0 envelope and the base class of every event contract.

A contract is the `data` of one event type. Its subject names the producer, the
aggregate and the event, `<service>.<aggregate>.<event>.v<N>`; the producer's stream is
derived from the first segment, so a producer and its consumers cannot disagree.
"""

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

import orjson
from pydantic import BaseModel, ConfigDict, PrivateAttr

from shared import tracing

SPECVERSION = "1.0"
DEAD_LETTER_STREAM = "DEADLETTER"
DEAD_LETTER_PREFIX = "deadletter"
# A dead letter sent again (shared/deadletters.py) is for the one consumer that failed it;
# every other consumer of the subject acknowledges it unread.
REPLAY_FOR = "Workshop-Replay-For"

CONTRACTS: dict[str, type["Contract"]] = {}
RESERVED_FIELDS = frozenset(
    {"type", "source", "stream", "envelope", "to_envelope", "from_envelope"}
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def stream_name(service: str) -> str:
    """One stream per producing service: reception -> RECEPTION, subjects reception.>"""
    return service.upper()


class Envelope(BaseModel):
    """The CloudEvents attributes around a contract's data."""

    model_config = ConfigDict(frozen=True)

    id: str
    source: str
    type: str
    specversion: str = SPECVERSION
    time: datetime
    subject: str
    datacontenttype: str = "application/json"
    data: dict[str, Any]
    # CloudEvents' distributed tracing extension: the trace the event was written in
    # (shared/tracing.py); absent when tracing is off.
    traceparent: str | None = None
    tracestate: str | None = None


class Contract(BaseModel):
    """Base of every event's data. Subclasses set `type`, e.g. "reception.intake.opened.v1".

    Contracts only ever gain optional fields; a breaking change is a new `.vN` class.
    Unknown fields from newer producers are ignored by older consumers.
    """

    model_config = ConfigDict(extra="ignore")

    type: ClassVar[str]
    _envelope: Envelope | None = PrivateAttr(default=None)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        event_type = cls.__dict__.get("type")
        if event_type:
            parts = event_type.split(".")
            if len(parts) != 4 or not parts[3].startswith("v"):
                raise ValueError(f"event type {event_type!r} is not service.aggregate.event.vN")
            if event_type in CONTRACTS:
                raise ValueError(f"event type {event_type!r} declared twice")
            CONTRACTS[event_type] = cls

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        clash = RESERVED_FIELDS.intersection(cls.model_fields)
        if clash:
            raise TypeError(
                f"{cls.__name__}: field(s) {sorted(clash)} would hide the contract's "
                "own attributes; name them otherwise"
            )

    @classmethod
    def source(cls) -> str:
        return cls.type.split(".", 1)[0]

    @classmethod
    def stream(cls) -> str:
        return stream_name(cls.source())

    @property
    def envelope(self) -> Envelope:
        """The envelope this event arrived in (set by the consumer runner)."""
        if self._envelope is None:
            raise RuntimeError("event has no envelope: it was not received from a stream")
        return self._envelope

    def to_envelope(self, *, subject: str, event_id: str | None = None) -> Envelope:
        return Envelope(
            id=event_id or str(uuid.uuid4()),
            source=self.source(),
            type=self.type,
            time=utcnow(),
            subject=subject,
            data=self.model_dump(mode="json"),
            **tracing.event_context(),
        )

    @classmethod
    def from_envelope(cls, envelope: Envelope) -> Self:
        event = cls.model_validate(envelope.data)
        event._envelope = envelope
        return event


def encode(envelope: Envelope) -> bytes:
    attributes = envelope.model_dump(mode="json")
    for name in _TRACING:
        if attributes[name] is None:
            del attributes[name]
    return orjson.dumps(attributes)


_TRACING = ("traceparent", "tracestate")


def decode(payload: bytes) -> Envelope:
    return Envelope.model_validate(orjson.loads(payload))
