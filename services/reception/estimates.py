"""Estimates: revisions, canned jobs, the consent ledger and the approval event.

Every change writes a new revision; a line keeps its `line_id` from revision to revision,
so its consent history follows it. An answer counts for a line while the line's priced
content (its fingerprint) is the one the customer answered; change the price, or re-offer
a declined line, and it needs a new answer. When every line of the current revision has an
answer, `reception.estimate.approved.v1` is written to the outbox, once per revision.
"""

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.reception import branches, pricing
from services.reception.config import Settings
from services.reception.models import (
    CannedJob,
    CannedJobAdd,
    CannedJobCreate,
    ConsentChannel,
    ConsentRecord,
    Customer,
    Decision,
    Estimate,
    EstimateCreate,
    EstimatePublic,
    EstimateRevise,
    EstimateRevision,
    EstimateStatus,
    Intake,
    LineAnswer,
    LineDecision,
    LineIn,
    LineKind,
    LinePublic,
    PayTypeTotalPublic,
    RevisionLine,
    TotalsPublic,
    Vehicle,
)
from shared import audit
from shared.auth import User
from shared.concurrency import check_if_match, etag
from shared.contracts import ConsentRef, EstimateApproved, EstimateLine
from shared.contracts.workorders import ExtraWorkFound
from shared.events import utcnow
from shared.outbox import add_event
from shared.problems import Conflict, InvalidInput, NotFound

# --- lines and prices ------------------------------------------------------------------


def price_lines(
    lines: Sequence[LineIn], previous: dict[uuid.UUID, RevisionLine] | None = None
) -> list[RevisionLine]:
    """Turn entered lines into revision lines with their net; kept lines keep their offer."""
    previous = previous or {}
    priced: list[RevisionLine] = []
    seen: set[uuid.UUID] = set()
    for index, line in enumerate(lines):
        fields = line.model_dump(exclude={"line_id"})
        if line.line_id is None:
            kept = None
            line_id = uuid.uuid4()
        else:
            kept = previous.get(line.line_id)
            if kept is None:
                raise InvalidInput(f"lines.{index}.line_id", "not a line of the current revision")
            line_id = line.line_id
        if line_id in seen:
            raise InvalidInput(f"lines.{index}.line_id", "the same line appears twice")
        seen.add(line_id)
        revision_line = RevisionLine(
            line_id=line_id,
            offer=kept.offer if kept else 1,
            extra_work_id=kept.extra_work_id if kept else None,
            **fields,
        )
        revision_line.net = pricing.line_net(revision_line)
        priced.append(revision_line)
    return priced


def to_contract(line: RevisionLine, tax_rate: Decimal) -> EstimateLine:
    return EstimateLine(tax_rate=tax_rate, **line.model_dump(exclude={"offer"}))


def unpriced_extra_work(line: RevisionLine) -> bool:
    """Work found in the workshop comes without a price; the advisor prices it (PUT) before
    the customer may approve it, or it would be billed at 0.00."""
    return line.extra_work_id is not None and pricing.gross(line) == 0


# --- reading ---------------------------------------------------------------------------


async def get_estimate(session: AsyncSession, estimate_id: uuid.UUID, by: User) -> Estimate:
    estimate = await session.get(Estimate, estimate_id)
    if estimate is None or estimate.branch != by.branch:
        raise NotFound(f"estimate {estimate_id} not found")
    return estimate


async def find_by_intake(session: AsyncSession, intake_id: uuid.UUID, by: User) -> Estimate:
    estimate = (
        await session.exec(
            select(Estimate).where(Estimate.intake_id == intake_id, Estimate.branch == by.branch)
        )
    ).first()
    if estimate is None:
        raise NotFound(f"no estimate for intake {intake_id}")
    return estimate


async def extra_work_waiting(session: AsyncSession, by: User, limit: int) -> list[EstimatePublic]:
    """The branch's estimates whose current revision answers work found in the workshop and
    is not answered yet, newest first: the advisor's list of calls to make."""
    query = (
        select(Estimate, EstimateRevision)
        .join(
            EstimateRevision,
            (col(EstimateRevision.estimate_id) == col(Estimate.id))
            & (col(EstimateRevision.number) == col(Estimate.current_revision)),
        )
        .where(
            Estimate.branch == by.branch,
            col(EstimateRevision.extra_work_id).is_not(None),
            col(EstimateRevision.approved_at).is_(None),
        )
        .order_by(col(EstimateRevision.created_at).desc())
        .limit(limit)
    )
    rows = (await session.exec(query)).all()
    return [await public(session, estimate, revision) for estimate, revision in rows]


