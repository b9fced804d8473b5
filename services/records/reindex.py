"""Re-index the technical library's documents indexed an older way, in batches.

The records service does this by itself after start-up; this command does it without the
service, e.g. before a deploy: `python -m services.records.reindex` (the database from
RECORDS_DATABASE_URL, migrated to the latest revision first). Stopping it half-way loses
nothing: the next run goes on with what is still stale.
"""

import argparse
import asyncio
import logging
from pathlib import Path

from services.records import library
from services.records.config import Settings
from shared.db import Database
from shared.migrations import upgrade


async def run(database_url: str, batch: int) -> int:
    db = Database(database_url)
    try:
        await upgrade(db, Path(__file__).parent / "migrations")
        return await library.reindex_stale(db, batch=batch)
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--batch", type=int, default=library.REINDEX_BATCH, help="documents per transaction"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    count = asyncio.run(run(Settings().database_url, args.batch))
    print(f"re-indexed {count} library documents")


if __name__ == "__main__":
    main()
