"""Unit tests of the rules: VINs, cursors, tokens, event contracts."""

import time
import uuid
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.reception import vin as vins
from shared import contracts
from shared.auth import VERIFIED_TOKENS, Authenticator, Role, issue_dev_token
from shared.events import CONTRACTS, Contract, decode, encode
from shared.pagination import decode_cursor, encode_cursor
from shared.problems import InvalidInput, Unauthorized
from shared.settings import ServiceSettings

VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"


def test_known_vins_decode() -> None:
    honda = vins.decode("1HGCM82633A004352")
    assert (honda.manufacturer, honda.region, honda.model_year) == ("Honda", "North America", 2003)
    raw = "5YJ3E1EA0KF317000"
    valid = raw[:8] + vins.check_digit(raw) + raw[9:]
    tesla = vins.decode(f" {valid.lower()} ")
    assert tesla.vin == valid
    assert (tesla.manufacturer, tesla.model_year) == ("Tesla", 2019)


def test_european_vins_need_no_check_digit() -> None:
    decoded = vins.decode("WVWZZZ1JZXW000001")
    assert decoded.manufacturer == "Volkswagen"
    assert decoded.model_year == 1999


def test_model_year_never_in_the_far_future() -> None:
    # Position 10 'N' means 1992 or 2022: on a 2023 calendar it is 2022.
    vin = "LSVAU2180N2183294"
    vin = vin[:8] + vins.check_digit(vin) + vin[9:]
    assert vins.decode(vin, today=date(2023, 1, 1)).model_year == 2022
    assert vins.decode(vin, today=date(2000, 1, 1)).model_year == 1992


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("1HGCM82633A00435", "17 chars"),
        ("1HGCM82633A0043522", "17 chars"),
        ("1HGCM82633A00435O", "except 'I', 'O', and 'Q'"),
        ("1HGCM82623A004352", "check digit"),
        ("LSVAU2180N2183294", "check digit"),
    ],
)
def test_invalid_vins_are_refused_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(vins.InvalidVin, match=reason):
        vins.decode(raw)


@given(st.text(alphabet=VIN_CHARS, min_size=17, max_size=17))
def test_check_digit_round_trip(raw: str) -> None:
    vin = "1" + raw[1:8] + "0" + raw[9:]
    fixed = vin[:8] + vins.check_digit(vin) + vin[9:]
    assert vins.decode(fixed).vin == fixed
    wrong = next(c for c in "0123456789X" if c != fixed[8])
    with pytest.raises(vins.InvalidVin):
        vins.decode(fixed[:8] + wrong + fixed[9:])


@given(
    st.datetimes(datetime(1900, 1, 1), datetime(2199, 12, 31, 23, 59), timezones=st.just(UTC)),
    st.uuids(),
)
def test_cursor_round_trip(at: datetime, row_id: uuid.UUID) -> None:
    assert decode_cursor(encode_cursor(at, row_id)) == (at, row_id)


@pytest.mark.parametrize("cursor", ["", "garbage!", "W10", "bm90IGpzb24"])
def test_foreign_cursors_are_invalid_input(cursor: str) -> None:
    with pytest.raises(InvalidInput):
        decode_cursor(cursor)


@pytest.mark.asyncio
async def test_dev_token_authenticates_with_roles_and_branch() -> None:
    settings = ServiceSettings()
    token = issue_dev_token(
        settings.jwt_secret,
        role=["advisor", "nonsense"],
        branch="SH01",
        sub="u1",
        name="Advisor One",
    )
    user = await Authenticator(settings).authenticate(token)
    assert user.id == "u1" and user.branch == "SH01" and user.name == "Advisor One"
    assert user.roles == frozenset({Role.advisor})


@pytest.mark.asyncio
async def test_keycloak_style_realm_roles_are_read() -> None:
    import jwt

    settings = ServiceSettings()
    token = jwt.encode(
        {
            "sub": "kc",
            "exp": 2_000_000_000,
            "branch": "BR01",
            "realm_access": {"roles": ["foreman", "offline_access"]},
        },
        settings.jwt_secret,
        algorithm="HS256",
    )
    user = await Authenticator(settings).authenticate(token)
    assert user.roles == frozenset({Role.foreman})


@pytest.mark.asyncio
async def test_token_signed_with_none_is_refused() -> None:
    import jwt

    token = jwt.encode(
        {"sub": "x", "exp": 2_000_000_000, "branch": "B", "roles": ["admin"]},
        "",
        algorithm="none",
    )
    with pytest.raises(Unauthorized):
        await Authenticator(ServiceSettings()).authenticate(token)


