"""The customer approval link: a short-lived token, kept only as its hash, that opens a
mobile page where the customer approves or declines each line of one revision."""

import hashlib
import html
import ipaddress
import secrets
import uuid
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import case, delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.reception import estimates
from services.reception.config import Settings
from services.reception.models import (
    ApprovalClient,
    ApprovalLink,
    ApprovalLinkCreate,
    ApprovalLinkPublic,
    ConsentChannel,
    Estimate,
    EstimatePublic,
    LinkConsentCreate,
)
from shared.auth import User
from shared.db import Database
from shared.events import utcnow
from shared.problems import Conflict, DomainError, NotFound, RateLimited

WINDOW = timedelta(minutes=1)


class LinkGone(DomainError):
    status, slug, title = 410, "approval-link-gone", "This approval link has expired or was revoked"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_link(
    session: AsyncSession,
    estimate_id: uuid.UUID,
    data: ApprovalLinkCreate,
    by: User,
    settings: Settings,
) -> ApprovalLinkPublic:
    estimate = await estimates.get_estimate(session, estimate_id, by)
    revision = await estimates.get_revision(session, estimate)
    if revision.approved_at is not None:
        raise Conflict(f"revision {revision.number} is already answered; nothing to approve")
    lines = revision.revision_lines()
    answered = estimates.answers_for(lines, await estimates.ledger(session, estimate.id))
    for line in lines:
        # The customer could not approve it: the link would only end in an error for them.
        if line.line_id not in answered and estimates.unpriced_extra_work(line):
            raise Conflict(
                f"line {line.line_id} is work found in the workshop and has no price yet: "
                "price it (revise the estimate) before sending the customer a link",
                line_id=str(line.line_id),
            )
    token = secrets.token_urlsafe(32)
    ttl = data.ttl_minutes or settings.approval_link_ttl_minutes
    link = ApprovalLink(
        estimate_id=estimate.id,
        revision=revision.number,
        token_hash=token_hash(token),
        created_by=by.id,
        expires_at=utcnow() + timedelta(minutes=ttl),
    )
    session.add(link)
    return ApprovalLinkPublic(
        **link.model_dump(include={"id", "estimate_id", "revision", "expires_at"}),
        token=token,
        url=f"{settings.public_base_url.rstrip('/')}/approve/{token}",
    )


async def revoke_link(
    session: AsyncSession, estimate_id: uuid.UUID, link_id: uuid.UUID, by: User
) -> ApprovalLinkPublic:
    estimate = await estimates.get_estimate(session, estimate_id, by)
    link = await session.get(ApprovalLink, link_id)
    if link is None or link.estimate_id != estimate.id:
        raise NotFound(f"approval link {link_id} not found")
    if link.revoked_at is None:
        link.revoked_at = utcnow()
        session.add(link)
    return ApprovalLinkPublic.model_validate(link, from_attributes=True)


