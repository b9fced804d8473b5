"""Schemathesis hooks of the contract leg (`make test-contract`, tools/contract.py).

- Auth: each operation gets a development token carrying the roles its OpenAPI lists under
  `x-roles` (shared.openapi), signed with the services' development secret.
- Records' inbound ERP webhooks are signed (Standard Webhooks) with the secret of an ERP
  source the runner registered, so their bodies are checked, not only their signature.
- Records' outbound ERP webhooks: every `url` a request would register is forced to the
  loopback receiver the runner started, and the path ids of ping, replay and the endpoint's
  other operations name the endpoint and delivery the runner made there. Schemathesis never
  gets to make the service call an address it invented.

Configured by the runner through the environment (CONTRACT_*).
"""

import json
import os
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import schemathesis
from schemathesis import GenerationMode
from standardwebhooks import Webhook

from shared.auth import issue_dev_token

_tokens: dict[tuple[str, ...], str] = {}


def _token(roles: tuple[str, ...]) -> str:
    if roles not in _tokens:
        _tokens[roles] = issue_dev_token(
            os.environ["CONTRACT_JWT_SECRET"], role=list(roles), branch="BR01", ttl=3600
        )
    return _tokens[roles]


def _roles_of(case: Any, context: Any) -> str:
    return ",".join(context.operation.definition.raw.get("x-roles") or ())


# Cached per role set: one cache for all would hand every operation the first one's token.
@schemathesis.auth(refresh_interval=None, cache_by_key=_roles_of)
class RoleTokens:
    """A bearer token with the roles the operation lets in."""

    def get(self, case: Any, context: Any) -> str | None:
        roles = context.operation.definition.raw.get("x-roles")
        return _token(tuple(roles)) if roles else None

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


# --- records' outbound ERP webhooks -----------------------------------------------------

WEBHOOK_PATHS = ("/webhooks/endpoints", "/webhooks/deliveries")
SENDING = ("/ping", "/replay")


def _well_formed(url: str) -> bool:
    """A URL records would go on to resolve and call (the others it refuses on their form
    alone, before any lookup): forced to the receiver in every mode."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _positive(case: Any, location: str) -> bool:
    meta = getattr(case, "meta", None)
    if meta is None:
        return True
    for where, component in meta.components.items():
        if str(getattr(where, "value", where)) == location:
            return bool(component.mode == GenerationMode.POSITIVE)
    return meta.generation.mode == GenerationMode.POSITIVE


INBOUND = ("/erp/{source_id}/payments", "/erp/{source_id}/price-lists")


def _sign_inbound(case: Any) -> None:
    """The runner's ERP source signs the body exactly as it is sent (requests' json.dumps)."""
    source, secret = os.environ.get("CONTRACT_ERP_SOURCE_ID"), os.environ.get("CONTRACT_ERP_SECRET")
    if not source or not secret or not _positive(case, "path"):
        return
    try:
        payload = json.dumps(case.body, allow_nan=False)
    except (TypeError, ValueError):
        return  # not JSON: refused unsigned, as it would be anyway
    case.path_parameters = {**(case.path_parameters or {}), "source_id": source}
    msg_id = f"msg_{uuid.uuid4().hex}"
    signature = Webhook(secret).sign(msg_id, datetime.now(UTC), payload)
    case.headers = {
        **(case.headers or {}),
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(datetime.now(UTC).timestamp())),
        "webhook-signature": signature,
    }


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    receiver = os.environ.get("CONTRACT_RECEIVER_URL")
    path = case.operation.path
    if path in INBOUND and case.operation.method.upper() == "POST":
        _sign_inbound(case)
        return
    if not receiver or not path.startswith(WEBHOOK_PATHS):
        return
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("url"), str) and _well_formed(body["url"]):
        case.body = {**body, "url": receiver}
    params = case.path_parameters or {}
    # Ping and replay send now: to the runner's endpoint and delivery (whose URL is the
    # receiver's), so they are exercised, not answered 404 for an invented id.
    if params and path.endswith(SENDING) and _positive(case, "path"):
        known = {
            "endpoint_id": os.environ.get("CONTRACT_ENDPOINT_ID"),
            "delivery_id": os.environ.get("CONTRACT_DELIVERY_ID"),
        }
        case.path_parameters = {name: known.get(name) or value for name, value in params.items()}
