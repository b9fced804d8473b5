"""The technical library's search over 50,000 documents, over HTTP from the records process.

Documents in Chinese and English (titles, tags, about 50 words of text drawn from a
workshop vocabulary with a Zipf-like spread, so a few words are in nearly every document,
and a fault code or two, the rare terms) are seeded straight into records' database with
bulk inserts and indexed the way the service indexes them (`library.index_rows`: words
split by jieba; FTS5 on SQLite, a weighted tsvector on PostgreSQL). A few percent are
confidential, shared by the group or another branch's. On PostgreSQL the two tables are then
VACUUMed and ANALYZEd, as autovacuum would be shortly after such a load (the search's plans
depend on the statistics, its index-only scans on the visibility map). Then `--n` timed
requests, one at a time, per query kind, as a technician: common and rare Chinese words,
two words, English, mixed, a fault code, with a category or make filter, and no match.
Target: p99 ≤ 30 ms.

`.venv/bin/python -m bench.records_library [--docs 50000] [--n 300]`
"""

import argparse
import asyncio
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import insert, text

from bench.common import cpu_seconds, percentile, pid_of, running_stack, table, wait_ready
from services.records import library
from services.records.models import LibraryApplicability, LibraryDocument
from shared.db import Database
from tests.harness import auth, backend

BRANCH = "BR01"

# Workshop words (Chinese and English); the first ones are the commonest.
WORDS = (  # noqa: SIM905 -- a vocabulary reads best as text
    "保养 更换 检查 发动机 制动系统 机油 轮胎 变速箱 空调 电路图 故障码 传感器 制动片 "
    "蓄电池 火花塞 冷却液 转向 悬架 减震器 大灯 雨刮器 车门 天窗 座椅 安全气囊 仪表 "
    "节气门 喷油嘴 氧传感器 三元催化器 涡轮增压器 正时皮带 水泵 发电机 起动机 离合器 "
    "差速器 半轴 轮毂轴承 刹车盘 手刹 胎压监测 倒车雷达 摄像头 导航 音响 线束 保险丝 "
    "继电器 控制模块 软件升级 召回 技术通报 异响 漏油 抖动 过热 无法启动 怠速不稳 "
    "brake engine oil filter tyre gearbox coolant battery sensor wiring diagram fault "
    "code torque bolt caliper disc pad hose pump belt timing injector throttle valve "
    "module software update recall bulletin noise leak vibration overheating idle "
    "suspension steering airbag lamp wiper door seat window mirror fuse relay harness"
).split()
MAKES = ["Volkswagen", "Toyota", "Honda", "BYD", "Geely", "Buick", "Nissan", "BMW"]
CATEGORIES = ["manual", "bulletin", "wiring_diagram", "picture", "data_sheet", "training"]
WEIGHTS = [1 / (rank + 1) ** 0.9 for rank in range(len(WORDS))]

QUERIES: list[tuple[str, dict[str, Any]]] = [
    ("common Chinese word (保养)", {"q": "保养"}),
    ("rarer Chinese word (涡轮增压器)", {"q": "涡轮增压器"}),
    ("word inside a longer word (制动)", {"q": "制动"}),
    ("two Chinese words (发动机 异响)", {"q": "发动机 异响"}),
    ("English (brake caliper)", {"q": "brake caliper"}),
    ("mixed (ABS 传感器 sensor)", {"q": "传感器 sensor"}),
    ("word + category (更换, bulletin)", {"q": "更换", "category": "bulletin"}),
    ("word + make (机油, Toyota)", {"q": "机油", "make": "Toyota"}),
    ("fault code (P0420)", {"q": "P0420"}),
    ("no match", {"q": "氢燃料"}),
]


def words(rng: random.Random, k: int) -> list[str]:
    return rng.choices(WORDS, weights=WEIGHTS, k=k)


