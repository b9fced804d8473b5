"""Records' stored files: streamed, content-checked uploads kept once per hash, ranged
downloads, references and the collector, in process on a real database and NATS."""

import hashlib
import re
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import anyio
import httpx
import pytest
import pytest_asyncio
from sqlmodel import func, select

from services.records import files
from services.records.config import Settings
from services.records.main import create_app
from services.records.models import StoredFile
from services.records.storage import FileStorage, LocalDiskStorage, S3Storage
from shared.events import utcnow
from tests.harness import NatsServer, auth
from tests.records_s3 import MotoS3
from tests.test_bad_input import assert_problem

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

LIMIT = 64 * 1024
JPEG = (
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(range(256)) * 8
)
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 200
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x01" * 200
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"


class RecordsClient:
    def __init__(
        self,
        database_url: str,
        nats_server: NatsServer,
        files_dir: Path,
        max_upload_bytes: int = LIMIT,
        **storage: Any,
    ):
        self.settings = Settings(
            database_url=database_url,
            nats_url=nats_server.url,
            files_dir=str(files_dir),
            max_upload_bytes=max_upload_bytes,
            **storage,
        )
        self.app = create_app(self.settings)

    async def __aenter__(self) -> httpx.AsyncClient:
        self.lifespan = self.app.router.lifespan_context(self.app)
        await self.lifespan.__aenter__()
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(self.app), base_url="http://test"
        )
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()
        await self.lifespan.__aexit__(None, None, None)


@pytest.fixture(scope="module")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    server = MotoS3(tmp_path_factory.mktemp("moto")).start()
    yield server
    server.stop()


