"""Followup's settings, read from FOLLOWUP_* environment variables."""

from collections.abc import Callable
from datetime import datetime

from pydantic import Field, SecretStr
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

    # Customer messages: the sender leases `message_batch` due messages for
    # `message_lease_seconds`, sends `message_concurrency` at once, looks again every
    # `message_interval` s; a failed send waits `message_retry_base` s, doubled per
    # attempt up to `message_retry_cap`, and is given up after `message_max_attempts`.
    message_interval: float = Field(default=1.0, gt=0)
    message_batch: int = Field(default=100, ge=1, le=1000)
    message_concurrency: int = Field(default=20, ge=1, le=200)
    message_lease_seconds: float = Field(default=120.0, gt=0)
    message_max_attempts: int = Field(default=6, ge=1, le=50)
    message_retry_base: float = Field(default=30.0, gt=0)
    message_retry_cap: float = Field(default=3600.0, gt=0)
    message_timeout: float = Field(default=10.0, gt=0)
    # Quiet hours in the branch's zone ("HH:MM"; equal times: none).
    quiet_hours_from: str = Field(default="21:00", pattern=r"^\d\d:\d\d$")
    quiet_hours_until: str = Field(default="08:00", pattern=r"^\d\d:\d\d$")
    # The SMS providers tried in order (a failing one passes the message to the next),
    # per branch when it differs; a provider without credentials is skipped.
    sms_providers: list[str] = Field(default_factory=lambda: ["aliyun", "tencent"])
    branch_sms_providers: dict[str, list[str]] = Field(default_factory=dict)
    aliyun_sms_url: str = "https://dysmsapi.aliyuncs.com/"
    aliyun_access_key_id: str = ""
    aliyun_access_key_secret: SecretStr = SecretStr("")
    aliyun_sign_name: str = ""
    aliyun_region: str = "cn-hangzhou"
    # Our template name → the provider's approved template code.
    aliyun_templates: dict[str, str] = Field(default_factory=dict)
    tencent_sms_url: str = "https://sms.tencentcloudapi.com/"
    tencent_secret_id: str = ""
    tencent_secret_key: SecretStr = SecretStr("")
    tencent_sms_app_id: str = ""
    tencent_sign_name: str = ""
    tencent_region: str = "ap-guangzhou"
    tencent_templates: dict[str, str] = Field(default_factory=dict)
    # E-mail: `smtp_security` is `starttls` (port 587), `tls` (implicit, 465) or `none`.
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_security: str = Field(default="starttls", pattern="^(starttls|tls|none)$")
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_sender: str = "service@example.cn"
    smtp_ca_file: str | None = None
    # The secret path segment of the providers' callback URLs (delivery reports and
    # replies), set in each provider's console; empty: the callbacks answer 404.
    message_callback_token: SecretStr = SecretStr("")
    # Signs the customers' unsubscribe links (`/unsubscribe/{token}`); the public address
    # they are written with in e-mails (empty: no link).
    message_link_secret: SecretStr = SecretStr("change-me-unsubscribe-link-secret")
    public_url: str = ""

    def sms_providers_of(self, branch: str) -> list[str]:
        return self.branch_sms_providers.get(branch, self.sms_providers)

    def zone_of(self, branch: str) -> str:
        """The branch's time zone: the branch directory's (reception's events), else the
        settings' for that branch, else `time_zone`."""
        zone = self.directory_zones.get(branch)
        return zone or self.branch_time_zones.get(branch, self.time_zone)

    def visit_due_day_of(self, branch: str) -> int:
        return self.branch_visit_due_days.get(branch, self.visit_due_day)

    def manager_of(self, branch: str) -> str:
        return self.branch_managers.get(branch, self.default_manager)
