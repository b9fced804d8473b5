"""Followup's settings, read from FOLLOWUP_* environment variables."""

from collections.abc import Callable
from datetime import datetime

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.events import utcnow
from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FOLLOWUP_", extra="ignore")

    service_name: str = "followup"
    database_url: str = "sqlite+aiosqlite:///var/followup.db"

    # The clock every rule reads; tests pass a controllable one.
    clock: Callable[[], datetime] = Field(default=utcnow, exclude=True)

    # Branch time zones; working days and business hours are the branch calendar's
    # (`calendar_*`, `business_*` in shared.settings).
    time_zone: str = "Asia/Shanghai"
    branch_time_zones: dict[str, str] = Field(default_factory=dict)

    # Follow-up visits: due on day N after delivery, open until day M, then expired.
    visit_due_day: int = Field(default=3, ge=0, le=30)
    branch_visit_due_days: dict[str, int] = Field(default_factory=dict)
    visit_window_days: int = Field(default=15, ge=1, le=60)
    # A call nobody answered is tried again this many hours later (in business hours).
    no_answer_retry_hours: float = Field(default=4.0, gt=0)

    # A survey at or below these scores opens a complaint at once; major at or below.
    complaint_overall_at_or_below: int = Field(default=6, ge=0, le=10)
    complaint_nps_at_or_below: int = Field(default=4, ge=-1, le=10)
    major_overall_at_or_below: int = Field(default=3, ge=0, le=10)

    # Complaint deadlines by severity, in working hours of the branch calendar (opening
    # hours on working days: 9 is one working day of a 9-18 branch); an overdue case goes
    # to the service manager.
    complaint_due_hours_major: float = Field(default=9.0, gt=0)
    complaint_due_hours_minor: float = Field(default=27.0, gt=0)
    branch_managers: dict[str, str] = Field(default_factory=dict)
    default_manager: str = "service-manager"

    # KPIs.
    comeback_days: int = Field(default=30, ge=1, le=365)
    major_complaint_target: float = 0.01

    # Service reminders: next service after this many days or km, whichever comes first;
    # agents see a reminder this many days before it is due.
    service_interval_days: int = Field(default=180, ge=1, le=730)
    service_interval_km: int = Field(default=10_000, ge=500, le=100_000)
    default_daily_km: float = Field(default=40.0, gt=0)
    reminder_lead_days: int = Field(default=14, ge=0, le=90)

    # How often the timer job looks for due visits and overdue cases (s).
    timer_interval: float = Field(default=30.0, gt=0)
    timer_batch: int = Field(default=200, ge=1)

    def zone_of(self, branch: str) -> str:
        """The branch's time zone: the branch directory's (reception's events), else the
        settings' for that branch, else `time_zone`."""
        zone = self.directory_zones.get(branch)
        return zone or self.branch_time_zones.get(branch, self.time_zone)

    def visit_due_day_of(self, branch: str) -> int:
        return self.branch_visit_due_days.get(branch, self.visit_due_day)

    def manager_of(self, branch: str) -> str:
        return self.branch_managers.get(branch, self.default_manager)
