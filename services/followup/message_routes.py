"""The SMS providers' callbacks: delivery reports and the customers' replies (an opt-out),
in each provider's documented shape and with its documented answer. Neither provider
signs its callbacks, so the URL carries a secret segment (`MESSAGE_CALLBACK_TOKEN`)
set in the provider's console; a wrong one is 404, as if there were nothing."""

import hmac
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Request
from fastapi.responses import HTMLResponse
from itsdangerous import BadSignature, URLSafeSerializer

from services.followup import messages
from services.followup.config import Settings
from services.followup.message_rules import is_sms_opt_out, mask_phone, normalize_mobile
from shared.service import SessionDep

log = logging.getLogger(__name__)

router = APIRouter(tags=["customer messages"])

Payload = Annotated[Any, Body()]


def _check(request: Request, token: str) -> Settings:
    settings = request.app.state.runtime.settings
    expected = settings.message_callback_token.get_secret_value()
    if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        raise HTTPException(status_code=404, detail="Not Found")
    return settings


def _items(payload: Any) -> list[dict[str, Any]]:
    items = payload if isinstance(payload, list) else [payload]
    return [item for item in items if isinstance(item, dict)]


async def _opt_out(session: Any, settings: Settings, mobile: Any, text: Any, source: str) -> None:
    if not isinstance(text, str) or not is_sms_opt_out(text) or not mobile:
        return
    recipient = normalize_mobile(str(mobile))
    await messages.record_opt_out(
        session, channel="sms", recipient=recipient, source=source, now=settings.clock()
    )
    log.info("%s opted out of SMS (%s)", mask_phone(recipient), source)


@router.post("/messages/callbacks/aliyun/{token}/report", summary="Alibaba Cloud SmsReport")
async def aliyun_report(
    request: Request, token: str, session: SessionDep, payload: Payload
) -> dict[str, Any]:
    """A JSON array of reports (`biz_id`, `success`, `err_code`, `err_msg`, ...);
    answered `{"code": 0, "msg": "接收成功"}`."""
    settings = _check(request, token)
    for item in _items(payload):
        if not item.get("biz_id"):
            continue
        await messages.record_report(
            session,
            provider="aliyun",
            provider_message_id=str(item["biz_id"]),
            status=str(item.get("err_code") or ("DELIVERED" if item.get("success") else "FAIL")),
            detail=str(item.get("err_msg") or ""),
            now=settings.clock(),
        )
    return {"code": 0, "msg": "接收成功"}


@router.post("/messages/callbacks/aliyun/{token}/reply", summary="Alibaba Cloud SmsUp")
async def aliyun_reply(
    request: Request, token: str, session: SessionDep, payload: Payload
) -> dict[str, Any]:
    """A JSON array of the customers' replies (`phone_number`, `content`, ...); a reply
    T, TD or 退订 opts the number out of SMS."""
    settings = _check(request, token)
    for item in _items(payload):
        await _opt_out(
            session, settings, item.get("phone_number"), item.get("content"), "aliyun_reply"
        )
    return {"code": 0, "msg": "接收成功"}


@router.post("/messages/callbacks/tencent/{token}/report", summary="Tencent Cloud SMS status")
async def tencent_report(
    request: Request, token: str, session: SessionDep, payload: Payload
) -> dict[str, Any]:
    """A JSON array of reports (`sid`, `report_status`, `errmsg`, `description`, ...);
    answered `{"result": 0, "errmsg": "OK"}`."""
    settings = _check(request, token)
    for item in _items(payload):
        if not item.get("sid"):
            continue
        await messages.record_report(
            session,
            provider="tencent",
            provider_message_id=str(item["sid"]),
            status=f"{item.get('report_status', '')}:{item.get('errmsg', '')}".strip(":"),
            detail=str(item.get("description") or ""),
            now=settings.clock(),
        )
    return {"result": 0, "errmsg": "OK"}


@router.post("/messages/callbacks/tencent/{token}/reply", summary="Tencent Cloud SMS reply")
async def tencent_reply(
    request: Request, token: str, session: SessionDep, payload: Payload
) -> dict[str, Any]:
    """A customer's reply (`mobile`, `text`, ...); T, TD or 退订 opts the number out."""
    settings = _check(request, token)
    for item in _items(payload):
        await _opt_out(session, settings, item.get("mobile"), item.get("text"), "tencent_reply")
    return {"result": 0, "errmsg": "OK"}


# --- the customer's unsubscribe link -------------------------------------------------


def _links(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(settings.message_link_secret.get_secret_value(), salt="unsubscribe")


def unsubscribe_token(settings: Settings, channel: str, recipient: str) -> str:
    """The signed token of a recipient's unsubscribe link on a channel."""
    return str(_links(settings).dumps([channel, recipient]))


def _recipient(request: Request, token: str) -> tuple[Settings, str, str]:
    settings = request.app.state.runtime.settings
    try:
        channel, recipient = _links(settings).loads(token)
    except (BadSignature, ValueError, TypeError) as error:
        raise HTTPException(status_code=404, detail="Not Found") from error
    return settings, str(channel), str(recipient)


_PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>退订 Unsubscribe</title>
<style>body{{font:18px/1.5 sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem}}
button{{font-size:18px;min-height:48px;padding:0 1.5rem}}</style></head>
<body>{body}</body></html>"""


@router.get("/unsubscribe/{token}", response_class=HTMLResponse, summary="Unsubscribe page")
async def unsubscribe_page(request: Request, token: str) -> HTMLResponse:
    """The page an unsubscribe link opens: it asks, and the button unsubscribes (a link
    checker or a mail scanner opening the link changes nothing)."""
    _recipient(request, token)
    body = (
        "<h1>退订通知 / Unsubscribe</h1><p>不再接收我们发送的服务通知?"
        "<br>Stop receiving our service messages?</p>"
        f'<form method="post" action="/unsubscribe/{token}">'
        "<button type=submit>退订 / Unsubscribe</button></form>"
    )
    return HTMLResponse(_PAGE.format(body=body))


@router.post("/unsubscribe/{token}", response_class=HTMLResponse, summary="Unsubscribe")
async def unsubscribe(request: Request, token: str, session: SessionDep) -> HTMLResponse:
    """Records the opt-out of the link's recipient on its channel; a repeat changes nothing."""
    settings, channel, recipient = _recipient(request, token)
    await messages.record_opt_out(
        session, channel=channel, recipient=recipient, source="link", now=settings.clock()
    )
    body = (
        "<h1>已退订 / Unsubscribed</h1><p>您将不再收到我们的通知。"
        "<br>You will get no more messages from us.</p>"
    )
    return HTMLResponse(_PAGE.format(body=body))
