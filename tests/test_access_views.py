"""shared.access: the view syntax, what a view leaves of an answer, and the union of a
user's roles."""

import dataclasses

import pytest

from services.workorders.config import Settings
from services.workorders.main import SPEC
from shared.access import EVERYTHING, Projections, parse_view, project, project_answer
from shared.auth import Role
from shared.service import create_service_app

ORDER = {
    "id": 1,
    "customer_name": "王芳",
    "jobs": [{"id": 7, "parts": [{"part_number": "BP-1", "net": "380"}]}],
    "invoice": {"total": "1130"},
}


def test_a_view_keeps_only_its_fields_at_every_depth():
    tree = parse_view("id, jobs(id, parts(part_number))")
    assert project(ORDER, tree) == {
        "id": 1,
        "jobs": [{"id": 7, "parts": [{"part_number": "BP-1"}]}],
    }
    # A field named whole keeps all of it; a missing one is simply absent.
    assert project(ORDER, parse_view("invoice, nowhere")) == {"invoice": {"total": "1130"}}


def test_a_view_uses_another_by_name_and_a_page_is_cut_item_by_item():
    named = {"part": parse_view("part_number")}
    tree = parse_view("`id, jobs(parts(@part))`", named)
    page = {"items": [ORDER, ORDER], "next_cursor": "abc"}
    cut = project_answer(page, tree)
    assert cut["next_cursor"] == "abc"
    assert cut["items"] == [{"id": 1, "jobs": [{"parts": [{"part_number": "BP-1"}]}]}] * 2


@pytest.mark.parametrize("text", ["id, jobs(id", "id)", "jobs(@unknown)", "cust omer", "a, (b)"])
def test_a_malformed_view_is_refused(text: str):
    with pytest.raises(ValueError):
        parse_view(text)


def test_several_roles_see_the_union_and_an_unlisted_role_adds_nothing():
    projections = Projections(
        views={"floor": "id, jobs(id)", "money": "id, invoice"},
        operations={
            "GET /x": {Role.technician: "floor", Role.cashier: "money", Role.manager: EVERYTHING}
        },
    )
    both = projections.for_roles("GET /x", {Role.technician, Role.cashier})
    assert project(ORDER, both) == {"id": 1, "jobs": [{"id": 7}], "invoice": {"total": "1130"}}
    assert projections.for_roles("GET /x", {Role.technician, Role.manager}) is None  # all
    floor = projections.for_roles("GET /x", {Role.technician, Role.followup_agent})
    assert project(ORDER, floor) == {"id": 1, "jobs": [{"id": 7}]}
    assert projections.for_roles("GET /x", {Role.screen}) == {}


def test_a_projection_naming_an_unknown_view_is_refused_at_once():
    with pytest.raises(ValueError, match="unknown view"):
        Projections(views={}, operations={"GET /x": {Role.qc: "floor"}})


def test_an_app_refuses_a_projection_for_an_operation_it_lacks():
    typo = Projections(views={}, operations={"GET /repair-order/{order_id}": {Role.qc: "*"}})
    with pytest.raises(ValueError, match="GET /repair-order/"):
        create_service_app(Settings(), dataclasses.replace(SPEC, projections=typo))


def test_the_openapi_tells_which_fields_each_role_gets():
    app = create_service_app(Settings(), SPEC)
    description = app.openapi()["paths"]["/repair-orders/{order_id}"]["get"]["description"]
    assert "- technician, qc: `order-work`: id, number," in description
    assert "- advisor, manager: every field" in description
