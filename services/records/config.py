"""Records's settings, read from RECORDS_* environment variables."""

from typing import Annotated

from fastapi import Depends, Request
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings

MIB = 1024 * 1024


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RECORDS_", extra="ignore")

    service_name: str = "records"
    database_url: str = "sqlite+aiosqlite:///var/records.db"

    # A branch's days (reports, loans' due dates) are the local days of its time zone: the
    # branch directory's (reception's events), else the branch's own here, else
    # report_time_zone. See `zone_of`.
    report_time_zone: str = "Asia/Shanghai"
    report_branch_time_zones: dict[str, str] = {}
    # Management reports (report_*.py).
    # Users whose token names this branch (the group's head office) read every branch.
    report_group_branch: str = "HQ"
    report_major_complaint_target: float = 0.01
    # Hours a technician is available on a day they clock any job (utilisation).
    report_shift_hours: float = 8.0
    # Scheduled reports: default local hour, how often due runs are looked for (s), when a
    # claimed run that never finished may be taken over (s), how many missed periods of a
    # schedule are made up after downtime, and the dealer's name on the printed report.
    report_hour: int = 6
    report_check_interval_seconds: float = 60.0
    report_claim_timeout_seconds: float = 600.0
    report_makeup_periods: int = 31
    report_dealer_name: str = ""

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
    # Printed documents (the vehicle history): the dealer's name in the header, and the
    # time zone times are printed in.
    dealer_name: str = "Workshop"
    time_zone: str = "Asia/Shanghai"
    # POST /files streams past the service-wide body limit under this one of its own.
    max_upload_bytes: int = 50 * MIB
    # Files nobody refers to are collected after this long (seconds).
    file_gc_grace_seconds: float = 24 * 3600.0
    file_gc_interval_seconds: float = 3600.0
    # Text extraction from library PDFs runs in a child process within these budgets
    # (pages read, seconds of wall clock, address space in MiB); a PDF over any of them is
    # kept but its content is not searchable (`text_extraction: over_budget`).
    library_pdf_max_pages: int = 2_000
    library_pdf_seconds: float = 10.0
    library_pdf_memory_mib: int = 512
    # Readers at once per process (each a child of up to library_pdf_memory_mib); more
    # documents wait their turn.
    library_pdf_workers: int = 2
    # How often loans past their due date are looked for (one reminder per loan per day).
    overdue_check_interval_seconds: float = 900.0

    # ERP webhooks (webhook_*.py). Targets on loopback, private, link-local, multicast or
    # reserved addresses are refused unless this is on (tests, a lab ERP on the LAN).
    webhook_allow_private_targets: bool = False
    # Plain http targets are refused unless this is on (tests' loopback receivers, a lab).
    webhook_allow_http: bool = False
    webhook_timeout_seconds: float = 10.0
    # Delay (s) before each retry, jittered by ±webhook_jitter: about three days in all.
    webhook_retry_schedule: list[float] = [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 72000]
    webhook_jitter: float = 0.2
    webhook_max_retry_after_seconds: float = 86400.0
    webhook_poll_interval: float = 0.5
    webhook_batch: int = 200
    webhook_lanes: int = 2
    webhook_concurrency: int = 32
    webhook_connections_per_endpoint: int = 8
    # A claimed delivery whose sender died is sent again after this long (s).
    webhook_claim_lease_seconds: float = 60.0
    # https targets are verified against the system's CAs, or this PEM file (a dealer's CA).
    webhook_ca_file: str | None = None
    # Base64 of 32 random bytes: webhook and ERP secrets are stored sealed with it
    # (AES-256-GCM). Unset: stored as they are (development).
    webhook_secrets_key: str | None = None
    # Finished deliveries (with their attempts) and the ERP's message ids are kept this long.
    webhook_log_keep_days: float = 30.0
    # Inbound from the ERP: a signed message older or newer than this is refused (s).
    webhook_inbound_tolerance_seconds: float = 300.0

    def branch_zones(self) -> dict[str, str]:
        """Branch → time zone: the branch directory's (reception's events) over the
        settings' `report_branch_time_zones`."""
        return {**self.report_branch_time_zones, **self.directory_zones}

    def zone_of(self, branch: str | None) -> str:
        """The time zone whose days are `branch`'s (the group's: report_time_zone)."""
        if branch is None:
            return self.report_time_zone
        zone = self.directory_zones.get(branch)
        return zone or self.report_branch_time_zones.get(branch, self.report_time_zone)


def _settings(request: Request) -> Settings:
    settings = request.app.state.settings
    assert isinstance(settings, Settings)
    return settings


SettingsDep = Annotated[Settings, Depends(_settings)]
