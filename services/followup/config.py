"""Followup's settings, read from FOLLOWUP_* environment variables."""

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FOLLOWUP_", extra="ignore")

    service_name: str = "followup"
    database_url: str = "sqlite+aiosqlite:///var/followup.db"