async def get_revision(
    session: AsyncSession, estimate: Estimate, number: int | None = None
) -> EstimateRevision:
    number = estimate.current_revision if number is None else number
    revision = (
        await session.exec(
            select(EstimateRevision).where(
                EstimateRevision.estimate_id == estimate.id, EstimateRevision.number == number
            )
        )
    ).first()
    if revision is None:
        raise NotFound(f"estimate {estimate.id} has no revision {number}")
    return revision


async def ledger(session: AsyncSession, estimate_id: uuid.UUID) -> list[ConsentRecord]:
    return list(
        (
            await session.exec(
                select(ConsentRecord)
                .where(ConsentRecord.estimate_id == estimate_id)
                .order_by(col(ConsentRecord.at), col(ConsentRecord.id))
            )
        ).all()
    )


def answers_for(
    lines: Iterable[RevisionLine], records: Iterable[ConsentRecord]
) -> dict[uuid.UUID, ConsentRecord]:
    """The answer each line has: the latest ledger entry for its id and current content."""
    records = list(records)
    if not records:
        return {}
    wanted = {line.line_id: line.fingerprint() for line in lines}
    found: dict[uuid.UUID, ConsentRecord] = {}
    for record in records:  # oldest first, so the latest wins
        if wanted.get(record.line_id) == record.fingerprint:
            found[record.line_id] = record
    return found


def totals_public(lines: Sequence[RevisionLine], tax_rate: Decimal) -> TotalsPublic:
    result = pricing.totals(lines, tax_rate)
    return TotalsPublic(
        by_pay_type=[
            PayTypeTotalPublic(pay_type=t.pay_type, net=t.net, tax=t.tax, total=t.total)
            for t in result.by_pay_type
        ],
        net=result.net,
        tax=result.tax,
        total=result.total,
    )


async def public(
    session: AsyncSession,
    estimate: Estimate,
    revision: EstimateRevision | None = None,
    *,
    priced: list[RevisionLine] | None = None,
) -> EstimatePublic:
    """The estimate as the API shows it. `priced` is given by a new estimate: its lines as
    just priced (no need to read them back) and, being new, no ledger entries yet."""
    revision = revision or await get_revision(session, estimate)
    lines = priced if priced is not None else revision.revision_lines()
    records = [] if priced is not None else await ledger(session, estimate.id)
    answers = answers_for(lines, records)
    tax_rate = Decimal(revision.tax_rate)
    answered = bool(lines) and all(line.line_id in answers for line in lines)
    return EstimatePublic(
        id=estimate.id,
        branch=estimate.branch,
        intake_id=estimate.intake_id,
        customer_id=estimate.customer_id,
        vehicle_id=estimate.vehicle_id,
        advisor=estimate.advisor,
        currency=estimate.currency,
        revision=revision.number,
        current_revision=estimate.current_revision,
        status=EstimateStatus.answered if answered else EstimateStatus.awaiting_consent,
        promised_at=revision.promised_at,
        tax_rate=tax_rate,
        note=revision.note,
        extra_work_id=revision.extra_work_id,
        repair_order_id=revision.repair_order_id,
        # The lines were validated when priced or read: built without validating again.
        lines=[
            LinePublic.model_construct(
                **dict(line),
                answer=LineAnswer(
                    decision=answers[line.line_id].decision,
                    by=answers[line.line_id].by,
                    channel=answers[line.line_id].channel,
                    at=answers[line.line_id].at,
                )
                if line.line_id in answers
                else None,
            )
            for line in lines
        ],
        totals=totals_public(lines, tax_rate),
        approved_at=revision.approved_at,
        created_at=revision.created_at,
        etag=etag(estimate.version),
    )


# --- writing revisions -----------------------------------------------------------------


