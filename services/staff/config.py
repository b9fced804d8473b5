"""The staff app's settings, read from STAFF_* environment variables."""

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "dev-secret-change-me-at-least-32-bytes!"


class DemoStaff(BaseModel):
    sub: str
    name: str
    role: str
    branch: str = "BR01"


DEMO_STAFF = (
    DemoStaff(sub="advisor-zhao", name="赵敏", role="advisor"),
    DemoStaff(sub="advisor-qian", name="钱磊", role="advisor"),
    DemoStaff(sub="foreman-sun", name="孙强", role="foreman"),
    DemoStaff(sub="tech-li", name="李军", role="technician"),
    DemoStaff(sub="tech-zhou", name="周涛", role="technician"),
    DemoStaff(sub="qc-wu", name="吴静", role="qc"),
    DemoStaff(sub="cashier-zheng", name="郑丽", role="cashier"),
    DemoStaff(sub="followup-chen", name="陈芳", role="followup_agent"),
    DemoStaff(sub="manager-wang", name="王刚", role="manager"),
    DemoStaff(sub="clerk-lin", name="林晓", role="records_clerk"),
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STAFF_", extra="ignore")

    service_name: str = "staff"
    # Signs the session, language and CSRF cookies (set a real one anywhere but a laptop).
    session_secret: str = "dev-session-secret-change-me-at-least-32-bytes"
    # The address browsers use, for the OIDC redirect URI and whether cookies are Secure.
    public_base_url: str = "http://127.0.0.1:8000"
    # OpenID Connect: the provider's issuer (its discovery document lives under it). Unset:
    # development sign-in, where the demo staff's tokens are minted with `jwt_secret`.
    oidc_issuer: str | None = None
    oidc_client_id: str = "staff"
    oidc_client_secret: str | None = None
    oidc_scope: str = "openid profile"
    jwt_secret: str = DEV_JWT_SECRET
    # The services' HTTP APIs.
    reception_url: str = "http://127.0.0.1:8001"
    workorders_url: str = "http://127.0.0.1:8002"
    followup_url: str = "http://127.0.0.1:8003"
    records_url: str = "http://127.0.0.1:8004"
    api_timeout_seconds: float = 10.0
    # The branch's clock: "today", and every time shown.
    time_zone: str = "Asia/Shanghai"
    default_language: str = "zh-CN"
    log_level: str = "INFO"
    # Demo staff offered by the development sign-in page.
    demo_staff: list[DemoStaff] = Field(default_factory=lambda: list(DEMO_STAFF))
