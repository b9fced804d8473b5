"""Stand-ins for Alibaba Cloud's and Tencent Cloud's SMS APIs on loopback, for the tests
and the benchmark. Each checks every request's signature by the provider's documented
algorithm (written here again, apart from `services.followup.sms_signing`), refuses a
wrong one as the provider does, and answers in the provider's shape. `mode` makes it
answer an error code, a rate limit, a 500 or slowly. A request id seen before (Alibaba
`OutId`, Tencent `SessionContext`) gets the first answer's message id again, and
`requests` keeps every request, so a test can count repeats."""

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tools.processes import free_port


@dataclass
class Received:
    request_id: str  # OutId / SessionContext: our message's id
    phone: str
    template: str
    params: Any
    message_id: str  # BizId / SerialNo answered


@dataclass
class StandIn:
    """One provider's stand-in, served by uvicorn in a thread of its own."""

    provider: str
    key_id: str = "test-key-id"
    secret: str = "test-secret-0123456789"
    mode: str = "ok"  # ok, error, limited, http500
    delay: float = 0.0  # seconds before each answer
    port: int = field(default_factory=free_port)
    requests: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # why requests were refused
    first: dict[str, str] = field(default_factory=dict)  # request id -> message id
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def received(self) -> list[Received]:
        with self.lock:
            return list(self.requests)

    def distinct(self) -> dict[str, Received]:
        with self.lock:
            return {r.request_id: r for r in self.requests}

    def _answer_id(self, request_id: str) -> str:
        with self.lock:
            return self.first.setdefault(request_id, uuid.uuid4().hex)

    def start(self) -> "StandIn":
        handler = _aliyun if self.provider == "aliyun" else _tencent

        async def endpoint(request: Request) -> JSONResponse:
            if self.delay:
                await asyncio.sleep(self.delay)
            return await handler(self, request)

        app = Starlette(routes=[Route("/", endpoint, methods=["POST"])])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.provider} stand-in did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


# --- Alibaba Cloud: RPC signature, HMAC-SHA1 ---------------------------------------------


def _aliyun_encode(value: str) -> str:
    # RFC 3986 over UTF-8: only unreserved characters stay (quote keeps A-Z a-z 0-9 _.-~).
    return quote(value.encode(), safe="~")


