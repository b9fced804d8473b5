"""Workorders's settings, read from WORKORDERS_* environment variables."""

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="WORKORDERS_", extra="ignore")

    service_name: str = "workorders"
    database_url: str = "sqlite+aiosqlite:///var/workorders.db"