@pytest.fixture(params=["local", "s3"])
def storage_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The files backend: the local disk, and S3 (moto's server in its own process)."""
    if request.param == "local":
        return {}
    moto_s3: MotoS3 = request.getfixturevalue("moto_s3")
    return moto_s3.settings(moto_s3.new_bucket())


@pytest_asyncio.fixture
async def records(
    database_url: str, nats_server: NatsServer, tmp_path: Path, storage_settings: dict[str, Any]
) -> AsyncIterator[httpx.AsyncClient]:
    async with RecordsClient(
        database_url, nats_server, tmp_path / "files", **storage_settings
    ) as client:
        yield client


def runtime_of(client: httpx.AsyncClient):
    return client._transport.app.state.runtime  # type: ignore[attr-defined]


async def file_rows(client: httpx.AsyncClient) -> int:
    async with runtime_of(client).db.reader() as session:
        return (await session.exec(select(func.count()).select_from(StoredFile))).one()


def storage_of(client: httpx.AsyncClient) -> FileStorage:
    return files.storage_for(runtime_of(client).settings)


async def stored_blobs(client: httpx.AsyncClient) -> list[str]:
    return await storage_of(client).blob_names()


def staged_leftovers(client: httpx.AsyncClient) -> list[str]:
    """Staged uploads still lying around (there should be none once a request is over)."""
    storage = storage_of(client)
    if isinstance(storage, LocalDiskStorage):
        return [p.name for p in storage.tmp.glob("*")] if storage.tmp.exists() else []
    assert isinstance(storage, S3Storage)
    tmp = f"{storage.prefix}tmp/"
    uploads = storage.client.list_multipart_uploads(Bucket=storage.bucket, Prefix=tmp)
    objects = storage.client.list_objects_v2(Bucket=storage.bucket, Prefix=tmp)
    return [u["Key"] for u in uploads.get("Uploads", [])] + [
        o["Key"] for o in objects.get("Contents", [])
    ]


async def age_blobs(client: httpx.AsyncClient, seconds: float) -> None:
    """Make every blob look `seconds` older to the collector: the store's clock, and the
    service's own clock that dates staged uploads, move forward."""
    storage = storage_of(client)
    if isinstance(storage, LocalDiskStorage):
        store_now = await anyio.to_thread.run_sync(storage._now)
        storage.clock = lambda: store_now + seconds
    else:
        assert isinstance(storage, S3Storage)
        store_now = await storage._store_now()
        storage.store_clock = lambda: store_now + seconds
        storage.clock = lambda: time.time() + seconds


async def upload(
    client, content: bytes, name: str = "photo.jpg", role: str = "advisor", branch: str = "BR01"
) -> httpx.Response:
    return await client.post(
        "/files", headers=auth(role, branch), files={"file": (name, content, "image/jpeg")}
    )


async def test_upload_keeps_each_accepted_type_with_its_metadata(records):
    for content, mime in (
        (JPEG, "image/jpeg"),
        (PNG, "image/png"),
        (WEBP, "image/webp"),
        (PDF, "application/pdf"),
    ):
        r = await upload(records, content, name="x.bin")
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["media_type"] == mime  # by content, not by the name or declared type
        assert body["size"] == len(content)
        assert body["original_name"] == "x.bin"
        assert body["branch"] == "BR01"
        r = await records.get(f"/files/{body['id']}/content", headers=auth("technician"))
        assert r.status_code == 200
        assert r.content == content
        assert r.headers["content-type"] == mime
        assert r.headers["accept-ranges"] == "bytes"


async def test_raw_body_upload_takes_the_name_from_the_query(records):
    r = await records.post(
        "/files?filename=%E7%AD%BE%E5%90%8D.png",
        headers={**auth("advisor"), "content-type": "application/octet-stream"},
        content=PNG,
    )
    assert r.status_code == 201, r.text
    assert r.json()["original_name"] == "签名.png"


async def test_same_content_twice_is_stored_once_with_the_same_id(records):
    first = await upload(records, JPEG, name="a.jpg")
    second = await upload(records, JPEG, name="b.jpg", role="technician")
    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    other_branch = await upload(records, JPEG, branch="BR02")
    assert other_branch.status_code == 201
    assert other_branch.json()["id"] != first.json()["id"]
    assert await file_rows(records) == 2
    assert len(await stored_blobs(records)) == 1
    assert staged_leftovers(records) == []


async def test_bad_uploads_are_refused_and_leave_nothing(records):
    cases = [
        (b"", 422),
        (b"just some text, no picture", 415),
        (b"MZ\x90\x00" + b"\x00" * 100, 415),  # an executable named photo.jpg
        (b"\xff\xd8\xff\xe0" + b"\x00" * (LIMIT + 1), 413),
    ]
    for content, status in cases:
        body = assert_problem(await upload(records, content), status)
        if status == 422:
            assert body["errors"][0]["field"] == "file"
    # Far over the limit: refused before the body is read.
    big = b"\xff\xd8\xff\xe0" + b"\x00" * (LIMIT * 4)
    assert_problem(await upload(records, big), 413)
    assert_problem(
        await records.post(
            "/files", headers=auth("advisor"), files={"other": ("x.jpg", JPEG, "image/jpeg")}
        ),
        422,
        "file",
    )
    assert_problem(
        await records.post(
            "/files",
            headers={**auth("advisor"), "content-type": "multipart/form-data"},
            content=JPEG,
        ),
        422,
        "file",
    )
    assert_problem(await upload(records, JPEG, role="screen"), 403)
    assert_problem(await records.post("/files", files={"file": ("a.jpg", JPEG)}), 401)
    assert await file_rows(records) == 0
    assert await stored_blobs(records) == []
    assert staged_leftovers(records) == []


async def test_an_interrupted_upload_leaves_no_file_and_no_row(records):
    async def body() -> AsyncIterator[bytes]:
        yield b"\xff\xd8\xff\xe0" + b"\x00" * 4096
        yield b"\x00" * 4096
        raise ConnectionResetError("the tablet lost Wi-Fi")

    with pytest.raises(ConnectionResetError):
        await records.post(
            "/files",
            headers={**auth("advisor"), "content-type": "application/octet-stream"},
            content=body(),
        )
    assert await file_rows(records) == 0
    assert await stored_blobs(records) == []
    assert staged_leftovers(records) == []
    # The service still takes uploads afterwards.
    assert (await upload(records, JPEG)).status_code == 201


async def test_range_downloads(records):
    file_id = (await upload(records, JPEG)).json()["id"]
    url = f"/files/{file_id}/content"
    size = len(JPEG)
    h = auth("technician")

    async def get(range_value: str) -> httpx.Response:
        return await records.get(url, headers={**h, "Range": range_value})

    r = await get("bytes=0-9")
    assert r.status_code == 206
    assert r.content == JPEG[:10]
    assert r.headers["content-range"] == f"bytes 0-9/{size}"
    assert r.headers["content-length"] == "10"
    r = await get("bytes=100-")
    assert (r.status_code, r.content) == (206, JPEG[100:])
    r = await get("bytes=-16")
    assert (r.status_code, r.content) == (206, JPEG[-16:])
    assert r.headers["content-range"] == f"bytes {size - 16}-{size - 1}/{size}"
    r = await get(f"bytes=10-{size + 500}")  # clipped to the end
    assert (r.status_code, r.content) == (206, JPEG[10:])
    r = await get(f"bytes={size - 1}-{size - 1}")
    assert (r.status_code, r.content) == (206, JPEG[-1:])
    for unsatisfiable in (f"bytes={size}-", f"bytes={size + 10}-{size + 20}", "bytes=-0"):
        r = await get(unsatisfiable)
        assert_problem(r, 416)
        assert r.headers["content-range"] == f"bytes */{size}"
    for ignored in ("bytes=5-1", "items=0-1", "bytes=0-1,4-5", "garbage"):
        r = await get(ignored)
        assert (r.status_code, r.content) == (200, JPEG), ignored
    assert_problem(await records.get(url, headers=auth("technician", "BR02")), 404)
    assert_problem(await records.get(f"/files/{file_id}", headers=auth("screen")), 403)
    assert_problem(await records.get("/files/not-a-uuid/content", headers=h), 422)


async def test_references_keep_files_from_the_collector(records):
    rt = runtime_of(records)
    storage = files.storage_for(rt.settings)
    kept = (await upload(records, JPEG)).json()["id"]
    dropped = (await upload(records, PNG)).json()["id"]
    shared_blob = (await upload(records, PDF, branch="BR02")).json()["id"]
    await upload(records, PDF)  # same content in BR01, unreferenced
    h = {**auth("advisor"), "Idempotency-Key": "ref-1"}
    ref = {"owner": "reception.intake_photo", "owner_id": "intake-42"}
    r = await records.post(f"/files/{kept}/references", headers=h, json=ref)
    assert r.status_code == 201, r.text
    replay = await records.post(f"/files/{kept}/references", headers=h, json=ref)
    assert replay.headers.get("idempotent-replayed") == "true"
    r = await records.post(
        f"/files/{shared_blob}/references",
        headers=auth("advisor", "BR02"),
        json={"owner": "workorders.invoice_pdf", "owner_id": "1"},
    )
    assert r.status_code == 201
    assert_problem(
        await records.post(
            f"/files/{kept}/references",
            headers=auth("advisor"),
            json={"owner": "Bad Owner!", "owner_id": "1"},
        ),
        422,
        "owner",
    )
    assert_problem(
        await records.post(f"/files/{kept}/references", headers=auth("advisor", "BR02"), json=ref),
        404,
    )

    # Within the grace period nothing goes.
    assert await files.collect_unreferenced(rt.db, storage, grace=timedelta(hours=1)) == 0
    later = utcnow() + timedelta(hours=2)
    await age_blobs(records, 7200)
    removed = await files.collect_unreferenced(rt.db, storage, grace=timedelta(hours=1), now=later)
    assert removed == 2  # the PNG and BR01's copy of the PDF
    assert (await records.get(f"/files/{dropped}", headers=auth("advisor"))).status_code == 404
    r = await records.get(f"/files/{kept}/content", headers=auth("advisor"))
    assert r.content == JPEG
    r = await records.get(f"/files/{shared_blob}/content", headers=auth("advisor", "BR02"))
    assert r.content == PDF  # BR02 still refers to the same bytes
    assert len(await stored_blobs(records)) == 2

    # Dropping the last reference lets the collector take it too.
    r = await records.delete(
        f"/files/{kept}/references/reception.intake_photo/intake-42", headers=auth("advisor")
    )
    assert r.status_code == 204
    assert (
        await files.collect_unreferenced(rt.db, storage, grace=timedelta(hours=1), now=later) == 1
    )
    assert_problem(await records.get(f"/files/{kept}", headers=auth("advisor")), 404)


async def test_a_blob_without_a_row_is_collected_after_the_grace(records):
    rt = runtime_of(records)
    storage = storage_of(records)
    orphan = "ab" * 32
    if isinstance(storage, LocalDiskStorage):
        storage.path(orphan).parent.mkdir(parents=True)
        storage.path(orphan).write_bytes(b"left by a crash")
    else:
        assert isinstance(storage, S3Storage)
        storage.client.put_object(Bucket=storage.bucket, Key=storage.key(orphan), Body=b"x")
        # A multipart upload a crash left unfinished.
        key = f"{storage.prefix}tmp/{int(time.time())}-left-by-a-crash"
        storage.client.create_multipart_upload(Bucket=storage.bucket, Key=key)
    await files.collect_unreferenced(rt.db, storage, grace=timedelta(hours=1))
    assert await storage.exists(orphan)
    assert len(staged_leftovers(records)) == (0 if isinstance(storage, LocalDiskStorage) else 1)
    await age_blobs(records, 7200)
    await files.collect_unreferenced(rt.db, storage, grace=timedelta(hours=1))
    assert not await storage.exists(orphan)
    assert staged_leftovers(records) == []


@pytest.mark.parametrize("size", [12 * 1024 * 1024, 3 * 1024 * 1024])
async def test_an_upload_streams_without_holding_the_file_in_memory(
    database_url: str,
    nats_server: NatsServer,
    tmp_path: Path,
    storage_settings: dict[str, Any],
    size: int,
):
    """12 MiB goes to S3 in parts (multipart upload); 3 MiB in one PUT."""
    chunk = 64 * 1024
    client_cm = RecordsClient(
        database_url,
        nats_server,
        tmp_path / "files",
        max_upload_bytes=16 * 1024 * 1024,
        **storage_settings,
        s3_part_bytes=5 * 1024 * 1024,
    )
    async with client_cm as client:

        def body_of(fill: bytes) -> AsyncIterator[bytes]:
            async def body() -> AsyncIterator[bytes]:
                yield PDF[:16] + fill * (chunk - 16)
                for _ in range(size // chunk - 1):
                    yield fill * chunk

            return body()

        tracemalloc.start()
        try:
            r = await client.post(
                "/files",
                headers={**auth("records_clerk"), "content-type": "application/pdf"},
                content=body_of(b"\x00"),
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert r.status_code == 201, r.text
        assert r.json()["size"] == size
        assert peak < 4 * 1024 * 1024, f"peak {peak} bytes for a {size}-byte upload"
        file_id = r.json()["id"]
        r = await client.get(
            f"/files/{file_id}/content",
            headers={**auth("records_clerk"), "Range": f"bytes={size - 4}-"},
        )
        assert (r.status_code, r.content) == (206, b"\x00" * 4)
        # The same content again is the same file, and still one blob.
        again = await client.post(
            "/files",
            headers={**auth("records_clerk"), "content-type": "application/pdf"},
            content=body_of(b"\x00"),
        )
        assert (again.status_code, again.json()["id"]) == (200, file_id)
        assert len(await stored_blobs(client)) == 1
        assert staged_leftovers(client) == []
        # The whole file comes back byte for byte, streamed.
        hashed = hashlib.sha256()
        async with client.stream(
            "GET", f"/files/{file_id}/content", headers=auth("records_clerk")
        ) as streamed:
            assert streamed.status_code == 200
            async for data in streamed.aiter_bytes():
                hashed.update(data)
        assert (
            hashed.hexdigest()
            == (await client.get(f"/files/{file_id}", headers=auth("records_clerk"))).json()[
                "sha256"
            ]
        )


async def test_an_upload_interrupted_after_several_parts_leaves_nothing(
    database_url: str, nats_server: NatsServer, tmp_path: Path, storage_settings: dict[str, Any]
):
    """On S3 two parts are already sent (one may still be on its way) when the client goes:
    the multipart upload is aborted."""
    async with RecordsClient(
        database_url,
        nats_server,
        tmp_path / "files",
        max_upload_bytes=16 * 1024 * 1024,
        **storage_settings,
        s3_part_bytes=5 * 1024 * 1024,
    ) as client:

        async def body() -> AsyncIterator[bytes]:
            yield PDF[:16] + b"\x00" * (1024 * 1024 - 16)
            for _ in range(10):
                yield b"\x00" * (1024 * 1024)
            raise ConnectionResetError("the tablet lost Wi-Fi")

        with pytest.raises(ConnectionResetError):
            await client.post(
                "/files",
                headers={**auth("records_clerk"), "content-type": "application/pdf"},
                content=body(),
            )
        assert await file_rows(client) == 0
        assert await stored_blobs(client) == []
        assert staged_leftovers(client) == []


async def test_a_multipart_body_cut_before_its_closing_boundary_is_refused(records):
    """A form that ends before `--boundary--` lost its tail on the way: the file in it may
    be cut short, so nothing is kept."""
    head = (
        b"--b0undary\r\n"
        b'Content-Disposition: form-data; name="file"; filename="photo.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n"
    )
    headers = {**auth("advisor"), "content-type": "multipart/form-data; boundary=b0undary"}
    for body in (
        head + JPEG,  # cut inside the file
        head + JPEG + b"\r\n--b0undary",  # the file's end, not the form's
        head + JPEG + b"\r\n--b0undary\r\n",  # a next part that never came
        head + JPEG + b"\r\n--b0undary\r\nContent-Disposition: form-data; name=",
    ):
        assert_problem(await records.post("/files", headers=headers, content=body), 422, "file")
    assert await file_rows(records) == 0
    assert await stored_blobs(records) == []
    assert staged_leftovers(records) == []
    # The whole form is taken.
    r = await records.post("/files", headers=headers, content=head + JPEG + b"\r\n--b0undary--\r\n")
    assert r.status_code == 201, r.text
    assert r.json()["size"] == len(JPEG)


HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 200
POLYGLOT = JPEG + b"<html><body><script>document.title='ran'</script></body></html>"


def disposition_of(response: httpx.Response) -> tuple[str, dict[str, str]]:
    """The header read as RFC 6266 says: a type, then `; name=value` parameters whose
    values are tokens or quoted strings, `filename*` percent-decoded."""
    header = response.headers["content-disposition"]
    param = r'\s*;\s*([A-Za-z*]+)=("(?:[^"\\]|\\.)*"|[^;"\s]+)'
    match = re.fullmatch(r"(inline|attachment)((?:" + param + r")*)", header)
    assert match is not None, header
    params = {}
    for name, value in re.findall(param, match.group(2)):
        params[name] = value[1:-1] if value.startswith('"') else value
    assert set(params) == {"filename", "filename*"}, params
    charset, _, encoded = params["filename*"].partition("''")
    assert charset == "UTF-8"
    return match.group(1), {"filename": params["filename"], "filename*": unquote(encoded)}


async def test_downloads_are_never_served_as_something_a_browser_would_run(records):
    """A JPEG with a page behind it, named like a page, comes back as a JPEG that cannot
    be sniffed, rendered in a sandbox and saved as .jpg; a type outside the inline list
    is an attachment of octet-stream; no name breaks the header."""
    r = await upload(records, POLYGLOT, name="offer.html")
    assert r.status_code == 201, r.text
    assert r.json()["media_type"] == "image/jpeg"
    got = await records.get(f"/files/{r.json()['id']}/content", headers=auth("technician"))
    assert got.content == POLYGLOT
    assert got.headers["content-type"] == "image/jpeg"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in got.headers["content-security-policy"].split(";")[0]
    kind, names = disposition_of(got)
    assert kind == "inline"
    assert names == {"filename": "offer.html.jpg", "filename*": "offer.html.jpg"}

    r = await upload(records, HEIC, name="car.heic")
    assert r.status_code == 201, r.text
    assert r.json()["media_type"] == "image/heic"
    got = await records.get(f"/files/{r.json()['id']}/content", headers=auth("technician"))
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert disposition_of(got)[0] == "attachment"
    # A ranged read is served the same way.
    got = await records.get(
        f"/files/{r.json()['id']}/content", headers={**auth("technician"), "Range": "bytes=0-3"}
    )
    assert got.status_code == 206
    assert got.headers["content-type"] == "application/octet-stream"

    hostile = 'a"; filename=evil.html; x=".pdf 报告%0d%0a.pdf'
    r = await records.post(
        "/files",
        params={"filename": hostile},
        headers={**auth("advisor"), "content-type": "application/octet-stream"},
        content=PDF,
    )
    assert r.status_code == 201, r.text
    assert r.json()["original_name"] == hostile
    got = await records.get(f"/files/{r.json()['id']}/content", headers=auth("technician"))
    kind, names = disposition_of(got)
    assert kind == "inline"
    assert names["filename*"] == hostile  # the exact name, for clients that read RFC 5987
    assert names["filename"].isascii() and '"' not in names["filename"]
    assert names["filename"].endswith(".pdf")
    assert ";" not in names["filename"] and "\\" not in names["filename"]
    assert got.headers["content-type"] == "application/pdf"