def test_contract_subjects_follow_the_naming_rule() -> None:
    assert CONTRACTS
    for event_type, cls in CONTRACTS.items():
        service, _aggregate, _event, version = event_type.split(".")
        assert service in {"reception", "workorders", "followup", "records", "probe"}
        assert version.startswith("v") and version[1:].isdigit()
        assert cls.stream() == service.upper()


def test_envelope_is_cloudevents_json_and_round_trips() -> None:
    customer = contracts.CustomerSnapshot(id=uuid.uuid4(), name="王芳")
    event = contracts.CustomerRegistered(
        branch="BR01", customer=customer, registered_at=datetime.now(UTC)
    )
    envelope = event.to_envelope(subject=str(customer.id))
    back = decode(encode(envelope))
    assert back.specversion == "1.0" and back.source == "reception"
    assert back.type == "reception.customer.registered.v1"
    assert back.subject == str(customer.id)
    received = contracts.CustomerRegistered.from_envelope(back)
    assert received.customer.name == "王芳"
    assert received.envelope.id == envelope.id


def test_consumers_ignore_fields_added_by_newer_producers() -> None:
    payload = {
        "branch": "BR01",
        "registered_at": "2026-01-01T00:00:00Z",
        "customer": {"id": str(uuid.uuid4()), "name": "A", "vip": True},
        "added_in_a_later_version": 1,
    }
    assert contracts.CustomerRegistered.model_validate(payload).customer.name == "A"


def test_a_contract_type_cannot_be_declared_twice() -> None:
    with pytest.raises(ValueError, match="declared twice"):
        type(
            "Again",
            (Contract,),
            {"type": "reception.customer.registered.v1", "__annotations__": {}},
        )


def test_if_match_accepts_the_current_etag_only() -> None:
    from shared.concurrency import PreconditionRequired, check_if_match, etag
    from shared.problems import PreconditionFailed

    check_if_match('"3"', 3)
    check_if_match('W/"3", "4"', 4)
    check_if_match("*", 9)
    check_if_match(None, 1, required=False)
    assert etag(7) == '"7"'
    with pytest.raises(PreconditionFailed):
        check_if_match('"2"', 3)
    with pytest.raises(PreconditionRequired):
        check_if_match(None, 3)


def test_a_contract_field_may_not_hide_the_contract_attributes() -> None:
    with pytest.raises(TypeError, match="source"), pytest.warns(UserWarning, match="shadows"):
        type("Shadowing", (Contract,), {"__annotations__": {"source": str}})


@pytest.mark.asyncio
async def test_a_verified_token_is_refused_once_it_expires() -> None:
    settings = ServiceSettings()
    now = [time.time()]
    authenticator = Authenticator(settings, clock=lambda: now[0])
    token = issue_dev_token(settings.jwt_secret, role="technician", sub="tech-li", ttl=60)
    first = await authenticator.authenticate(token)
    assert await authenticator.authenticate(token) == first
    now[0] += 61
    with pytest.raises(Unauthorized, match="expired"):
        await authenticator.authenticate(token)
    with pytest.raises(Unauthorized, match="expired"):  # and stays refused
        await authenticator.authenticate(token)


@pytest.mark.asyncio
async def test_verified_tokens_kept_are_bounded() -> None:
    settings = ServiceSettings()
    authenticator = Authenticator(settings)
    for n in range(VERIFIED_TOKENS + 10):
        await authenticator.authenticate(
            issue_dev_token(settings.jwt_secret, role="advisor", sub=f"u{n}")
        )
    assert len(authenticator._verified) == VERIFIED_TOKENS


def test_nats_url_names_one_server_or_a_cluster() -> None:
    assert ServiceSettings(nats_url="nats://n1:4222").nats_servers == ["nats://n1:4222"]
    cluster = ServiceSettings(nats_url=" nats://n1:4222, nats://n2:4222,nats://n3:4222 ,")
    assert cluster.nats_servers == ["nats://n1:4222", "nats://n2:4222", "nats://n3:4222"]
    with pytest.raises(ValueError, match="names no NATS server"):
        ServiceSettings(nats_url=" , ")


def test_stream_replicas_are_what_jetstream_keeps() -> None:
    assert ServiceSettings().stream_replicas == 1
    assert ServiceSettings(stream_replicas=3).stream_replicas == 3
    for count in (0, 6):
        with pytest.raises(ValueError, match="stream_replicas"):
            ServiceSettings(stream_replicas=count)
