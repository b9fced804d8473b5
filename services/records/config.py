"""Records's settings, read from RECORDS_* environment variables."""

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RECORDS_", extra="ignore")

    service_name: str = "records"
    database_url: str = "sqlite+aiosqlite:///var/records.db"