def _add_revision(
    session: AsyncSession,
    estimate: Estimate,
    *,
    lines: list[RevisionLine],
    promised_at: datetime | None,
    note: str,
    tax_rate: Decimal,
    by: User | audit.Actor,
    extra_work_id: uuid.UUID | None = None,
    repair_order_id: uuid.UUID | None = None,
) -> EstimateRevision:
    estimate.current_revision += 1
    estimate.updated_at = utcnow()
    revision = EstimateRevision(
        estimate_id=estimate.id,
        number=estimate.current_revision,
        promised_at=promised_at,
        tax_rate=str(tax_rate),
        lines=[line.model_dump(mode="json") for line in lines],
        note=note,
        extra_work_id=extra_work_id,
        repair_order_id=repair_order_id,
        created_by=by.id,
    )
    session.add(estimate)
    session.add(revision)
    audit.record(
        session,
        action="estimate.created" if revision.number == 1 else "estimate.revised",
        object_type="estimate",
        object_id=estimate.id,
        branch=estimate.branch,
        actor=by,
        changes={
            "revision": revision.number,
            "note": note,
            "promised_at": promised_at,
            "lines": [
                {"line_id": line.line_id, "description": line.description, "net": line.net}
                for line in lines
            ],
            **({"extra_work_id": extra_work_id} if extra_work_id else {}),
        },
    )
    return revision


def _link(current: EstimateRevision) -> dict[str, Any]:
    """A revision written while the current one awaits its answers answers the same extra
    work (pricing the work found is such a revision): the link to the work and its repair
    order passes on until the customer has answered."""
    if current.approved_at is not None:
        return {}
    return {"extra_work_id": current.extra_work_id, "repair_order_id": current.repair_order_id}


def _future(promised_at: datetime) -> datetime:
    if promised_at.tzinfo is None:
        raise InvalidInput("promised_at", "give the time with its offset, e.g. 2026-12-01T09:30Z")
    if promised_at <= utcnow():
        raise InvalidInput("promised_at", "the promised completion time is in the past")
    return promised_at


async def create(
    session: AsyncSession, data: EstimateCreate, by: User, settings: Settings
) -> EstimatePublic:
    intake = await session.get(Intake, data.intake_id)
    if intake is None or intake.branch != by.branch:
        raise InvalidInput("intake_id", f"no intake {data.intake_id} in branch {by.branch}")
    promised_at = _future(data.promised_at)
    existing = await session.exec(select(Estimate.id).where(Estimate.intake_id == intake.id))
    if (estimate_id := existing.first()) is not None:
        raise Conflict(
            f"intake {intake.id} already has estimate {estimate_id}; revise that one",
            estimate_id=str(estimate_id),
        )
    estimate = _new_estimate(intake, by.id, settings)
    priced = price_lines(data.lines)
    revision = _add_revision(
        session,
        estimate,
        lines=priced,
        promised_at=promised_at,
        note=data.note,
        tax_rate=(await branches.terms_of(session, estimate.branch, settings)).tax_rate,
        by=by,
    )
    await session.flush()
    return await public(session, estimate, revision, priced=priced)


def _new_estimate(intake: Intake, advisor: str, settings: Settings) -> Estimate:
    return Estimate(
        branch=intake.branch,
        intake_id=intake.id,
        customer_id=intake.customer_id,
        vehicle_id=intake.vehicle_id,
        advisor=advisor,
        currency=settings.currency,
    )


async def _editable(
    session: AsyncSession, estimate_id: uuid.UUID, by: User, if_match: str | None
) -> tuple[Estimate, EstimateRevision]:
    estimate = await get_estimate(session, estimate_id, by)
    check_if_match(if_match, estimate.version)
    return estimate, await get_revision(session, estimate)


async def revise(
    session: AsyncSession,
    estimate_id: uuid.UUID,
    data: EstimateRevise,
    by: User,
    if_match: str | None,
    settings: Settings,
) -> EstimatePublic:
    estimate, current = await _editable(session, estimate_id, by, if_match)
    previous = {line.line_id: line for line in current.revision_lines()}
    revision = _add_revision(
        session,
        estimate,
        lines=price_lines(data.lines, previous),
        promised_at=_future(data.promised_at),
        note=data.note,
        tax_rate=(await branches.terms_of(session, estimate.branch, settings)).tax_rate,
        by=by,
        **_link(current),
    )
    await session.flush()
    return await public(session, estimate, revision)


