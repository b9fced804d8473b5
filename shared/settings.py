"""Settings every service shares; each service subclasses with its own env prefix."""

from datetime import date

from pydantic import Field, PrivateAttr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Read from the environment with the service's prefix, e.g. RECEPTION_DATABASE_URL."""

    model_config = SettingsConfigDict(extra="ignore")

    service_name: str = "service"
    database_url: str = "sqlite+aiosqlite:///var/service.db"
    # PostgreSQL connections: kept open, and opened beyond that for a spike. A request holds
    # one from its first statement to its commit: with fewer than the requests in flight
    # the rest queue for a whole transaction (32 technicians clocking at once on 20 + 10:
    # p99 1.5 times higher), and overflow connections are closed and opened again all the
    # time under sustained load (20 + 20: p99 250 ms where 40 kept gives 110-150).
    database_pool_size: int = 40
    database_max_overflow: int = 10
    # One server, or a cluster's nodes comma-separated: the client connects to one that
    # answers and moves to another when it goes away.
    nats_url: str = "nats://127.0.0.1:4223"
    # The first connection is retried in the background; the service answers meanwhile.
    nats_connect_backoff_max: float = 5.0

    jwt_secret: str = "dev-secret-change-me-at-least-32-bytes!"
    jwt_algorithms: list[str] = Field(default_factory=lambda: ["HS256"])
    jwt_jwks_url: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None

    # OpenTelemetry traces exported by OTLP/HTTP here (e.g.
    # http://otel-collector:4318/v1/traces); unset, tracing is off (shared/tracing.py).
    otlp_endpoint: str | None = None

    auto_migrate: bool = True
    echo_sql: bool = False
    log_level: str = "INFO"
    max_body_bytes: int = 1_048_576

    relay_batch: int = 200
    relay_poll_interval: float = 1.0
    # While publishing fails the relay tries the oldest row alone, at most this far apart:
    # how late it may notice that a new stream leader answers.
    relay_backoff_max: float = 0.5
    # Covers the relay's retry horizon: a row published but not yet marked sent is
    # published again after a crash, and the server drops the copy within this window.
    stream_duplicate_window: float = 24 * 3600.0
    # Copies of each stream: 1 on a single server, 3 on a three-node cluster (JetStream keeps
    # at most 5). Refused here rather than by the server, which would leave /readyz failing.
    stream_replicas: int = Field(default=1, ge=1, le=5)

    consumer_batch: int = 64
    consumer_fetch_timeout: float = 2.0
    consumer_max_deliver: int = 6
    consumer_backoff: list[float] = Field(default_factory=lambda: [1.0, 5.0, 30.0, 120.0, 600.0])
    # Unacked messages (a process that died mid-batch) come back after this long.
    consumer_ack_wait: float = 30.0

    # Housekeeping: sent outbox rows, inbox rows and idempotency records past these ages
    # are deleted. The inbox must outlive any redelivery (JetStream keeps messages it could
    # still redeliver); a week is far beyond the consumer's backoff.
    outbox_keep_days: float = 7.0
    inbox_keep_days: float = 30.0
    idempotency_keep_hours: float = 24.0
    housekeeping_interval: float = 3600.0
    # Audit entries (who changed what, and when: `shared.audit`) older than this are deleted
    # by housekeeping; ten years by default, what a dealership keeps its books for.
    audit_retention_days: float = Field(default=3650.0, gt=0)

    # The branch calendar (`shared.calendar`): working days of the branch's region (a
    # country, or country-subdivision, as the `holidays` package names it), the region's
    # public holidays and make-up working days for a year the installed `holidays` release
    # does not hold yet (region → days, from the government's notice), each branch's own
    # closing days (branch → days; "*" for every branch), and opening hours on the local
    # clock (`business_hours`: branch → [opens, closes] when it differs).
    calendar_region: str = "CN"
    calendar_branch_regions: dict[str, str] = Field(default_factory=dict)
    calendar_holidays: dict[str, list[date]] = Field(default_factory=dict)
    calendar_workdays: dict[str, list[date]] = Field(default_factory=dict)
    calendar_closing_days: dict[str, list[date]] = Field(default_factory=dict)
    business_opens_hour: int = Field(default=9, ge=0, le=23)
    business_closes_hour: int = Field(default=18, ge=1, le=24)
    business_hours: dict[str, tuple[int, int]] = Field(default_factory=dict)

    # A branch's time zone from the branch directory's events (`shared.branch_zones`): each
    # process reloads the zones its service has kept this often.
    branch_zone_refresh_seconds: float = Field(default=30.0, gt=0)
    _directory_zones: dict[str, str] = PrivateAttr(default_factory=dict)

    @property
    def directory_zones(self) -> dict[str, str]:
        """Branch → time zone, as the branch directory announced it (empty until then)."""
        return self._directory_zones

    @field_validator("business_hours")
    @classmethod
    def _open_before_closing(cls, value: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
        for branch, (opens, closes) in value.items():
            if not 0 <= opens < closes <= 24:
                raise ValueError(f"{branch}: opens {opens} must be before closes {closes}, 0-24")
        return value

    @field_validator("nats_url")
    @classmethod
    def _names_a_server(cls, value: str) -> str:
        if not _split_urls(value):
            raise ValueError("names no NATS server")
        return value

    @property
    def nats_servers(self) -> list[str]:
        """`nats_url` as the client takes it: one URL per server."""
        return _split_urls(self.nats_url)


def _split_urls(value: str) -> list[str]:
    return [url.strip() for url in value.split(",") if url.strip()]
