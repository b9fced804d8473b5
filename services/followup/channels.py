"""The channels that carry a customer message, behind one interface (`Channel.send`):
e-mail over SMTP (aiosmtplib, STARTTLS or implicit TLS) and SMS through Alibaba Cloud's
and Tencent Cloud's documented HTTP APIs, signed by `sms_signing` (no vendor SDK).

Each request carries the message's own id as the provider's request id (SMTP
`Message-ID`, Alibaba `OutId`, Tencent `SessionContext`), so a message sent again after
a crash between the provider's answer and our commit is recognisable as the same one."""

import json
import logging
import ssl
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiosmtplib
import httpx

from services.followup.config import Settings
from services.followup.message_routes import unsubscribe_token
from services.followup.message_templates import email_text, sms_params
from services.followup.sms_signing import aliyun_rpc_signature, tencent_tc3_authorization

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outgoing:
    """One message as a channel sends it."""

    message_id: uuid.UUID
    branch: str
    channel: str  # sms, email
    recipient: str
    template: str
    language: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Delivery:
    """The provider took the message."""

    provider: str
    provider_message_id: str
    provider_status: str


class ProviderFailed(Exception):
    """The provider did not take the message (unreachable, timeout, 5xx, an error code or
    a rate limit): the next provider is tried, then the message waits and is tried again."""

    def __init__(self, provider: str, status: str, detail: str = "", *, limited: bool = False):
        super().__init__(f"{provider}: {status} {detail}".strip())
        self.provider, self.status, self.detail, self.limited = provider, status, detail, limited


class Channel(Protocol):
    provider: str
    channel: str

    async def send(self, message: Outgoing) -> Delivery: ...


# --- e-mail ------------------------------------------------------------------------------


class SmtpEmail:
    provider = "smtp"
    channel = "email"

    def __init__(self, settings: Settings):
        self.settings = settings
        self.domain = settings.smtp_sender.rpartition("@")[2] or "followup.local"

    def _tls(self) -> ssl.SSLContext | None:
        if self.settings.smtp_security == "none":
            return None
        return ssl.create_default_context(cafile=self.settings.smtp_ca_file)

    async def send(self, message: Outgoing) -> Delivery:
        s = self.settings
        subject, body = email_text(message.template, message.language, message.params)
        mail = EmailMessage()
        mail["From"] = s.smtp_sender
        mail["To"] = message.recipient
        mail["Subject"] = subject
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = f"<{message.message_id}@{self.domain}>"
        if s.public_url:
            token = unsubscribe_token(s, "email", message.recipient)
            link = f"{s.public_url.rstrip('/')}/unsubscribe/{token}"
            body += f"\n\n退订 / Unsubscribe: {link}"
            mail["List-Unsubscribe"] = f"<{link}>"
        mail.set_content(body)
        try:
            refused, answer = await aiosmtplib.send(
                mail,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username or None,
                password=s.smtp_password.get_secret_value() or None,
                use_tls=s.smtp_security == "tls",
                start_tls=s.smtp_security == "starttls",
                tls_context=self._tls(),
                timeout=s.message_timeout,
            )
        except aiosmtplib.SMTPResponseException as error:
            raise ProviderFailed(self.provider, str(error.code), error.message) from error
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            raise ProviderFailed(self.provider, "unreachable", str(error)) from error
        if refused:
            code = next(iter(refused.values())).code
            raise ProviderFailed(self.provider, str(code), "recipient refused")
        return Delivery(self.provider, mail["Message-ID"], answer[:64])


# --- SMS ---------------------------------------------------------------------------------


async def _post(provider: str, client: httpx.AsyncClient, url: str, **kwargs: Any) -> Any:
    try:
        answer = await client.post(url, **kwargs)
    except httpx.TimeoutException as error:
        raise ProviderFailed(provider, "timeout", str(error)) from error
    except httpx.TransportError as error:
        raise ProviderFailed(provider, "unreachable", str(error)) from error
    if answer.status_code >= 500:
        raise ProviderFailed(provider, f"http_{answer.status_code}", answer.text[:200])
    try:
        return answer.json()
    except ValueError as error:
        raise ProviderFailed(provider, f"http_{answer.status_code}", "not JSON") from error


# Alibaba's codes for "too many": flow control per number, per account, throttling.
ALIYUN_LIMITED = {"isv.BUSINESS_LIMIT_CONTROL", "isv.DAY_LIMIT_CONTROL", "Throttling.User"}