async def add_canned_job(
    session: AsyncSession,
    estimate_id: uuid.UUID,
    data: CannedJobAdd,
    by: User,
    if_match: str | None,
    settings: Settings,
) -> EstimatePublic:
    estimate, current = await _editable(session, estimate_id, by, if_match)
    canned = (
        await session.exec(
            select(CannedJob).where(
                CannedJob.branch == by.branch, CannedJob.op_code == data.op_code
            )
        )
    ).first()
    if canned is None:
        raise InvalidInput("op_code", f"no canned job {data.op_code} in branch {by.branch}")
    job = CannedJobCreate.model_validate(canned.template)
    added: list[LineIn] = [
        LineIn(
            kind=LineKind.labour,
            op_code=job.op_code,
            op_group=job.op_group,
            description=job.description,
            job_kind=job.job_kind,
            flat_rate_hours=job.flat_rate_hours,
            labour_rate=job.labour_rate,
            pay_type=data.pay_type,
        ),
        *(
            LineIn(
                kind=LineKind.part,
                op_code=job.op_code,
                op_group=job.op_group,
                job_kind=job.job_kind,
                part_number=part.part_number,
                description=part.description,
                quantity=part.quantity,
                unit_price=part.unit_price,
                pay_type=data.pay_type,
            )
            for part in job.parts
        ),
    ]
    kept = current.revision_lines()
    revision = _add_revision(
        session,
        estimate,
        lines=[*kept, *price_lines(added)],
        promised_at=current.promised_at,
        note=f"canned job {job.op_code}",
        tax_rate=Decimal(current.tax_rate),
        by=by,
        **_link(current),
    )
    await session.flush()
    return await public(session, estimate, revision)


async def reoffer(
    session: AsyncSession,
    estimate_id: uuid.UUID,
    line_ids: list[uuid.UUID],
    by: User,
    if_match: str | None,
) -> EstimatePublic:
    """Put declined lines to the customer again: a new revision in which they need an answer."""
    estimate, current = await _editable(session, estimate_id, by, if_match)
    lines = current.revision_lines()
    answers = answers_for(lines, await ledger(session, estimate.id))
    by_id = {line.line_id: line for line in lines}
    for index, line_id in enumerate(line_ids):
        answer = answers.get(line_id)
        if line_id not in by_id:
            raise InvalidInput(f"line_ids.{index}", "not a line of the current revision")
        if answer is None or answer.decision != Decision.declined:
            raise Conflict(f"line {line_id} was not declined; only declined lines are re-offered")
    wanted = set(line_ids)
    new_lines = [
        line.model_copy(update={"offer": line.offer + 1}) if line.line_id in wanted else line
        for line in lines
    ]
    revision = _add_revision(
        session,
        estimate,
        lines=new_lines,
        promised_at=current.promised_at,
        note="declined work offered again",
        tax_rate=Decimal(current.tax_rate),
        by=by,
        **_link(current),
    )
    await session.flush()
    return await public(session, estimate, revision)


# --- consent ---------------------------------------------------------------------------


