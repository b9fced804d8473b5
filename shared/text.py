"""The characters no request's text may carry: NUL and the other C0 and C1 control
characters, and the bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069)
that make text display otherwise than it reads (`photo\u202egpj.exe` shows as
`photoexe.jpg`). A line break, carriage return or tab is text inside a body's strings
(notes, descriptions), never in a query, a path or a file name."""

import re
import unicodedata
from typing import Any

from shared.problems import InvalidInput

_BIDI = r"\u202a-\u202e\u2066-\u2069"
_IN_LINE = re.compile(rf"[\x00-\x1f\x7f-\x9f{_BIDI}]")
_IN_TEXT = re.compile(rf"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_BIDI}]")


def refusal(text: str, *, multi_line: bool = False) -> str | None:
    """Why `text` is refused, or None when it is fine."""
    found = (_IN_TEXT if multi_line else _IN_LINE).search(text)
    if found is None:
        return None
    char = found.group()
    name = unicodedata.name(char, "")
    return f"contains the control character U+{ord(char):04X}" + (f" ({name})" if name else "")


def check_line(field: str, text: str | None) -> None:
    """422 naming `field` when the one-line `text` carries a refused character."""
    if text and (message := refusal(text)) is not None:
        raise InvalidInput(field, message)


def json_refusal(document: Any) -> tuple[str, str] | None:
    """The first string of a parsed JSON body (keys too) that carries a refused character:
    its field, named as validation errors name fields (`lines.0.description`), and why."""
    stack: list[tuple[tuple[str, ...], Any]] = [((), document)]
    while stack:  # not recursive: a body may nest as deep as the JSON parser allows
        path, value = stack.pop()
        if isinstance(value, str):
            if (message := refusal(value, multi_line=True)) is not None:
                return ".".join(path) or "body", message
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                if (message := refusal(key)) is not None:
                    return ".".join(path) or "body", f"a key {message}"
                stack.append(((*path, key), item))
        elif isinstance(value, list):
            stack.extend(((*path, str(i)), item) for i, item in reversed(list(enumerate(value))))
    return None
