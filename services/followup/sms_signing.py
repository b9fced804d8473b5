"""Request signatures of the SMS providers' documented HTTP APIs, so followup needs no
vendor SDK: Alibaba Cloud's RPC signature (HMAC-SHA1 over the canonicalised query)."""

import base64
import hashlib
import hmac
from collections.abc import Mapping
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
