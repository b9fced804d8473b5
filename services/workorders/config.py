"""Workorders's settings, read from WORKORDERS_* environment variables."""

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="WORKORDERS_", extra="ignore")

    service_name: str = "workorders"
    database_url: str = "sqlite+aiosqlite:///var/workorders.db"
    # The branch's clock for day views (dispatch board, productivity, dispatch's day) when
    # the branch directory has not announced the branch's own (`zone_of`).
    time_zone: str = "Asia/Shanghai"
    # Hours a technician is available per day, the base of utilisation.
    shift_hours: float = 8.0
    # Promise-time control: how often every open order is projected, how close to the
    # promise counts as at risk, and the time QC and hand-over take after the last job.
    promise_check_interval: float = 60.0
    # After clocking, dispatch or a parts ETA changed a branch: how long to gather more
    # changes before projecting that branch's open orders again. A pass over 200 open
    # orders holds the event loop for about 11 ms; every 2 s under 32 clocking
    # technicians that added 11 ms to their p99. Projections move by the minute, so 5 s
    # loses nothing an advisor or a screen would see.
    promise_recheck_delay: float = 5.0
    at_risk_margin_minutes: int = 30
    finish_buffer_minutes: int = 30
    # Status board: how often a replica looks for changes written by another replica (its
    # own commits wake it at once), the heartbeat that keeps proxies and screens sure the
    # stream is alive, how long one stream lasts before the screen reconnects (resuming
    # with Last-Event-ID), and how long board changes are kept for resuming.
    board_poll_interval: float = 0.25
    # After handing several changes at once to the screens (a burst), the feed waits
    # this long before its next read, so the rest of the burst reaches each screen in one
    # write; a lone change goes out at once. 50 ms keeps a burst's delay well inside the
    # screens' 100 ms and spends a fifth less CPU per clocking than 20 ms (fewer writes).
    board_batch_interval: float = 0.05
    board_heartbeat_seconds: float = 15.0
    board_stream_max_seconds: float = 600.0
    board_retention_hours: float = 24.0
    # How often an open stream of a registered screen reads its row again, so a screen
    # revoked through another replica is cut off within this (through this one: at once).
    board_screen_check_seconds: float = 5.0
    # Settlement discounts above this share of what is discounted need a manager.
    discount_limit_percent: float = 10.0
    # The dealer's name printed at the top of every repair order and invoice.
    dealer_name: str = "Workshop"

    def zone_of(self, branch: str) -> str:
        """The branch's time zone: the directory's (reception's events), else `time_zone`."""
        return self.directory_zones.get(branch, self.time_zone)
