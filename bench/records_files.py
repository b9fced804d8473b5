"""Stored files: upload and download throughput of large files over HTTP on loopback, and
the records process's memory while it streams them.

`--n` different files of `--mb` MiB (default 5 × 20 MiB; PDFs, so the type check passes)
are uploaded one at a time as a raw streamed body (`POST /files`, sent in 1 MiB chunks
with a Content-Length), then each downloaded whole (`GET /files/{id}/content`, read in
chunks and thrown away) and by a 1 MiB range at its end. The client never holds a file
either. The records process's resident memory (VmRSS) is read before the first upload and
after the last download, and its peak (VmHWM) before and after: flat memory means the peak
does not grow by anything near a file's size. `--backend s3` stores the files in an
S3-compatible bucket (moto's server, started for the run in its own process) instead of
the local disk. Target: ≥ 100 MB/s each way, memory flat.

`.venv/bin/python -m bench.records_files [--n 5] [--mb 20] [--backend local|s3]`
"""

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from bench.common import cpu_seconds, pid_of, running_stack, status_kb, table, wait_ready
from tests.harness import auth, backend
from tests.records_s3 import MotoS3

MIB = 1024 * 1024
CHUNK = MIB


def body(size: int) -> AsyncIterator[bytes]:
    """A PDF-looking file of `size` bytes, different every time, made chunk by chunk."""

    async def chunks() -> AsyncIterator[bytes]:
        head = b"%PDF-1.7\n%" + os.urandom(16).hex().encode() + b"\n"
        filler = os.urandom(CHUNK)
        sent = 0
        while sent < size:
            piece = (head + filler[len(head) :]) if sent == 0 else filler
            piece = piece[: size - sent]
            sent += len(piece)
            yield piece

    return chunks()


async def run(base: str, pid: int, n: int, size: int) -> tuple[list[list[Any]], list[list[Any]]]:
    headers = auth("records_clerk")
    rss_before, peak_before = status_kb(pid, "VmRSS"), status_kb(pid, "VmHWM")
    uploads, downloads, ranges = [], [], []
    cpu_up = cpu_down = 0.0
    async with httpx.AsyncClient(base_url=base, timeout=120, headers=headers) as client:
        ids = []
        for _ in range(n):
            cpu = cpu_seconds(pid)
            started = time.perf_counter()
            r = await client.post(
                "/files?filename=manual.pdf",
                content=body(size),
                headers={"content-type": "application/pdf", "content-length": str(size)},
            )
            uploads.append(time.perf_counter() - started)
            cpu_up += cpu_seconds(pid) - cpu
            r.raise_for_status()
            assert r.json()["size"] == size
            ids.append(r.json()["id"])
        for file_id in ids:
            cpu = cpu_seconds(pid)
            started = time.perf_counter()
            received = 0
            async with client.stream("GET", f"/files/{file_id}/content") as response:
                response.raise_for_status()
                async for data in response.aiter_raw(CHUNK):
                    received += len(data)
            downloads.append(time.perf_counter() - started)
            cpu_down += cpu_seconds(pid) - cpu
            assert received == size, received
            started = time.perf_counter()
            r = await client.get(f"/files/{file_id}/content", headers={"Range": f"bytes=-{MIB}"})
            ranges.append(time.perf_counter() - started)
            assert r.status_code == 206 and len(r.content) == MIB
    rss_after, peak_after = status_kb(pid, "VmRSS"), status_kb(pid, "VmHWM")
    mb = size / 1e6

    def row(name: str, times: list[float], cpu: float | None) -> list[Any]:
        timed = cpu is not None  # the range row measures latency, not throughput
        return [
            name,
            len(times),
            len(times) * mb / sum(times) if timed else float("nan"),
            mb / max(times) if timed else float("nan"),
            sum(times) / len(times) * 1000,
            max(times) * 1000,
            cpu / len(times) * 1000 if cpu is not None else float("nan"),
        ]

    speed = [
        row(f"upload {size // MIB} MiB", uploads, cpu_up),
        row(f"download {size // MIB} MiB", downloads, cpu_down),
        row("ranged download, last 1 MiB", ranges, None),
    ]
    memory = [
        ["VmRSS (resident now)", rss_before / 1024, rss_after / 1024],
        ["VmHWM (peak so far)", peak_before / 1024, peak_after / 1024],
    ]
    return speed, memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=5, help="files each way")
    parser.add_argument("--mb", type=int, default=20, help="size of each file in MiB")
    parser.add_argument("--backend", choices=("local", "s3"), default="local")
    args = parser.parse_args()
    size = args.mb * MIB
    env = {"RECORDS_MAX_UPLOAD_BYTES": str(max(size, 50 * MIB))}
    moto: MotoS3 | None = None
    try:
        if args.backend == "s3":
            moto = MotoS3(Path(tempfile.mkdtemp(prefix="workshop-bench-moto-"))).start()
            env |= {
                f"RECORDS_{k.upper()}": str(v) for k, v in moto.settings(moto.new_bucket()).items()
            }
        with running_stack(services=("records",), extra_env=env) as stack:
            wait_ready(stack)
            speed, memory = asyncio.run(
                run(stack.url("records"), pid_of(stack, "records"), args.n, size)
            )
    finally:
        if moto is not None:
            moto.stop()
    print(
        f"\nStored files on {args.backend} storage, {args.n} files of {args.mb} MiB each way, "
        f"one at a time over loopback HTTP, records on {backend()}:\n"
    )
    print(
        table(
            ["what", "files", "MB/s overall", "MB/s slowest", "ms each", "ms slowest",
             "records CPU ms/file"],
            speed,
        )
    )  # fmt: skip
    print("\nRecords process memory (MiB), before the first upload and after the last download:\n")
    print(table(["", "before", "after"], memory))
    print("\nTarget: ≥ 100 MB/s each way; memory flat (the peak grows by far less than a file).")


if __name__ == "__main__":
    main()