def document(rng: random.Random, n: int, now: datetime) -> dict[str, Any]:
    chinese = rng.random() < 0.7
    title = ("".join if chinese else " ".join)(words(rng, rng.randint(2, 5)))
    kind = rng.random()
    branch = None if kind < 0.2 else ("BR02" if kind < 0.3 else BRANCH)
    confidential = rng.random() < 0.03
    when = now - timedelta(minutes=n)
    make = rng.choice(MAKES)
    return {
        "id": uuid.uuid4(),
        "branch": branch,
        "owner_branch": branch or BRANCH,
        "title": f"{title} {n}",
        "category": rng.choice(CATEGORIES),
        "language": "zh-CN" if chinese else "en",
        "tags": sorted(set(words(rng, 3))),
        "op_codes": [],
        "applies_to": [{"make": make}],
        "makes": [make.lower()],
        # About 50 words, and a fault code or two: the rare terms of a real library.
        "text": ("，" if chinese else " ").join(
            [*words(rng, 50), *(f"P{rng.randint(0, 4000):04d}" for _ in range(2))]
        ),
        "confidential": confidential,
        "allowed_roles": ["foreman"] if confidential else [],
        "current_version": 1,
        "created_by": "bench",
        "created_at": when,
        "updated_at": when,
        "version": 1,
    }


async def seed(database_url: str, count: int, batch: int = 2000) -> None:
    rng = random.Random(20261129)
    now = datetime.now(UTC)
    db = Database(database_url)
    try:
        for start in range(0, count, batch):
            rows = [document(rng, n, now) for n in range(start, min(start + batch, count))]
            makes = [
                {"id": uuid.uuid4(), "document_id": row["id"], "make": row["makes"][0]}
                for row in rows
            ]
            async with db.transaction() as session:
                connection = await session.connection()
                await connection.execute(insert(LibraryDocument), rows)
                await connection.execute(insert(LibraryApplicability), makes)
                await library.index_rows(session, rows)
        if not db.is_sqlite:
            # What autovacuum does within a minute or so of the bulk load (and the
            # re-index of every row): the planner's statistics, which the search's plans
            # depend on, and the visibility map, which index-only scans need.
            async with db.engine.connect() as connection:
                autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
                await autocommit.execute(
                    text("VACUUM (ANALYZE) library_document, library_applicability")
                )
    finally:
        await db.dispose()


async def measure(base: str, n: int, pid: int) -> list[list[Any]]:
    rows: list[list[Any]] = []
    async with httpx.AsyncClient(base_url=base, timeout=10, headers=auth("technician")) as client:

        async def search(params: dict[str, Any]) -> int:
            r = await client.get("/library/search", params=params)
            r.raise_for_status()
            return len(r.json()["items"])

        for name, params in QUERIES:
            for _ in range(10):
                await search(params)
            times, hits = [], 0
            cpu_before = cpu_seconds(pid)
            for _ in range(n):
                started = time.perf_counter()
                hits = await search(params)
                times.append((time.perf_counter() - started) * 1000)
            rows.append(
                [
                    name,
                    hits,
                    n,
                    percentile(times, 50),
                    percentile(times, 90),
                    percentile(times, 99),
                    max(times),
                    (cpu_seconds(pid) - cpu_before) * 1000 / n,
                ]
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--docs", type=int, default=50_000, help="documents in the library")
    parser.add_argument("--n", type=int, default=300, help="timed requests per query")
    args = parser.parse_args()
    with running_stack(services=("records",)) as stack:
        wait_ready(stack)
        started = time.perf_counter()
        asyncio.run(seed(stack.database_urls["records"], args.docs))
        seeded_in = time.perf_counter() - started
        rows = asyncio.run(measure(stack.url("records"), args.n, pid_of(stack, "records")))
    print(
        f"\nLibrary search, {args.docs:,} documents (seeded and indexed in {seeded_in:.1f} s), "
        f"records on {backend()}, 50 hits a page, one request at a time:\n"
    )
    headers = ["query", "hits", "requests", "p50 ms", "p90 ms", "p99 ms", "max ms"]
    print(table([*headers, "records CPU ms/request"], rows))
    print("\nTarget: p99 ≤ 30 ms.")


if __name__ == "__main__":
    main()
