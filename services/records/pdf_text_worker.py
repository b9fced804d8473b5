"""The child process that reads a library PDF's text, within a page budget and with its
address space and CPU time capped by the kernel: `python -m
services.records.pdf_text_worker PATH MAX_PAGES MAX_TEXT MEMORY_MIB SECONDS`.

It prints one JSON line, `{"status": "extracted" | "partial" | "unreadable", "text": …}`
(`partial`: the page or character budget ended the reading), and exits 3 when it ran out
of memory. Whatever it allocated goes back to the system when it exits; the service's own
process never holds a parsed PDF. It imports nothing of the service (only pypdf), so it
starts in a fraction of a second."""

import json
import logging
import re
import resource
import sys

OUT_OF_MEMORY = 3


def extract(path: str, max_pages: int, max_text: int) -> dict[str, str]:
    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.CRITICAL)
    parts: list[str] = []
    length = 0
    status = "extracted"
    try:
        reader = PdfReader(path)
        for number, page in enumerate(reader.pages):
            if number >= max_pages or length >= max_text:
                status = "partial"
                break
            part = page.extract_text() or ""
            parts.append(part)
            length += len(part) + 1
    except MemoryError:
        raise
    except Exception:  # pypdf raises many kinds on a damaged file
        status = "unreadable"
    text = re.sub(r"[ \t]+", " ", "\n".join(parts)).strip()[:max_text]
    if not text:
        status = "unreadable"  # a scan, or a file pypdf cannot read
    elif status == "unreadable":
        status = "partial"
    return {"status": status, "text": text}


def main(argv: list[str]) -> int:
    path, max_pages, max_text, memory_mib, seconds = argv
    memory = int(memory_mib) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    cpu = int(float(seconds)) + 1  # the parent's wall-clock limit is the first to act
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    try:
        result = extract(path, int(max_pages), int(max_text))
        payload = json.dumps(result, ensure_ascii=False)
    except MemoryError:
        return OUT_OF_MEMORY
    sys.stdout.write(payload)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
