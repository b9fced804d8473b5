"""Followup's use cases."""

import uuid
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.followup.models import Contact
from shared.auth import User
from shared.contracts import CustomerSnapshot
from shared.events import utcnow
from shared.pagination import after, page
from shared.problems import NotFound


async def upsert_contact(
    session: AsyncSession,
    branch: str,
    customer: CustomerSnapshot,
    *,
    as_of: datetime,
    intake_at: datetime | None = None,
) -> Contact:
    """Add or refresh a contact; details older than what we hold are not applied."""
    contact = await session.get(Contact, customer.id)
    if contact is None:
        contact = Contact(
            customer_id=customer.id,
            branch=branch,
            name=customer.name,
            mobile=customer.mobile,
            preferred_channel=customer.preferred_channel,
            language=customer.language,
            contact_consent=customer.contact_consent,
            as_of=as_of,
            updated_at=utcnow(),
        )
        session.add(contact)
    elif as_of >= contact.as_of:
        contact.name, contact.mobile = customer.name, customer.mobile
        contact.preferred_channel, contact.language = customer.preferred_channel, customer.language
        contact.contact_consent, contact.as_of = customer.contact_consent, as_of
        contact.updated_at = utcnow()
    if intake_at is not None:
        contact.visits += 1
        if contact.last_intake_at is None or intake_at > contact.last_intake_at:
            contact.last_intake_at = intake_at
    return contact


async def get_contact(session: AsyncSession, customer_id: uuid.UUID, by: User) -> Contact:
    contact = await session.get(Contact, customer_id)
    if contact is None or contact.branch != by.branch:
        raise NotFound(f"no contact for customer {customer_id}")
    return contact


async def list_contacts(
    session: AsyncSession, by: User, *, limit: int, cursor: str | None
) -> tuple[list[Contact], str | None]:
    query = (
        select(Contact)
        .where(Contact.branch == by.branch)
        .where(after(Contact.updated_at, Contact.customer_id, cursor))
        .order_by(col(Contact.updated_at).desc(), col(Contact.customer_id).desc())
        .limit(limit + 1)
    )
    return page(list((await session.exec(query)).all()), limit, "updated_at", key="customer_id")
