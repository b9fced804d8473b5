"""Records's settings, read from RECORDS_* environment variables."""

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings

MIB = 1024 * 1024


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RECORDS_", extra="ignore")

    service_name: str = "records"
    database_url: str = "sqlite+aiosqlite:///var/records.db"

    # Stored files: "local" (the disk under files_dir) or "s3" (an S3-compatible bucket).
    files_backend: str = "local"
    files_dir: str = "var/files/records"
    s3_endpoint_url: str | None = None  # unset: AWS itself
    s3_bucket: str = ""
    s3_region: str | None = None
    s3_access_key_id: str | None = None  # unset: boto3's usual credential chain
    s3_secret_access_key: str | None = None
    s3_prefix: str = ""  # keys start with this, e.g. "records/"
    s3_part_bytes: int = 8 * MIB  # multipart upload part size (S3's minimum is 5 MiB)
    # POST /files streams past the service-wide body limit under this one of its own.
    max_upload_bytes: int = 50 * MIB
    # Files nobody refers to are collected after this long (seconds).
    file_gc_grace_seconds: float = 24 * 3600.0
    file_gc_interval_seconds: float = 3600.0
    # How often loans past their due date are looked for (one reminder per loan per day).
    overdue_check_interval_seconds: float = 900.0