def client_key(host: str | None) -> str:
    """Whom failures are counted against: the client's address, an IPv6 client's /64
    (one home or phone network holds a whole /64, so counting each address would let a
    guesser walk through them)."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


async def admit(db: Database, token: str, client: str, settings: Settings) -> None:
    """Count one request on an approval page against the client's address and let it
    through, or refuse it: 429 once the address has failed `approval_link_failures_per_
    minute` times or used the pages `approval_link_uses_per_minute` times this minute
    (`Retry-After`: the rest of the minute); 404 for a token that opens no link and 410
    for a dead link, both counted as failures. A link is never limited as such: a
    stranger who hammers a customer's link runs out of their own allowance only.

    One transaction of its own, committed before the route's: refused requests count.
    The counters change in the database (an upsert, then an update of the row it
    locked), so replicas share them and two requests at once both count."""
    now = utcnow()
    table = ApprovalClient.__table__  # type: ignore[attr-defined]
    async with db.transaction() as session:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        expired = table.c.window_started_at <= now - WINDOW
        await session.exec(
            dialect.insert(table)
            .values(client=client, window_started_at=now, uses=1, failures=0)
            .on_conflict_do_update(
                index_elements=["client"],
                set_={
                    "uses": case((expired, 1), else_=table.c.uses + 1),
                    "failures": case((expired, 0), else_=table.c.failures),
                    "window_started_at": case((expired, now), else_=table.c.window_started_at),
                },
            )
        )
        row = (
            await session.exec(select(ApprovalClient).where(ApprovalClient.client == client))
        ).one()
        if row.window_started_at == now:
            # A new minute for this client: clients idle for an hour are forgotten.
            await session.exec(
                delete(ApprovalClient).where(
                    col(ApprovalClient.window_started_at) < now - timedelta(hours=1)
                )
            )
        retry_after = (row.window_started_at + WINDOW - now).total_seconds()
        if row.failures >= settings.approval_link_failures_per_minute:
            raise _limited("wrong or dead links", retry_after)
        if row.uses > settings.approval_link_uses_per_minute:
            raise _limited("requests", retry_after)
        link = (
            await session.exec(
                select(ApprovalLink).where(ApprovalLink.token_hash == token_hash(token))
            )
        ).first()
        if link is not None and link.revoked_at is None and link.expires_at > now:
            return
        await session.exec(
            update(ApprovalClient)
            .where(col(ApprovalClient.client) == client)
            .values(failures=ApprovalClient.failures + 1)
        )
    if link is None:
        raise NotFound("no such approval link")
    raise LinkGone("ask your service advisor for a new link")


def _limited(what: str, retry_after: float) -> RateLimited:
    return RateLimited(
        f"too many {what} from your address in a minute; try again in a minute",
        retry_after=retry_after,
    )


async def open_link(session: AsyncSession, token: str) -> tuple[ApprovalLink, Estimate]:
    link = (
        await session.exec(select(ApprovalLink).where(ApprovalLink.token_hash == token_hash(token)))
    ).first()
    if link is None:
        raise NotFound("no such approval link")
    if link.revoked_at is not None or link.expires_at <= utcnow():
        raise LinkGone("ask your service advisor for a new link")
    estimate = await session.get(Estimate, link.estimate_id)
    assert estimate is not None
    return link, estimate


async def view(session: AsyncSession, token: str) -> EstimatePublic:
    link, estimate = await open_link(session, token)
    revision = await estimates.get_revision(session, estimate, link.revision)
    return await estimates.public(session, estimate, revision)


async def consent(session: AsyncSession, token: str, data: LinkConsentCreate) -> EstimatePublic:
    link, estimate = await open_link(session, token)
    return await estimates.record_consent(
        session,
        estimate,
        data.decisions,
        by=data.by,
        channel=ConsentChannel.link,
        recorded_by=f"link:{link.id}",
        revision_number=link.revision,
    )


_KIND = {"labour": "工时 Labour", "part": "配件 Part", "fee": "费用 Fee"}
_ANSWER = {"approved": "已同意 Approved", "declined": "已拒绝 Declined"}


def page(estimate: EstimatePublic, token: str, zone: str) -> str:
    """A plain mobile page in Chinese and English; no scripts from elsewhere. Times are
    the branch's local times (`zone`), as the customer reads a clock."""
    e = html.escape
    rows = []
    for line in estimate.lines:
        title = line.description or line.op_code or line.part_number or ""
        if line.answer is not None:
            choice = f"<p class=done>{_ANSWER[line.answer.decision]}</p>"
        else:
            name = f"l-{line.line_id}"
            choice = (
                f'<label><input type=radio name="{name}" value=approved> 同意 Approve</label>'
                f'<label><input type=radio name="{name}" value=declined> 拒绝 Decline</label>'
            )
        rows.append(
            f'<div class=line data-line="{line.line_id}"><h3>{e(title)}</h3>'
            f"<p>{_KIND.get(line.kind, line.kind)} · {e(line.pay_type)} · "
            f"{e(estimate.currency)} {line.net}</p>{choice}</div>"
        )
    totals = "".join(
        f"<tr><td>{e(t.pay_type)}</td><td>{t.net}</td><td>{t.tax}</td><td>{t.total}</td></tr>"
        for t in estimate.totals.by_pay_type
    )
    promised = (
        estimate.promised_at.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")
        if estimate.promised_at
        else "—"
    )
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>维修估价确认 Estimate approval</title>
<style>@font-face{{font-family:ApprovalSans;src:url(/approve/font.ttf) format("truetype")}}
body{{font-family:ApprovalSans,sans-serif;margin:1em;max-width:40em}}
.line{{border-bottom:1px solid #ccc;padding:.5em 0}}label{{display:block;padding:.4em 0}}
.done{{color:#555}}
input,button{{font-family:inherit;font-size:1.1em}}button{{padding:.6em 1.2em;min-height:48px}}
input[name=by]{{min-height:44px;width:100%;box-sizing:border-box}}table{{border-collapse:collapse}}
td,th{{padding:.2em .6em;text-align:right}}</style></head><body>
<h1>维修估价确认<br><small>Estimate approval</small></h1>
<p>修订 Revision {estimate.revision} · 预计完工 Promised: {e(promised)}</p>
<form id=f>{"".join(rows)}
<table><tr><th>付款方 Pay type</th><th>金额 Net</th><th>税 Tax</th><th>合计 Total</th></tr>
{totals}</table>
<p><label>您的姓名 Your name <input name=by required maxlength=100></label></p>
<button type=submit>提交 Submit</button></form><p id=msg></p>
<script>
document.getElementById('f').addEventListener('submit', async (ev) => {{
  ev.preventDefault();
  const form = new FormData(ev.target);
  const decisions = [];
  for (const [k, v] of form.entries())
    if (k.startsWith('l-')) decisions.push({{line_id: k.slice(2), decision: v}});
  const r = await fetch(location.pathname, {{method: 'POST',
    headers: {{'Content-Type': 'application/json'}},
    body: JSON.stringify({{by: form.get('by'), decisions}})}});
  document.getElementById('msg').textContent = r.ok
    ? '谢谢，已提交。Thank you, your answers were recorded.'
    : '提交失败，请联系服务顾问。Could not submit; please call your advisor.';
  if (r.ok) setTimeout(() => location.reload(), 800);
}});
</script></body></html>"""
