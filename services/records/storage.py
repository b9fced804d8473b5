"""Where stored files' bytes live: an interface, and the local-disk backend.

Blobs are named by their SHA-256, so the same content is kept once whoever uploads it.
An upload is first staged (a temporary object the backend can throw away), then placed
under its hash. An S3-compatible backend would stage with a multipart upload and place
with a copy; it is not built yet (see the README).
"""

import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Protocol

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

    def read(self, sha256: str, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes start..end (inclusive) of the blob, in chunks."""
        ...

    async def delete_if_idle(self, sha256: str, *, idle_seconds: float) -> bool:
        """Delete the blob unless it was placed or refreshed within `idle_seconds`."""
        ...

    def idle_blobs(self, *, idle_seconds: float) -> Iterator[str]:
        """Hashes of blobs (and stale staged uploads) untouched for `idle_seconds`."""
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

    def __init__(self, root: Path):
        self.root = root
        self.blobs = root / "blobs"
        self.tmp = root / "tmp"

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
                if time.time() - path.stat().st_mtime < idle_seconds:
                    return False
                path.unlink()
                return True
            except FileNotFoundError:
                return False

        return await anyio.to_thread.run_sync(delete)

    def idle_blobs(self, *, idle_seconds: float) -> Iterator[str]:
        cutoff = time.time() - idle_seconds
        if self.tmp.exists():
            for part in self.tmp.iterdir():
                with contextlib.suppress(FileNotFoundError):
                    if part.stat().st_mtime < cutoff:
                        part.unlink()
        if not self.blobs.exists():
            return
        for path in self.blobs.glob("*/*/*"):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    yield path.name


def make_storage(backend: str, files_dir: str) -> FileStorage:
    if backend == "local":
        return LocalDiskStorage(Path(files_dir))
    raise ValueError(f"files backend {backend!r} is not available (only 'local' is built)")
