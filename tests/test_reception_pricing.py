"""Estimate prices, tax, rounding and the revision/consent rules, without a database."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.reception import pricing
from services.reception.estimates import answers_for, price_lines
from services.reception.models import ConsentChannel, ConsentRecord, Decision, LineIn, RevisionLine
from shared.problems import InvalidInput

D = Decimal


def labour(hours: str, rate: str, **kw: object) -> LineIn:
    return LineIn(kind="labour", op_code="OP1", flat_rate_hours=D(hours), labour_rate=D(rate), **kw)


def part(qty: str, price: str, **kw: object) -> LineIn:
    return LineIn(kind="part", part_number="P1", quantity=D(qty), unit_price=D(price), **kw)


def test_line_net_rounds_half_up_once():
    # 1.25 h x 100.02 = 125.025 -> 125.03 (banker's rounding would give 125.02)
    (line,) = price_lines([labour("1.25", "100.02")])
    assert line.net == D("125.03")
    (line,) = price_lines([part("3", "0.335", discount=D("0"))])
    assert line.net == D("1.01")  # 1.005 -> 1.01


def test_discount_comes_off_before_rounding():
    (line,) = price_lines([part("2", "10.005", discount=D("0.01"))])
    assert line.net == D("20.00")  # 20.010 - 0.01


def test_tax_is_rounded_once_per_pay_type_on_the_sum_of_nets():
    lines = price_lines(
        [
            part("1", "0.05"),
            part("1", "0.05"),
            part("1", "0.05"),
            part("1", "10.00", pay_type="warranty"),
        ]
    )
    result = pricing.totals(lines, D("0.13"))
    customer = result.by_pay_type[0]
    # tax on 0.15 is 0.0195 -> 0.02; per line it would have been 3 x 0.01 = 0.03
    assert (customer.pay_type, customer.net, customer.tax) == ("customer", D("0.15"), D("0.02"))
    warranty = result.by_pay_type[1]
    assert (warranty.net, warranty.tax, warranty.total) == (D("10.00"), D("1.30"), D("11.30"))
    assert result.total == D("11.47")


def test_lines_refuse_what_a_workshop_cannot_price():
    with pytest.raises(ValueError, match="op_code"):
        LineIn(kind="labour", flat_rate_hours=D("1"), labour_rate=D("1"))
    with pytest.raises(ValueError, match="part_number"):
        LineIn(kind="part", quantity=D("1"), unit_price=D("1"))
    with pytest.raises(ValueError, match="discount"):
        part("1", "10", discount=D("10.01"))
    with pytest.raises(ValueError):
        part("0", "10")


money = st.decimals(min_value=0, max_value=99999, places=3)
hours = st.decimals(min_value=D("0.1"), max_value=99, places=2)
qty = st.decimals(min_value=D("0.001"), max_value=999, places=3)
pay = st.sampled_from(["customer", "warranty", "internal"])
line_inputs = st.one_of(
    st.builds(lambda h, r, p: labour(str(h), str(r), pay_type=p), hours, money, pay),
    st.builds(lambda q, u, p: part(str(q), str(u), pay_type=p), qty, money, pay),
)


@given(st.lists(line_inputs, max_size=30), st.decimals(min_value=0, max_value=1, places=4))
def test_totals_are_the_sum_of_rounded_lines_plus_rounded_tax(lines, rate):
    priced = price_lines(lines)
    result = pricing.totals(priced, rate)
    assert result.net == sum((line.net for line in priced), D("0"))
    for group in result.by_pay_type:
        net = sum((line.net for line in priced if line.pay_type == group.pay_type), D("0"))
        assert group.net == net
        assert group.tax == pricing.round_money(net * rate)
        assert group.tax.as_tuple().exponent == -2
    assert result.total == result.net + sum(g.tax for g in result.by_pay_type)
    for line in priced:
        assert line.net == pricing.round_money(pricing.gross(line) - line.discount)


def test_kept_lines_keep_their_id_and_unknown_ids_are_refused():
    first = price_lines([labour("1", "100"), part("1", "5")])
    previous = {line.line_id: line for line in first}
    kept = LineIn(**first[0].model_dump(include=set(LineIn.model_fields)))
    second = price_lines([kept, part("2", "5")], previous)
    assert second[0].line_id == first[0].line_id
    assert second[1].line_id not in previous
    with pytest.raises(InvalidInput):
        price_lines([labour("1", "1", line_id=uuid.uuid4())], previous)
    with pytest.raises(InvalidInput):
        price_lines([kept, kept], previous)


def _consent(line: RevisionLine, decision: str, revision: int = 1) -> ConsentRecord:
    return ConsentRecord(
        estimate_id=uuid.uuid4(),
        revision=revision,
        line_id=line.line_id,
        fingerprint=line.fingerprint(),
        decision=Decision(decision),
        by="王芳",
        channel=ConsentChannel.phone,
        recorded_by="advisor",
        at=datetime.now(UTC),
    )


def test_an_answer_holds_only_for_the_content_it_answered():
    (line,) = price_lines([labour("1", "100")])
    ledger = [_consent(line, "approved")]
    assert answers_for([line], ledger)[line.line_id].decision == "approved"
    repriced = line.model_copy(update={"labour_rate": D("120")})
    assert answers_for([repriced], ledger) == {}
    reoffered = line.model_copy(update={"offer": 2})
    assert answers_for([reoffered], ledger) == {}
    ledger.append(_consent(reoffered, "declined", 2))
    assert answers_for([reoffered], ledger)[line.line_id].decision == "declined"
    # the ledger still holds the first answer: history is never lost
    assert [r.decision for r in ledger if r.line_id == line.line_id] == ["approved", "declined"]


@given(st.lists(st.sampled_from(["approved", "declined", "reprice", "reoffer"]), max_size=20))
def test_revisions_never_lose_a_lines_consent_history(steps):
    (line,) = price_lines([labour("1", "100")])
    ledger: list[ConsentRecord] = []
    for step in steps:
        if step in ("approved", "declined"):
            ledger.append(_consent(line, step))
        elif step == "reprice":
            line = line.model_copy(update={"labour_rate": line.labour_rate + 1})
        else:
            line = line.model_copy(update={"offer": line.offer + 1})
        answer = answers_for([line], ledger).get(line.line_id)
        if answer is not None:
            assert answer.fingerprint == line.fingerprint()
    assert sum(1 for r in ledger if r.line_id == line.line_id) == sum(
        1 for s in steps if s in ("approved", "declined")
    )
