"""The dead-letter stream, for an operator: list what lies there, and send messages again
to the consumer that failed them once the cause is fixed.

    python -m shared.deadletters list [--consumer NAME]
    python -m shared.deadletters replay [--consumer NAME] [--seq N ...] [--dry-run]

A replay publishes the original event to its original subject with the header
`Workshop-Replay-For: <consumer>`: that consumer handles it (its inbox still drops an
event it has handled), every other consumer of the subject acknowledges it unread. The
dead letter is deleted only after JetStream acknowledged the new copy, and the copy's
`Nats-Msg-Id` is derived from the dead letter's sequence, so a replay run twice, or
stopped half-way and run again, sends each message once.

The servers come from `--servers` or `NATS_URL` (comma-separated), default the local one.
"""

import argparse
import asyncio
import os
import sys
from dataclasses import dataclass

import nats
import orjson
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from shared.events import DEAD_LETTER_PREFIX, DEAD_LETTER_STREAM, REPLAY_FOR


@dataclass(frozen=True)
class DeadLetter:
    seq: int
    consumer: str
    subject: str
    event_id: str
    event_type: str
    deliveries: str
    error: str
    data: bytes


async def dead_letters(js: JetStreamContext, consumer: str | None = None) -> list[DeadLetter]:
    """Every message in the dead-letter stream, oldest first (of one consumer if named)."""
    try:
        info = await js.stream_info(DEAD_LETTER_STREAM)
    except NotFoundError:
        return []
    found: list[DeadLetter] = []
    if not info.state.messages:
        return found
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            message = await js.get_msg(DEAD_LETTER_STREAM, seq)
        except NotFoundError:
            continue  # deleted after an earlier replay
        # Values that are not ASCII come back as email.header.Header: read them as text.
        headers = {k: str(v) for k, v in (message.headers or {}).items()}
        name = headers.get("Workshop-Consumer") or (message.subject or "").removeprefix(
            f"{DEAD_LETTER_PREFIX}."
        )
        if consumer and name != consumer:
            continue
        try:
            event = orjson.loads(message.data or b"{}")
        except orjson.JSONDecodeError:
            event = {}
        found.append(
            DeadLetter(
                seq=seq,
                consumer=name,
                subject=headers.get("Workshop-Subject", ""),
                event_id=str(event.get("id", "")),
                event_type=str(event.get("type", "")),
                deliveries=headers.get("Workshop-Deliveries", ""),
                error=headers.get("Workshop-Error", ""),
                data=message.data or b"",
            )
        )
    return found


async def replay(js: JetStreamContext, letters: list[DeadLetter]) -> int:
    """Each dead letter sent again to its consumer, then deleted; the number sent."""
    sent = 0
    for letter in letters:
        if not letter.subject:
            print(f"seq {letter.seq}: no original subject recorded; left", file=sys.stderr)
            continue
        headers = {
            "Nats-Msg-Id": f"replay:{letter.consumer}:{letter.seq}:{letter.event_id}",
            REPLAY_FOR: letter.consumer,
        }
        await js.publish(letter.subject, letter.data, headers=headers)
        await js.delete_msg(DEAD_LETTER_STREAM, letter.seq)
        sent += 1
    return sent


def _servers(value: str | None) -> list[str]:
    raw = value or os.environ.get("NATS_URL") or "nats://127.0.0.1:4222"
    return [part.strip() for part in raw.split(",") if part.strip()]


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.deadletters", description=__doc__)
    parser.add_argument("command", choices=("list", "replay"))
    parser.add_argument("--servers", help="NATS URLs, comma-separated (default: NATS_URL)")
    parser.add_argument("--consumer", help="only this consumer's dead letters")
    parser.add_argument("--seq", type=int, nargs="*", help="only these sequence numbers")
    parser.add_argument("--dry-run", action="store_true", help="say what would be replayed")
    args = parser.parse_args(argv)
    connection = await nats.connect(servers=_servers(args.servers), connect_timeout=5)
    try:
        js = connection.jetstream()
        letters = await dead_letters(js, args.consumer)
        if args.seq:
            wanted = set(args.seq)
            letters = [letter for letter in letters if letter.seq in wanted]
        for letter in letters:
            print(
                f"{letter.seq}\t{letter.consumer}\t{letter.event_type}\t{letter.event_id}\t"
                f"deliveries={letter.deliveries}\t{letter.error}"
            )
        if args.command == "replay" and not args.dry_run:
            print(f"replayed {await replay(js, letters)} of {len(letters)}")
        elif args.command == "list":
            print(f"{len(letters)} dead letters")
    finally:
        await connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