async def record_consent(
    session: AsyncSession,
    estimate: Estimate,
    decisions: Sequence[LineDecision],
    *,
    by: str,
    channel: ConsentChannel,
    recorded_by: str,
    signature_file_id: uuid.UUID | None = None,
    call_note: str | None = None,
    revision_number: int | None = None,
    actor: User | None = None,
) -> EstimatePublic:
    """Append the answers to the ledger; publish the approval once every line has one."""
    revision = await get_revision(session, estimate)
    if revision_number is not None and revision_number != revision.number:
        raise Conflict(f"the estimate changed (now revision {revision.number}); ask for a new link")
    if revision.promised_at is None:
        raise Conflict("set the promised completion time (revise the estimate) before consent")
    # A line twice in one answer is a wrong body (422 naming the second), not a line
    # "already answered" (409): the ledger has nothing of it yet.
    seen: set[uuid.UUID] = set()
    for index, decision in enumerate(decisions):
        if decision.line_id in seen:
            raise InvalidInput(
                f"decisions.{index}.line_id", "this line is answered twice in one request"
            )
        seen.add(decision.line_id)
    lines = {line.line_id: line for line in revision.revision_lines()}
    records = await ledger(session, estimate.id)
    answered = answers_for(lines.values(), records)
    now = utcnow()
    for index, decision in enumerate(decisions):
        line = lines.get(decision.line_id)
        if line is None:
            raise InvalidInput(
                f"decisions.{index}.line_id", f"not a line of revision {revision.number}"
            )
        if decision.line_id in answered:
            raise Conflict(f"line {decision.line_id} is already answered in this revision")
        if decision.decision == Decision.approved and unpriced_extra_work(line):
            raise Conflict(
                f"line {line.line_id} is work found in the workshop and has no price yet: "
                "price it (revise the estimate) before the customer approves it",
                line_id=str(line.line_id),
            )
        record = ConsentRecord(
            estimate_id=estimate.id,
            revision=revision.number,
            line_id=line.line_id,
            fingerprint=line.fingerprint(),
            decision=decision.decision,
            by=by,
            channel=channel,
            signature_file_id=signature_file_id,
            call_note=call_note,
            recorded_by=recorded_by,
            at=now,
        )
        session.add(record)
        records.append(record)
        answered[line.line_id] = record
    estimate.updated_at = now
    session.add(estimate)
    complete = all(line_id in answered for line_id in lines)
    audit.record(
        session,
        action="estimate.consent",
        object_type="estimate",
        object_id=estimate.id,
        branch=estimate.branch,
        actor=actor or audit.Actor(recorded_by, by),
        at=now,
        changes={
            "revision": revision.number,
            "by": by,
            "channel": channel,
            "decisions": {str(d.line_id): d.decision for d in decisions},
            "approved": complete,
        },
    )
    if complete:
        await _approve(session, estimate, revision, answered)
    await session.flush()
    return await public(session, estimate, revision)


async def _approve(
    session: AsyncSession,
    estimate: Estimate,
    revision: EstimateRevision,
    answers: dict[uuid.UUID, ConsentRecord],
) -> None:
    revision.approved_at = utcnow()
    session.add(revision)
    # Every line, each naming the extra work it answers: the workshop adds what it does not
    # hold yet and tells each extra work its answer, however many revisions it went
    # through and however many extra works one revision answers.
    lines = revision.revision_lines()
    intake = await session.get(Intake, estimate.intake_id)
    customer = await session.get(Customer, estimate.customer_id)
    vehicle = await session.get(Vehicle, estimate.vehicle_id)
    assert intake and customer and vehicle  # foreign keys guarantee them
    assert revision.promised_at is not None
    tax_rate = Decimal(revision.tax_rate)
    approved = [line for line in lines if answers[line.line_id].decision == Decision.approved]
    declined = [line for line in lines if answers[line.line_id].decision == Decision.declined]
    add_event(
        session,
        EstimateApproved(
            estimate_id=estimate.id,
            revision=revision.number,
            intake_id=estimate.intake_id,
            branch=estimate.branch,
            customer_id=customer.id,
            customer_name=customer.name,
            vehicle_id=vehicle.id,
            vin=vehicle.vin,
            plate=vehicle.plate,
            advisor=estimate.advisor,
            odometer_km=intake.odometer_km,
            currency=estimate.currency,
            promised_at=revision.promised_at,
            approved_lines=[to_contract(line, tax_rate) for line in approved],
            declined_lines=[to_contract(line, tax_rate) for line in declined],
            consents=[
                ConsentRef(
                    line_id=line.line_id,
                    decision=answers[line.line_id].decision,
                    by=answers[line.line_id].by,
                    channel=answers[line.line_id].channel,
                    at=answers[line.line_id].at,
                )
                for line in lines
            ],
            approved_at=revision.approved_at,
            repair_order_id=revision.repair_order_id,
            extra_work_id=revision.extra_work_id,
        ),
        subject=estimate.id,
    )


# --- canned jobs -----------------------------------------------------------------------


async def create_canned_job(session: AsyncSession, data: CannedJobCreate, by: User) -> CannedJob:
    existing = await session.exec(
        select(CannedJob.id).where(CannedJob.branch == by.branch, CannedJob.op_code == data.op_code)
    )
    if existing.first() is not None:
        raise Conflict(f"canned job {data.op_code} already exists in branch {by.branch}")
    canned = CannedJob(
        branch=by.branch, op_code=data.op_code, template=data.model_dump(mode="json")
    )
    session.add(canned)
    return canned


