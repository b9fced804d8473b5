"""Reception's migrations carry existing rows forward: numbers and plates registered before
the desk's indexes existed are found by the search afterwards."""

import uuid

import pytest
from sqlalchemy import text

from services.reception.main import SPEC
from shared.db import Database
from shared.migrations import upgrade

pytestmark = [pytest.mark.asyncio, pytest.mark.store]


async def test_numbers_and_plates_from_before_0007_are_indexed(database_url: str) -> None:
    db = Database(database_url)
    try:
        await upgrade(db, SPEC.migrations, "0006")
        customer, vehicle, bare = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        as_id = (lambda u: u) if not db.is_sqlite else (lambda u: u.hex)
        async with db.engine.begin() as conn:
            for cid, mobile in ((customer, "13800000000"), (bare, None)):
                await conn.execute(
                    text(
                        "INSERT INTO customer (id, branch, name, mobile, preferred_channel, "
                        "language, contact_consent, created_at) VALUES (:id, 'BR01', '王芳', "
                        ":mobile, 'phone', 'zh-CN', true, CURRENT_TIMESTAMP)"
                    ),
                    {"id": as_id(cid), "mobile": mobile},
                )
            await conn.execute(
                text(
                    "INSERT INTO vehicle (id, branch, customer_id, vin, plate, created_at) "
                    "VALUES (:id, 'BR01', :c, 'LSVAU2180N2183294', '沪A12345', CURRENT_TIMESTAMP)"
                ),
                {"id": as_id(vehicle), "c": as_id(customer)},
            )
        await upgrade(db, SPEC.migrations)
        async with db.engine.connect() as conn:
            phones = (await conn.execute(text("SELECT number FROM customer_phone"))).all()
            suffixes = (
                await conn.execute(text("SELECT suffix FROM vehicle_plate_suffix ORDER BY suffix"))
            ).all()
            kinds = (await conn.execute(text("SELECT DISTINCT account_kind FROM customer"))).all()
        assert [row[0] for row in phones] == ["13800000000"]
        assert sorted(row[0] for row in suffixes) == sorted(
            ["沪A12345", "A12345", "12345", "2345", "345"]
        )
        assert [row[0] for row in kinds] == ["private"]
    finally:
        await db.dispose()


async def test_vehicles_from_before_0011_carry_their_owners_initial(database_url: str) -> None:
    db = Database(database_url)
    try:
        await upgrade(db, SPEC.migrations, "0010")
        as_id = (lambda u: u) if not db.is_sqlite else (lambda u: u.hex)
        owners = {uuid.uuid4(): "王芳", uuid.uuid4(): "Li Lei"}
        async with db.engine.begin() as conn:
            for i, (cid, name) in enumerate(owners.items()):
                await conn.execute(
                    text(
                        "INSERT INTO customer (id, branch, name, preferred_channel, language, "
                        "contact_consent, created_at) VALUES (:id, 'BR01', :name, 'phone', "
                        "'zh-CN', true, CURRENT_TIMESTAMP)"
                    ),
                    {"id": as_id(cid), "name": name},
                )
                await conn.execute(
                    text(
                        "INSERT INTO vehicle (id, branch, customer_id, vin, created_at) "
                        "VALUES (:id, 'BR01', :c, :vin, CURRENT_TIMESTAMP)"
                    ),
                    {"id": as_id(uuid.uuid4()), "c": as_id(cid), "vin": f"LSVAU2180N218329{i}"},
                )
        await upgrade(db, SPEC.migrations)
        async with db.engine.connect() as conn:
            initials = (
                await conn.execute(text("SELECT owner_initial FROM vehicle ORDER BY owner_initial"))
            ).all()
        assert sorted(row[0] for row in initials) == sorted(["王", "L"])
    finally:
        await db.dispose()