def aliyun_expected_signature(params: dict[str, str], secret: str, method: str) -> str:
    pairs = sorted((k, v) for k, v in params.items() if k != "Signature")
    query = "&".join(f"{_aliyun_encode(k)}={_aliyun_encode(v)}" for k, v in pairs)
    to_sign = f"{method}&%2F&{_aliyun_encode(query)}"
    mac = hmac.new((secret + "&").encode(), to_sign.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


async def _aliyun(standin: StandIn, request: Request) -> JSONResponse:
    request_id = str(uuid.uuid4()).upper()
    params = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
    wrong = None
    if params.get("AccessKeyId") != standin.key_id:
        wrong = ("InvalidAccessKeyId.NotFound", "Specified access key is not found.")
    elif params.get("SignatureMethod") != "HMAC-SHA1" or params.get("SignatureVersion") != "1.0":
        wrong = ("InvalidParameter", "SignatureMethod")
    elif params.get("Signature") != aliyun_expected_signature(params, standin.secret, "POST"):
        wrong = ("SignatureDoesNotMatch", "Specified signature is not matched.")
    else:
        stamp = datetime.strptime(params.get("Timestamp", ""), "%Y-%m-%dT%H:%M:%SZ")
        if abs(stamp.replace(tzinfo=UTC).timestamp() - time.time()) > 900:
            wrong = ("InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
    if wrong:
        standin.refused.append(wrong[0])
        body = {"Code": wrong[0], "Message": wrong[1], "RequestId": request_id}
        return JSONResponse(body, status_code=400)
    if standin.mode == "http500":
        return JSONResponse({"Code": "InternalError", "RequestId": request_id}, status_code=500)
    if standin.mode == "error":
        body = {"Code": "isp.SYSTEM_ERROR", "Message": "isp.SYSTEM_ERROR", "RequestId": request_id}
        return JSONResponse(body)
    if standin.mode == "limited":
        body = {
            "Code": "isv.BUSINESS_LIMIT_CONTROL",
            "Message": "触发分钟级流控Permits:1",
            "RequestId": request_id,
        }
        return JSONResponse(body)
    out_id = params.get("OutId", "")
    biz_id = standin._answer_id(out_id)
    with standin.lock:
        standin.requests.append(
            Received(
                request_id=out_id,
                phone=params["PhoneNumbers"],
                template=params["TemplateCode"],
                params=json.loads(params.get("TemplateParam") or "{}"),
                message_id=biz_id,
            )
        )
    return JSONResponse({"Message": "OK", "RequestId": request_id, "BizId": biz_id, "Code": "OK"})


# --- Tencent Cloud: TC3-HMAC-SHA256 -------------------------------------------------------


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tencent_expected_signature(
    secret_key: str, *, timestamp: int, content_type: str, host: str, body: bytes
) -> str:
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    canonical = (
        f"POST\n/\n\ncontent-type:{content_type}\nhost:{host}\n\ncontent-type;host\n"
        + _sha256_hex(body)
    )
    to_sign = (
        f"TC3-HMAC-SHA256\n{timestamp}\n{date}/sms/tc3_request\n{_sha256_hex(canonical.encode())}"
    )
    key = hmac.new(("TC3" + secret_key).encode(), date.encode(), hashlib.sha256).digest()
    key = hmac.new(key, b"sms", hashlib.sha256).digest()
    key = hmac.new(key, b"tc3_request", hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def _tencent_error(request_id: str, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"Response": {"Error": {"Code": code, "Message": message}, "RequestId": request_id}}
    )


async def _tencent(standin: StandIn, request: Request) -> JSONResponse:
    request_id = str(uuid.uuid4())
    body = await request.body()
    headers = request.headers
    authorization = headers.get("authorization", "")
    try:
        timestamp = int(headers.get("x-tc-timestamp", ""))
        algorithm, rest = authorization.split(" ", 1)
        fields = dict(part.strip().split("=", 1) for part in rest.split(","))
        credential = fields["Credential"].split("/")
    except (ValueError, KeyError):
        standin.refused.append("AuthFailure.InvalidAuthorization")
        return _tencent_error(request_id, "AuthFailure.InvalidAuthorization", "bad header")
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    expected = tencent_expected_signature(
        standin.secret,
        timestamp=timestamp,
        content_type=headers.get("content-type", ""),
        host=headers.get("host", ""),
        body=body,
    )
    if (
        algorithm != "TC3-HMAC-SHA256"
        or credential != [standin.key_id, date, "sms", "tc3_request"]
        or fields.get("SignedHeaders") != "content-type;host"
        or headers.get("x-tc-action") != "SendSms"
        or headers.get("x-tc-version") != "2021-01-11"
    ):
        standin.refused.append("AuthFailure.InvalidAuthorization")
        return _tencent_error(request_id, "AuthFailure.InvalidAuthorization", "bad header")
    if not hmac.compare_digest(fields.get("Signature", ""), expected):
        standin.refused.append("AuthFailure.SignatureFailure")
        return _tencent_error(request_id, "AuthFailure.SignatureFailure", "signature mismatch")
    if abs(timestamp - time.time()) > 300:
        standin.refused.append("AuthFailure.SignatureExpire")
        return _tencent_error(request_id, "AuthFailure.SignatureExpire", "expired")
    if standin.mode == "http500":
        return JSONResponse({"error": "internal"}, status_code=502)
    if standin.mode == "limited":
        return _tencent_error(request_id, "RequestLimitExceeded", "request limit exceeded")
    payload = json.loads(body)
    phone = payload["PhoneNumberSet"][0]
    if standin.mode == "error":
        status = {
            "SerialNo": "",
            "PhoneNumber": phone,
            "Fee": 0,
            "SessionContext": payload.get("SessionContext", ""),
            "Code": "FailedOperation.TemplateIncorrectOrUnapproved",
            "Message": "template is not approved",
            "IsoCode": "CN",
        }
        return JSONResponse({"Response": {"SendStatusSet": [status], "RequestId": request_id}})
    session_context = payload.get("SessionContext", "")
    serial = standin._answer_id(session_context)
    with standin.lock:
        standin.requests.append(
            Received(
                request_id=session_context,
                phone=phone,
                template=payload["TemplateId"],
                params=payload["TemplateParamSet"],
                message_id=serial,
            )
        )
    status = {
        "SerialNo": serial,
        "PhoneNumber": phone,
        "Fee": 1,
        "SessionContext": session_context,
        "Code": "Ok",
        "Message": "send success",
        "IsoCode": "CN",
    }
    return JSONResponse({"Response": {"SendStatusSet": [status], "RequestId": request_id}})


def provider_env(aliyun: StandIn, tencent: StandIn, prefix: str = "FOLLOWUP_") -> dict[str, str]:
    """The settings that point followup's SMS providers at the stand-ins."""
    templates = {"car_ready": "SMS_1001", "promise_changed": "SMS_1002"}
    templates["appointment_reminder"] = "SMS_1003"
    return {
        f"{prefix}ALIYUN_SMS_URL": aliyun.url,
        f"{prefix}ALIYUN_ACCESS_KEY_ID": aliyun.key_id,
        f"{prefix}ALIYUN_ACCESS_KEY_SECRET": aliyun.secret,
        f"{prefix}ALIYUN_SIGN_NAME": "测试4S店",
        f"{prefix}ALIYUN_TEMPLATES": json.dumps(templates),
        f"{prefix}TENCENT_SMS_URL": tencent.url,
        f"{prefix}TENCENT_SECRET_ID": tencent.key_id,
        f"{prefix}TENCENT_SECRET_KEY": tencent.secret,
        f"{prefix}TENCENT_SMS_APP_ID": "1400000001",
        f"{prefix}TENCENT_SIGN_NAME": "测试4S店",
        f"{prefix}TENCENT_TEMPLATES": json.dumps({k: v[4:] for k, v in templates.items()}),
    }
