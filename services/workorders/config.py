"""Workorders's settings, read from WORKORDERS_* environment variables."""

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="WORKORDERS_", extra="ignore")

    service_name: str = "workorders"
    database_url: str = "sqlite+aiosqlite:///var/workorders.db"
    # The branch's clock for day views (dispatch board, productivity).
    time_zone: str = "Asia/Shanghai"
    # Hours a technician is available per day, the base of utilisation.
    shift_hours: float = 8.0
    # Promise-time control: how often every open order is projected, how close to the
    # promise counts as at risk, and the time QC and hand-over take after the last job.
    promise_check_interval: float = 60.0
    at_risk_margin_minutes: int = 30
    finish_buffer_minutes: int = 30
