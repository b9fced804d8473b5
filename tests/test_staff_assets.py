"""The staff app's assets: addressed by their content's hash and kept a year, compressed
over the wire, the signature pad and the CJK face only where they are needed."""

import hashlib
import re

import httpx
import pytest

from services.staff.main import create_app
from services.staff.web import HERE


@pytest.mark.asyncio
async def test_assets_are_hashed_kept_a_year_and_compressed() -> None:
    app = create_app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://staff") as client:
        page = await client.get("/signin/dev", headers={"Accept-Encoding": "gzip"})
        assert page.status_code == 200
        assert page.headers.get("content-encoding") == "gzip"
        addresses = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
        assert addresses, page.text[:500]
        # No page without a signature asks for the signature pad.
        assert not [a for a in addresses if "signature_pad" in a]
        for address in addresses:
            name, digest = address.removeprefix("/static/").split("?v=")
            content = (HERE / "static" / name).read_bytes()
            assert digest == hashlib.sha256(content).hexdigest()[:12]
            r = await client.get(address, headers={"Accept-Encoding": "gzip"})
            assert r.status_code == 200
            assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
            if len(content) > 1024:
                assert r.headers.get("content-encoding") == "gzip", address
        # An address without the hash may be stale: it is not kept.
        bare = await client.get("/static/app.css")
        assert bare.status_code == 200 and "cache-control" not in bare.headers


def test_the_cjk_face_is_the_devices_own_where_it_has_one() -> None:
    css = (HERE / "static" / "app.css").read_text()
    face = css[css.index("@font-face") : css.index("}", css.index("@font-face"))]
    sources = re.findall(r"(local|url)\(", face)
    # Every local() face before the 4.6 MB file: the file is fetched only when none is found.
    assert sources[-1] == "url" and sources.count("url") == 1 and len(sources) > 5
