"""Text from requests of every service: search input matches only itself."""

import httpx
import pytest

from tests.harness import auth
from tests.test_bad_input import reception  # noqa: F401

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

ADVISOR = auth("advisor")


async def test_wildcards_in_a_customer_search_match_only_themselves(
    reception: httpx.AsyncClient,  # noqa: F811
) -> None:
    names = ["王芳", "李雷", "_李", "%折扣", "\\王"]
    for name in names:
        r = await reception.post("/customers", headers=ADVISOR, json={"name": name})
        assert r.status_code == 201, r.text

    async def found(q: str) -> list[str]:
        r = await reception.get("/customers", params={"q": q}, headers=ADVISOR)
        assert r.status_code == 200, r.text
        return sorted(c["name"] for c in r.json()["items"])

    assert await found("%") == ["%折扣"]
    assert await found("_") == ["_李"]
    assert await found("_李") == ["_李"]
    assert await found("\\") == ["\\王"]
    assert await found("%%") == []
    assert await found("王") == ["王芳"]
