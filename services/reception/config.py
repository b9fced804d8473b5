"""Reception's settings, read from RECEPTION_* environment variables."""

from decimal import Decimal

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RECEPTION_", extra="ignore")

    service_name: str = "reception"
    database_url: str = "sqlite+aiosqlite:///var/reception.db"

    # Value-added tax on estimates (China's standard rate); each revision keeps the rate
    # it was priced with.
    tax_rate: Decimal = Decimal("0.13")
    currency: str = "CNY"
    # The customer approval link: how long it lives and how often it may be tried.
    approval_link_ttl_minutes: int = 60
    # Per client address (an IPv6 client's /64) and minute on the approval pages: uses of
    # any link, and failures (tokens that open no link, dead links), beyond which a 429.
    approval_link_uses_per_minute: int = 60
    approval_link_failures_per_minute: int = 10
    public_base_url: str = "http://127.0.0.1:8001"
    # Printed at the top of every intake sheet and estimate.
    dealer_name: str = "Workshop"
    # Appointments: days are the branch's local days; a day without its own capacity row
    # offers this many bays and technician hours.
    time_zone: str = "Asia/Shanghai"
    default_bays: int = 6
    default_technician_hours: Decimal = Decimal("48")
    # A bay holds one car at a time: a day books at most bays × these hours.
    bay_hours_per_day: Decimal = Decimal("9")
    # Records keeps intake photos and signatures; reception asks it, with the advisor's
    # own token, to keep each file an intake refers to.
    records_url: str = "http://127.0.0.1:8004"
    records_timeout_seconds: float = 5.0
    # Photos and signatures dropped from an intake: records is told right after the change;
    # what it did not take is tried again this often (with backoff per release).
    file_release_interval_seconds: float = 30.0
