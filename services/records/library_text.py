"""What the library's search index reads: the text of uploaded PDFs, and that text (and
every query) split into words, Chinese by jieba, so the index and a query agree."""

import asyncio
import contextlib
import functools
import json
import logging
import os
import re
import sys
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from services.records.storage import FileStorage

log = logging.getLogger(__name__)

# The most text kept from one PDF (as much as the clerk may type) and pages read for it.
MAX_TEXT = 200_000
MAX_PAGES = 2_000

# CJK ideographs (basic block, extension A, compatibility): the runs jieba splits.
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"\w+")

# Workshop words jieba's general dictionary lacks, so they are kept whole as well as in
# their parts ("制动系统" → 制动, 系统, 制动系统).
WORKSHOP_WORDS = (  # noqa: SIM905 -- a word list reads best as text
    "制动系统 制动片 制动盘 制动液 刹车片 刹车盘 正时皮带 正时链条 变速箱 变速器 "
    "发动机舱 空调滤芯 空气滤芯 机油滤清器 火花塞 冷却液 防冻液 蓄电池 雨刮器 四轮定位 "
    "动平衡 保养手册 维修手册 电路图 技术通报 故障码 安全气囊 转向机 减震器 三元催化器 "
    "涡轮增压器 喷油嘴 节气门 氧传感器 车身控制模块 胎压监测 正时 怠速 异响 渗漏 抖动 漏油"
).split()

# jieba's dictionary holds 349,000 words and costs about 60 MB in memory; the words seen
# at least this often in its corpus (about 105,000) cost about 20 MB and split workshop
# text the same way in practice. Rarer words still come out, split by jieba's HMM; since
# the index and the queries are split by the same tokenizer, they still match.
MIN_WORD_FREQ = 10

_lock = threading.Lock()


def _dictionary() -> str:
    """jieba's dictionary without its rarest words, written once next to its cache."""
    import jieba

    source = Path(jieba.__file__).parent / "dict.txt"
    target = Path(tempfile.gettempdir()) / "workshop-jieba" / f"dict-{MIN_WORD_FREQ}.txt"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.part")
        with source.open(encoding="utf-8") as words, partial.open("w", encoding="utf-8") as kept:
            for line in words:
                parts = line.split()
                if len(parts) >= 2 and int(parts[1]) >= MIN_WORD_FREQ:
                    kept.write(line)
        os.replace(partial, target)
    return str(target)


@functools.cache
def _tokenizer() -> Any:
    import jieba

    with _lock:
        jieba.setLogLevel(logging.WARNING)
        tokenizer = jieba.Tokenizer(_dictionary())
        tokenizer.initialize()
        for word in WORKSHOP_WORDS:
            tokenizer.add_word(word, freq=20_000)
        return tokenizer


@functools.lru_cache(maxsize=50_000)
def _split_run(run: str) -> tuple[str, ...]:
    """One run of Chinese characters as jieba's search-engine mode splits it (the same
    phrases come back often: workshop text repeats itself)."""
    return tuple(w for w in _tokenizer().cut_for_search(run) if w.strip())


async def ready() -> None:
    """Load jieba's dictionary (about half a second, 20 MB or more) in a worker thread the
    first time the library needs it, not at start: a records process that never touches
    the library never pays for it, and the event loop never waits for the load."""
    if _tokenizer.cache_info().currsize == 0:
        await anyio.to_thread.run_sync(_tokenizer)


def words(text: str) -> list[str]:
    """The words of `text`, lower-cased: each Chinese run as jieba's search-engine mode
    splits it (the long words and the short words inside them), anything else by runs of
    letters and digits. Used for the index and for queries alike."""
    found: list[str] = []
    position = 0
    for run in _HAN.finditer(text):
        found += _WORD.findall(text[position : run.start()].lower())
        found += _split_run(run.group())
        position = run.end()
    found += _WORD.findall(text[position:].lower())
    return found


