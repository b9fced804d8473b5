"""Reception's settings, read from RECEPTION_* environment variables."""

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RECEPTION_", extra="ignore")

    service_name: str = "reception"
    database_url: str = "sqlite+aiosqlite:///var/reception.db"
