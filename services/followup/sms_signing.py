"""Request signatures of the SMS providers' documented HTTP APIs, so followup needs no
vendor SDK: Alibaba Cloud's RPC signature (HMAC-SHA1 over the canonicalised query) and
Tencent Cloud's TC3-HMAC-SHA256."""

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote


def aliyun_percent_encode(value: str) -> str:
    """Alibaba Cloud's encoding: RFC 3986 over UTF-8, only A-Z a-z 0-9 - _ . ~ kept (so a
    space is %20, `*` is %2A and `~` stays)."""
    return quote(value, safe="-_.~")


def aliyun_rpc_signature(
    params: Mapping[str, str], access_key_secret: str, *, method: str = "GET"
) -> str:
    """The `Signature` of an RPC request: the parameters but Signature sorted by name,
    encoded and joined as a query, the string `METHOD&%2F&<encoded query>`, HMAC-SHA1 with
    the key `secret&`, base64."""
    canonical = "&".join(
        f"{aliyun_percent_encode(name)}={aliyun_percent_encode(params[name])}"
        for name in sorted(params)
        if name != "Signature"
    )
    to_sign = f"{method}&{aliyun_percent_encode('/')}&{aliyun_percent_encode(canonical)}"
    digest = hmac.new(f"{access_key_secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _hmac_sha256(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def tencent_tc3_authorization(
    *,
    secret_id: str,
    secret_key: str,
    service: str,
    host: str,
    timestamp: int,
    payload: str,
    content_type: str = "application/json; charset=utf-8",
) -> str:
    """The `Authorization` header of a Tencent Cloud API 3.0 POST (TC3-HMAC-SHA256): the
    canonical request over content-type and host and the payload's SHA-256, signed with a
    key derived from the secret through the UTC date, the service and `tc3_request`."""
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    signed_headers = "content-type;host"
    canonical_request = "\n".join(
        [
            "POST",
            "/",
            "",
            f"content-type:{content_type}\nhost:{host}\n",
            signed_headers,
            hashlib.sha256(payload.encode()).hexdigest(),
        ]
    )
    scope = f"{date}/{service}/tc3_request"
    to_sign = "\n".join(
        [
            "TC3-HMAC-SHA256",
            str(timestamp),
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = _hmac_sha256(f"TC3{secret_key}".encode(), date)
    key = _hmac_sha256(key, service)
    key = _hmac_sha256(key, "tc3_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