async def list_canned_jobs(session: AsyncSession, by: User) -> list[CannedJob]:
    return list(
        (
            await session.exec(
                select(CannedJob)
                .where(CannedJob.branch == by.branch)
                .order_by(col(CannedJob.op_code))
                .limit(500)
            )
        ).all()
    )


# --- extra work from the workshop ------------------------------------------------------


async def extra_work_found(
    session: AsyncSession, event: ExtraWorkFound, settings: Settings
) -> EstimateRevision | None:
    """The work becomes a new revision waiting for the customer's consent."""
    done = await session.exec(
        select(EstimateRevision.id).where(EstimateRevision.extra_work_id == event.extra_work_id)
    )
    if done.first() is not None:
        return None
    intake = await session.get(Intake, event.intake_id)
    if intake is None or intake.branch != event.branch:
        return None
    estimate = (await session.exec(select(Estimate).where(Estimate.intake_id == intake.id))).first()
    if estimate is None:
        estimate = _new_estimate(intake, intake.advisor, settings)
        kept: list[RevisionLine] = []
        promised_at = None
        tax_rate = (await branches.terms_of(session, intake.branch, settings)).tax_rate
    else:
        current = await get_revision(session, estimate)
        kept = current.revision_lines()
        promised_at, tax_rate = current.promised_at, Decimal(current.tax_rate)
    known = {line.line_id for line in kept}
    proposed: list[RevisionLine] = []
    found_lines = await _canned_prices(session, event)
    for found in found_lines:
        fields = found.model_dump(exclude={"net", "tax_rate", "extra_work_id"})
        if found.line_id in known:
            fields["line_id"] = uuid.uuid4()
        line = RevisionLine(**fields, extra_work_id=event.extra_work_id)
        line.net = pricing.line_net(line)
        proposed.append(line)
    return _add_revision(
        session,
        estimate,
        lines=[*kept, *proposed],
        promised_at=promised_at,
        note=event.findings[:500],
        tax_rate=tax_rate,
        by=audit.Actor(event.found_by, event.found_by),
        extra_work_id=event.extra_work_id,
        repair_order_id=event.repair_order_id,
    )


async def _canned_prices(session: AsyncSession, event: ExtraWorkFound) -> list[EstimateLine]:
    """Work found with the op code of one of the branch's canned jobs comes priced as the
    canned job is: its labour rate on the labour line (the hours the workshop gave), its
    parts' prices on parts lines of that op code, and its parts added when the workshop
    proposed none for it. Other lines stay unpriced for the advisor."""
    codes = {line.op_code for line in event.proposed_lines if line.op_code}
    if not codes:
        return list(event.proposed_lines)
    rows = await session.exec(
        select(CannedJob).where(
            CannedJob.branch == event.branch, col(CannedJob.op_code).in_(sorted(codes))
        )
    )
    canned = {row.op_code: CannedJobCreate.model_validate(row.template) for row in rows.all()}
    with_parts = {line.op_code for line in event.proposed_lines if line.kind == "part"}
    priced: list[EstimateLine] = []
    for line in event.proposed_lines:
        job = canned.get(line.op_code or "")
        if job is None:
            priced.append(line)
            continue
        if line.kind == "labour" and not line.labour_rate:
            update: dict[str, Any] = {
                "labour_rate": job.labour_rate,
                "op_group": line.op_group or job.op_group,
                "job_kind": line.job_kind or job.job_kind,
            }
            if not line.description:
                update["description"] = job.description
            priced.append(line.model_copy(update=update))
            if line.op_code not in with_parts:
                priced.extend(
                    EstimateLine(
                        line_id=uuid.uuid4(),
                        kind="part",
                        op_code=job.op_code,
                        op_group=job.op_group,
                        job_kind=job.job_kind,
                        part_number=part.part_number,
                        description=part.description,
                        quantity=part.quantity,
                        unit_price=part.unit_price,
                        pay_type=line.pay_type,
                        extra_work_id=event.extra_work_id,
                    )
                    for part in job.parts
                )
                with_parts.add(line.op_code)
        elif line.kind == "part" and not line.unit_price:
            same = next((p for p in job.parts if p.part_number == line.part_number), None)
            priced.append(line.model_copy(update={"unit_price": same.unit_price}) if same else line)
        else:
            priced.append(line)
    return priced