class AliyunSms:
    """`SendSms` (version 2017-05-25), an RPC call signed with HMAC-SHA1, posted as a form."""

    provider = "aliyun"
    channel = "sms"

    def __init__(self, settings: Settings, client: httpx.AsyncClient):
        self.settings, self.client = settings, client

    async def send(self, message: Outgoing) -> Delivery:
        s = self.settings
        code = s.aliyun_templates.get(message.template)
        if not code:
            raise ProviderFailed(self.provider, "no_template", message.template)
        params = {
            "AccessKeyId": s.aliyun_access_key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "OutId": str(message.message_id),
            "PhoneNumbers": message.recipient,
            "RegionId": s.aliyun_region,
            "SignName": s.aliyun_sign_name,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "TemplateCode": code,
            "TemplateParam": json.dumps(
                {k: str(v) for k, v in message.params.items()},
                ensure_ascii=False,
                separators=(",", ":"),
            ),
            "Timestamp": s.clock().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": "2017-05-25",
        }
        params["Signature"] = aliyun_rpc_signature(
            params, s.aliyun_access_key_secret.get_secret_value(), method="POST"
        )
        body = await _post(
            self.provider, self.client, s.aliyun_sms_url, data=params, timeout=s.message_timeout
        )
        status = str(body.get("Code", ""))
        if status != "OK":
            raise ProviderFailed(
                self.provider,
                status or "no_code",
                str(body.get("Message", "")),
                limited=status in ALIYUN_LIMITED,
            )
        return Delivery(self.provider, str(body["BizId"]), status)


class TencentSms:
    """`SendSms` (version 2021-01-11), JSON posted with a TC3-HMAC-SHA256 authorization."""

    provider = "tencent"
    channel = "sms"

    def __init__(self, settings: Settings, client: httpx.AsyncClient):
        self.settings, self.client = settings, client

    async def send(self, message: Outgoing) -> Delivery:
        s = self.settings
        template_id = s.tencent_templates.get(message.template)
        if not template_id:
            raise ProviderFailed(self.provider, "no_template", message.template)
        phone = message.recipient
        payload = json.dumps(
            {
                "PhoneNumberSet": [phone if phone.startswith("+") else f"+86{phone}"],
                "SmsSdkAppId": s.tencent_sms_app_id,
                "SignName": s.tencent_sign_name,
                "TemplateId": template_id,
                "TemplateParamSet": sms_params(message.template, message.params),
                "SessionContext": str(message.message_id),
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )
        timestamp = int(s.clock().timestamp())
        host = urlsplit(s.tencent_sms_url).netloc
        content_type = "application/json; charset=utf-8"
        headers = {
            "Authorization": tencent_tc3_authorization(
                secret_id=s.tencent_secret_id,
                secret_key=s.tencent_secret_key.get_secret_value(),
                service="sms",
                host=host,
                timestamp=timestamp,
                payload=payload,
                content_type=content_type,
            ),
            "Content-Type": content_type,
            "Host": host,
            "X-TC-Action": "SendSms",
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Version": "2021-01-11",
            "X-TC-Region": s.tencent_region,
        }
        body = await _post(
            self.provider,
            self.client,
            s.tencent_sms_url,
            content=payload.encode(),
            headers=headers,
            timeout=s.message_timeout,
        )
        response = body.get("Response", {})
        if "Error" in response:
            status = str(response["Error"].get("Code", "no_code"))
            raise ProviderFailed(
                self.provider,
                status,
                str(response["Error"].get("Message", "")),
                limited="LimitExceeded" in status,
            )
        sent = (response.get("SendStatusSet") or [{}])[0]
        status = str(sent.get("Code", "no_code"))
        if status != "Ok":
            raise ProviderFailed(
                self.provider,
                status,
                str(sent.get("Message", "")),
                limited="LimitExceeded" in status,
            )
        return Delivery(self.provider, str(sent["SerialNo"]), status)


# --- the providers of a branch -----------------------------------------------------------


class Channels:
    """Every configured provider, and the order a branch tries them in per channel."""

    def __init__(self, settings: Settings, client: httpx.AsyncClient):
        self.settings = settings
        self.sms: dict[str, Channel] = {}
        if settings.aliyun_access_key_id and settings.aliyun_access_key_secret.get_secret_value():
            self.sms["aliyun"] = AliyunSms(settings, client)
        if settings.tencent_secret_id and settings.tencent_secret_key.get_secret_value():
            self.sms["tencent"] = TencentSms(settings, client)
        self.email: Channel | None = SmtpEmail(settings) if settings.smtp_host else None

    def providers(self, branch: str, channel: str) -> list[Channel]:
        if channel == "email":
            return [self.email] if self.email else []
        if channel == "sms":
            order = self.settings.sms_providers_of(branch)
            return [self.sms[name] for name in order if name in self.sms]
        return []


ChannelsFactory = Callable[[Settings, httpx.AsyncClient], Channels]


def local_text(at: datetime, zone: Any) -> str:
    """A moment as the customer reads it: `12-08 17:30` in the branch's zone."""
    return at.astimezone(zone).strftime("%m-%d %H:%M")
