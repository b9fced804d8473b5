"""The OpenAPI document of each service is a complete contract: every error an operation can
answer is documented as application/problem+json with the Problem schema, lists have one
shape, /metrics is text, dates carry their pattern."""

import importlib
import re
from typing import Any

import pytest
from fastapi import FastAPI

from shared.problems import PROBLEM_JSON

SERVICES = ["reception", "workorders", "followup", "records"]
PROBLEM = {"schema": {"$ref": "#/components/schemas/Problem"}}


def app_of(name: str) -> FastAPI:
    app: FastAPI = importlib.import_module(f"services.{name}.main").create_app()
    return app


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, ops in schema["paths"].items()
        for method, op in ops.items()
    ]


@pytest.mark.parametrize("service", SERVICES)
def test_every_error_is_a_documented_problem(service: str) -> None:
    schema = app_of(service).openapi()
    assert "Problem" in schema["components"]["schemas"]
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    missing: list[str] = []
    for method, path, op in operations(schema):
        responses = op["responses"]
        params = op.get("parameters", [])
        expected: set[str] = set()
        if op.get("security"):
            expected |= {"401", "403"}
            if not op.get("x-roles"):
                missing.append(f"{method} {path}: x-roles")
        if any(p["in"] == "path" for p in params):
            expected |= {"404", "422"}
        if params or "requestBody" in op:
            expected.add("422")
        if "requestBody" in op:
            expected.add("413")
        if any(p["in"] == "header" and p["name"].lower() == "if-match" for p in params):
            expected |= {"412", "428"}
        if method != "GET":
            expected.add("409")
        for status in sorted(expected - set(responses)):
            missing.append(f"{method} {path}: {status}")
        for status, answer in responses.items():
            if status[0] in "45" and answer.get("content", {}).get(PROBLEM_JSON) != PROBLEM:
                missing.append(f"{method} {path}: {status} is not a problem")
    assert missing == []


@pytest.mark.parametrize("service", SERVICES)
def test_metrics_are_text_and_lists_have_one_shape(service: str) -> None:
    schema = app_of(service).openapi()
    ok = schema["paths"]["/metrics"]["get"]["responses"]["200"]
    assert list(ok["content"]) == ["text/plain"]
    assert schema["paths"]["/metrics"]["get"]["x-roles"] == ["admin", "manager"]
    for method, path, op in operations(schema):
        for content in op["responses"].get("200", {}).get("content", {}).values():
            assert content.get("schema", {}).get("type") != "array", f"{method} {path}"


# The board's cards are JSON built without a model (the hot path of every screen).
SCHEMALESS_JSON = {("workorders", "/board/cards")}


@pytest.mark.parametrize("service", SERVICES)
def test_every_answer_names_its_media_type(service: str) -> None:
    """A PDF, a font or a file's bytes are not documented as JSON; JSON has its schema."""
    vague = []
    for method, path, op in operations(app_of(service).openapi()):
        for status, answer in op["responses"].items():
            if status[0] != "2" or status == "204":
                continue
            content = answer.get("content", {})
            json_schema = content.get("application/json", {}).get("schema")
            if not content or (
                "application/json" in content
                and not json_schema
                and (service, path) not in SCHEMALESS_JSON
            ):
                vague.append(f"{method} {path} {status}")
    assert vague == []


def test_every_reference_resolves() -> None:
    """A body schema given whole (records' signed ERP bodies) brings its definitions into
    the components, where its references point."""
    for service in SERVICES:
        schema = app_of(service).openapi()
        text = str(schema)
        assert "#/$defs/" not in text and "'$defs'" not in text, service
        for name in re.findall(r"#/components/schemas/([A-Za-z0-9_.-]+)", text):
            assert name in schema["components"]["schemas"], f"{service}: {name}"


def test_dates_in_a_request_carry_their_pattern() -> None:
    schema = app_of("reception").openapi()
    [day] = [p for p in schema["paths"]["/appointments"]["get"]["parameters"] if p["name"] == "day"]
    assert day["schema"]["pattern"] == r"^\d{4}-\d{2}-\d{2}$"
    assert "1900" in day["schema"]["description"]
