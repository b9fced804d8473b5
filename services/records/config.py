"""Records's settings, read from RECORDS_* environment variables."""

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings

MIB = 1024 * 1024


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RECORDS_", extra="ignore")

    service_name: str = "records"
    database_url: str = "sqlite+aiosqlite:///var/records.db"

    # Stored files: the local disk is the only backend built so far ("local").
    files_backend: str = "local"
    files_dir: str = "var/files/records"
    # POST /files streams past the service-wide body limit under this one of its own.
    max_upload_bytes: int = 50 * MIB
    # Files nobody refers to are collected after this long (seconds).
    file_gc_grace_seconds: float = 24 * 3600.0
    file_gc_interval_seconds: float = 3600.0
    # How often loans past their due date are looked for (one reminder per loan per day).
    overdue_check_interval_seconds: float = 900.0
