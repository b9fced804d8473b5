"""Where stored files' bytes live: an interface, the local disk and S3-compatible storage.

Blobs are named by their SHA-256, so the same content is kept once whoever uploads it.
An upload is first staged (a temporary object the backend can throw away), then placed
under its hash: on the local disk a staged file renamed into place, on S3 a multipart
upload to a temporary key copied to the hash's key.
"""

import asyncio
import contextlib
import functools
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Protocol

import anyio

CHUNK = 256 * 1024


class StagedUpload(Protocol):
    async def write(self, data: bytes) -> None: ...
    async def discard(self) -> None: ...


class FileStorage(Protocol):
    async def stage(self) -> StagedUpload:
        """A place to stream an upload into before its hash is known."""
        ...

    async def place(self, staged: StagedUpload, sha256: str) -> None:
        """Keep the staged bytes as blob `sha256` (or refresh the blob already there)."""
        ...

    async def exists(self, sha256: str) -> bool: ...

    async def check(self) -> None:
        """Raise when the storage cannot be used (called at start)."""
        ...

    def read(self, sha256: str, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes start..end (inclusive) of the blob, in chunks."""
        ...

    async def delete_if_idle(self, sha256: str, *, idle_seconds: float) -> bool:
        """Delete the blob unless it was placed or refreshed within `idle_seconds`."""
        ...

    async def idle_blobs(self, *, idle_seconds: float) -> list[str]:
        """Hashes of blobs untouched for `idle_seconds`; staged uploads left that long
        (by a crash) are thrown away on the way."""
        ...

    async def blob_names(self) -> list[str]:
        """Every blob's hash (for tests and the benchmark)."""
        ...


class _LocalStaged:
    def __init__(self, path: Path):
        self.path = path
        self._file: anyio.AsyncFile[bytes] | None = None

    async def open(self) -> None:
        self._file = await anyio.open_file(self.path, "wb")

    async def write(self, data: bytes) -> None:
        assert self._file is not None
        await self._file.write(data)

    async def close(self) -> None:
        if self._file is not None:
            await self._file.aclose()
            self._file = None

    async def discard(self) -> None:
        with contextlib.suppress(Exception):
            await self.close()
        with contextlib.suppress(FileNotFoundError):
            await anyio.to_thread.run_sync(self.path.unlink)


class LocalDiskStorage:
    """Blobs under `<root>/blobs/ab/cd/<sha256>`, staged uploads under `<root>/tmp`."""

    def __init__(self, root: Path, clock: Callable[[], float] | None = None):
        self.root = root
        self.blobs = root / "blobs"
        self.tmp = root / "tmp"
        # What "now" is when deciding a blob is idle: by default the file system's own
        # clock, the one that wrote the files' mtimes (a network volume's server may keep
        # another time than this host); tests may pass one of their own.
        self.clock = clock

    def _now(self) -> float:
        """Now by the clock that stamps the files (call it from a worker thread)."""
        if self.clock is not None:
            return self.clock()
        self.root.mkdir(parents=True, exist_ok=True)
        probe = self.root / ".clock"
        probe.touch()
        os.utime(probe)
        return probe.stat().st_mtime

    def path(self, sha256: str) -> Path:
        return self.blobs / sha256[:2] / sha256[2:4] / sha256

    async def stage(self) -> _LocalStaged:
        await anyio.to_thread.run_sync(lambda: self.tmp.mkdir(parents=True, exist_ok=True))
        staged = _LocalStaged(self.tmp / f"{uuid.uuid4().hex}.part")
        await staged.open()
        return staged

    async def place(self, staged: StagedUpload, sha256: str) -> None:
        assert isinstance(staged, _LocalStaged)
        await staged.close()
        target = self.path(sha256)

        def move() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                # Same content already kept: refresh it so the collector leaves it alone.
                os.utime(target)
                staged.path.unlink(missing_ok=True)
            else:
                os.replace(staged.path, target)

        await anyio.to_thread.run_sync(move)

    async def exists(self, sha256: str) -> bool:
        return await anyio.to_thread.run_sync(self.path(sha256).exists)

    async def check(self) -> None:
        await anyio.to_thread.run_sync(lambda: self.root.mkdir(parents=True, exist_ok=True))

    async def read(self, sha256: str, start: int, end: int) -> AsyncIterator[bytes]:
        async with await anyio.open_file(self.path(sha256), "rb") as f:
            await f.seek(start)
            remaining = end - start + 1
            while remaining > 0:
                data = await f.read(min(CHUNK, remaining))
                if not data:
                    break
                remaining -= len(data)
                yield data

    async def delete_if_idle(self, sha256: str, *, idle_seconds: float) -> bool:
        path = self.path(sha256)

        def delete() -> bool:
            try:
                if self._now() - path.stat().st_mtime < idle_seconds:
                    return False
                path.unlink()
                return True
            except FileNotFoundError:
                return False

        return await anyio.to_thread.run_sync(delete)

    async def idle_blobs(self, *, idle_seconds: float) -> list[str]:
        def scan() -> list[str]:
            cutoff = self._now() - idle_seconds
            if self.tmp.exists():
                for part in self.tmp.iterdir():
                    with contextlib.suppress(FileNotFoundError):
                        if part.stat().st_mtime < cutoff:
                            part.unlink()
            found = []
            if self.blobs.exists():
                for path in self.blobs.glob("*/*/*"):
                    with contextlib.suppress(FileNotFoundError):
                        if path.stat().st_mtime < cutoff:
                            found.append(path.name)
            return found

        return await anyio.to_thread.run_sync(scan)

    async def blob_names(self) -> list[str]:
        def scan() -> list[str]:
            return [p.name for p in self.blobs.glob("*/*/*")] if self.blobs.exists() else []

        return await anyio.to_thread.run_sync(scan)


# Parts of one upload on their way at once: the next part is received while the last one
# is sent, so a slow link to the store does not stall the client.
PARTS_IN_FLIGHT = 2


class _S3Staged:
    """A multipart upload to a temporary key. Each part is gathered in a small local
    spool file, not in memory, and sent from a worker thread while the next part is
    received, so an upload's memory stays flat whatever the file's size."""

    def __init__(self, storage: "S3Storage", key: str):
        self.storage, self.key = storage, key
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []
        self.size = 0
        self._spool: Any = tempfile.TemporaryFile()  # noqa: SIM115 -- closed in discard
        self._spooled = 0
        self._next_part = 1
        self._in_flight: list[asyncio.Task[None]] = []
        self.done = False

    async def write(self, data: bytes) -> None:
        await anyio.to_thread.run_sync(self._spool.write, data)
        self._spooled += len(data)
        self.size += len(data)
        if self._spooled >= self.storage.part_bytes:
            await self._send_part()

    async def _send_part(self) -> None:
        client, bucket = self.storage.client, self.storage.bucket
        if self.upload_id is None:
            started = await anyio.to_thread.run_sync(
                functools.partial(client.create_multipart_upload, Bucket=bucket, Key=self.key)
            )
            self.upload_id = started["UploadId"]
        upload_id, spool, length = self.upload_id, self._spool, self._spooled
        number = self._next_part
        self._next_part += 1
        self._spool, self._spooled = tempfile.TemporaryFile(), 0  # noqa: SIM115

        def send() -> None:
            try:
                spool.seek(0)
                answer = client.upload_part(
                    Bucket=bucket,
                    Key=self.key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=spool,
                    ContentLength=length,
                )
                self.parts.append({"PartNumber": number, "ETag": answer["ETag"]})
            finally:
                spool.close()

        self._in_flight.append(asyncio.create_task(anyio.to_thread.run_sync(send)))
        while len(self._in_flight) >= PARTS_IN_FLIGHT:
            await self._in_flight.pop(0)

    async def _settle(self) -> None:
        """Wait for every part on its way; the first failure is raised."""
        pending, self._in_flight = self._in_flight, []
        results = await asyncio.gather(*pending, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def finish(self, final_key: str) -> str:
        """Send what is left; a file smaller than one part goes straight to `final_key`
        (one PUT, no copy). Returns the key the bytes are under."""
        client, bucket = self.storage.client, self.storage.bucket
        spool, spooled = self._spool, self._spooled
        if self.upload_id is None:

            def put() -> None:
                spool.seek(0)
                client.put_object(Bucket=bucket, Key=final_key, Body=spool, ContentLength=spooled)

            await anyio.to_thread.run_sync(put)
            self.done = True
            return final_key
        if spooled:
            await self._send_part()
        await self._settle()
        parts = sorted(self.parts, key=lambda part: part["PartNumber"])

        def complete() -> None:
            client.complete_multipart_upload(
                Bucket=bucket,
                Key=self.key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": parts},
            )

        await anyio.to_thread.run_sync(complete)
        self.done = True
        return self.key

    async def discard(self) -> None:
        with contextlib.suppress(BaseException):
            await self._settle()
        with contextlib.suppress(Exception):
            self._spool.close()
        if self.upload_id is not None and not self.done:
            client, bucket, upload_id = self.storage.client, self.storage.bucket, self.upload_id
            with contextlib.suppress(Exception):
                await anyio.to_thread.run_sync(
                    functools.partial(
                        client.abort_multipart_upload,
                        Bucket=bucket,
                        Key=self.key,
                        UploadId=upload_id,
                    )
                )


class S3Storage:
    """Blobs under `<prefix>blobs/<sha256>` in one bucket of any S3-compatible store
    (AWS S3, MinIO, Ceph, OSS/COS in S3 mode); staged uploads under `<prefix>tmp/`.

    boto3 is synchronous: every call runs in a worker thread, never on the event loop.
    A blob's `LastModified` is its age for the collector, measured against the store's
    own clock (the `Date` of its answer), so a service whose clock is off does not take
    fresh blobs for idle ones; placing content that is already there copies the object
    onto itself, which refreshes it.
    """

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        prefix: str = "",
        part_bytes: int = 8 * 1024 * 1024,
        clock: Callable[[], float] | None = None,
    ):
        import boto3
        from botocore.config import Config

        self.bucket, self.prefix = bucket, prefix
        # S3 refuses parts under 5 MiB (but the last).
        self.part_bytes = max(part_bytes, 5 * 1024 * 1024)
        # Tests may pass a clock; it then stands for the store's clock too.
        self.store_clock = clock
        self.clock = clock or time.time
        self.client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            aws_access_key_id=access_key_id or None,
            aws_secret_access_key=secret_access_key or None,
            config=Config(
                max_pool_connections=32,
                retries={"max_attempts": 3, "mode": "standard"},
                # Plain Content-MD5-free PUTs: what every S3-compatible store accepts.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                s3={"addressing_style": "path"},
            ),
        )

    def key(self, sha256: str) -> str:
        return f"{self.prefix}blobs/{sha256}"

    async def _call(self, method: str, **kwargs: Any) -> Any:
        return await anyio.to_thread.run_sync(
            functools.partial(getattr(self.client, method), Bucket=self.bucket, **kwargs)
        )

    async def _head(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            return await self._call("head_object", Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    async def stage(self) -> _S3Staged:
        # The key carries when the upload began, by this service's clock: what the
        # collector goes by (stores differ in what they report as `Initiated`).
        return _S3Staged(self, f"{self.prefix}tmp/{int(self.clock())}-{uuid.uuid4().hex}")

    async def place(self, staged: StagedUpload, sha256: str) -> None:
        assert isinstance(staged, _S3Staged)
        target = self.key(sha256)
        if await self._head(target) is not None:
            # Same content already kept: refresh it so the collector leaves it alone.
            await self._refresh(target)
            return
        key = await staged.finish(target)
        if key != target:
            await self._call("copy_object", Key=target, CopySource=_source(self.bucket, key))
            await self._call("delete_object", Key=key)

    async def _refresh(self, key: str) -> None:
        await self._call(
            "copy_object",
            Key=key,
            CopySource=_source(self.bucket, key),
            MetadataDirective="REPLACE",
            Metadata={"seen-at": str(int(self.clock()))},
        )

    async def exists(self, sha256: str) -> bool:
        return await self._head(self.key(sha256)) is not None

    async def check(self) -> None:
        await self._call("head_bucket")

    async def read(self, sha256: str, start: int, end: int) -> AsyncIterator[bytes]:
        answer = await self._call("get_object", Key=self.key(sha256), Range=f"bytes={start}-{end}")
        body = answer["Body"]
        try:
            while True:
                data = await anyio.to_thread.run_sync(body.read, CHUNK)
                if not data:
                    break
                yield data
        finally:
            body.close()

    async def _store_now(self) -> float:
        """Now by the store's clock, the one that stamps `LastModified`."""
        if self.store_clock is not None:
            return self.store_clock()
        answer = await self._call("head_bucket")
        stamped = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        return parsedate_to_datetime(stamped).timestamp() if stamped else time.time()

    def _staged_age(self, key: str, initiated: datetime, store_now: float) -> float:
        began = key.rsplit("/", 1)[-1].split("-", 1)[0]
        if began.isdigit():
            return self.clock() - int(began)
        return store_now - initiated.timestamp()

    async def delete_if_idle(self, sha256: str, *, idle_seconds: float) -> bool:
        key = self.key(sha256)
        head = await self._head(key)
        if head is None:
            return False
        if await self._store_now() - head["LastModified"].timestamp() < idle_seconds:
            return False
        await self._call("delete_object", Key=key)
        return True

    async def _list(self, prefix: str) -> list[dict[str, Any]]:
        def scan() -> list[dict[str, Any]]:
            paginator = self.client.get_paginator("list_objects_v2")
            found: list[dict[str, Any]] = []
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                found.extend(page.get("Contents", []))
            return found

        return await anyio.to_thread.run_sync(scan)

    async def idle_blobs(self, *, idle_seconds: float) -> list[str]:
        # Staged uploads a crash left behind: unfinished multipart uploads and temporary
        # objects that were never copied into place.
        tmp = f"{self.prefix}tmp/"
        cutoff = await self._store_now() - idle_seconds
        uploads = await self._call("list_multipart_uploads", Prefix=tmp)
        for upload in uploads.get("Uploads", []):
            age = self._staged_age(upload["Key"], upload["Initiated"], cutoff + idle_seconds)
            if age >= idle_seconds:
                # Already finished or aborted by someone else is as good.
                with contextlib.suppress(self.client.exceptions.NoSuchUpload):
                    await self._call(
                        "abort_multipart_upload", Key=upload["Key"], UploadId=upload["UploadId"]
                    )
        for item in await self._list(tmp):
            if item["LastModified"].timestamp() <= cutoff:
                await self._call("delete_object", Key=item["Key"])
        blobs = f"{self.prefix}blobs/"
        return [
            item["Key"][len(blobs) :]
            for item in await self._list(blobs)
            if item["LastModified"].timestamp() <= cutoff
        ]

    async def blob_names(self) -> list[str]:
        blobs = f"{self.prefix}blobs/"
        return [item["Key"][len(blobs) :] for item in await self._list(blobs)]


def _source(bucket: str, key: str) -> dict[str, str]:
    return {"Bucket": bucket, "Key": key}


BACKENDS = ("local", "s3")


def make_storage(settings: Any) -> FileStorage:
    """The backend the settings name (`files_backend`); any other name is refused."""
    backend = settings.files_backend
    if backend == "local":
        return LocalDiskStorage(Path(settings.files_dir))
    if backend == "s3":
        if not settings.s3_bucket:
            raise ValueError("files backend 's3' needs RECORDS_S3_BUCKET")
        return S3Storage(
            bucket=settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
            prefix=settings.s3_prefix,
            part_bytes=settings.s3_part_bytes,
        )
    raise ValueError(f"files backend {backend!r} is not available ({', '.join(BACKENDS)})")