def index_text(text: str) -> str:
    """`text` as the full-text index stores it: its words separated by spaces."""
    return " ".join(words(text))


def query_words(query: str, limit: int = 32) -> list[str]:
    """The words a query must match: as `words` splits it, but each Chinese run only into
    jieba's precise-mode words — the index holds those as well as the shorter words inside
    them, so asking for the shorter ones too would add nothing but work."""
    found: list[str] = []
    position = 0
    for run in _HAN.finditer(query):
        found += _WORD.findall(query[position : run.start()].lower())
        found += [w for w in _tokenizer().cut(run.group()) if w.strip()]
        position = run.end()
    found += _WORD.findall(query[position:].lower())
    return list(dict.fromkeys(found))[:limit]


@dataclass(frozen=True)
class PdfBudget:
    """What reading one PDF's text may take: pages, seconds of wall clock, MiB of address
    space (the child process's, interpreter included)."""

    max_pages: int = MAX_PAGES
    seconds: float = 10.0
    memory_mib: int = 512
    workers: int = 2  # readers at once in a process; more documents wait their turn


@dataclass(frozen=True)
class PdfText:
    status: str  # extracted, partial, unreadable or over_budget (TextExtraction)
    text: str


_ROOT = str(Path(__file__).resolve().parents[2])
# Per event loop (tests run several): the readers running at once are bounded, so many
# uploads at once cannot start many children of `memory_mib` each.
_readers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]" = (
    weakref.WeakKeyDictionary()
)


async def pdf_text(storage: FileStorage, sha256: str, size: int, budget: PdfBudget) -> PdfText:
    """The text of a stored PDF (what a reader would copy out), at most MAX_TEXT
    characters, read by a child process (`pdf_text_worker`) within `budget`.

    Reading runs outside the service's process: a PDF built to be slow or to inflate
    (thousands of pages over one heavy content stream, a compressed stream of hundreds
    of MB) costs the child, which is killed at the time limit and stopped by the kernel
    at the memory limit, and whose memory goes back to the system when it ends; the
    service's event loop and its memory are untouched. The file is copied to a temporary
    file for the child, streamed, never read whole into memory."""
    spool: Any = await anyio.to_thread.run_sync(
        functools.partial(tempfile.NamedTemporaryFile, suffix=".pdf")
    )
    try:
        async for chunk in storage.read(sha256, 0, size - 1):
            await anyio.to_thread.run_sync(spool.write, chunk)
        await anyio.to_thread.run_sync(spool.flush)
        loop = asyncio.get_running_loop()
        readers = _readers.setdefault(loop, asyncio.Semaphore(budget.workers))
        async with readers:
            return await _run_worker(spool.name, budget)
    finally:
        await anyio.to_thread.run_sync(spool.close)


async def _run_worker(path: str, budget: PdfBudget) -> PdfText:
    from services.records.pdf_text_worker import OUT_OF_MEMORY

    python_path = os.pathsep.join(p for p in (_ROOT, os.environ.get("PYTHONPATH")) if p)
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.records.pdf_text_worker",
        path,
        str(budget.max_pages),
        str(MAX_TEXT),
        str(budget.memory_mib),
        str(budget.seconds),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": python_path},
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), budget.seconds)
    except TimeoutError:
        log.warning(
            "PDF text not read: over the time budget (%.1f s)",
            budget.seconds,
            extra={"budget": "time"},
        )
        return PdfText("over_budget", "")
    finally:
        if process.returncode is None:  # timed out, or the request was cancelled
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await asyncio.shield(process.wait())
    if process.returncode != 0:
        reason = "memory" if process.returncode == OUT_OF_MEMORY else "exit"
        log.warning(
            "PDF text not read: the reader stopped (%s, exit %s) after %.1f s: %s",
            reason,
            process.returncode,
            time.monotonic() - started,
            err.decode(errors="replace")[-300:],
        )
        return PdfText("over_budget", "")
    result = json.loads(out)
    return PdfText(result["status"], result["text"])
