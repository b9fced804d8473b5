"""LIKE conditions on what a user typed: their `%` and `_` match only themselves."""

from typing import Any

ESCAPE = "\\"


def like_escaped(text: str) -> str:
    """`text` as a LIKE pattern that matches exactly it."""
    return text.replace(ESCAPE, ESCAPE * 2).replace("%", ESCAPE + "%").replace("_", ESCAPE + "_")


def starts_with(column: Any, text: str) -> Any:
    # SQLAlchemy's own startswith() leaves the wildcards live: `q=%` matched every row.
    return column.like(like_escaped(text) + "%", escape=ESCAPE)


def contains(column: Any, text: str) -> Any:
    return column.like("%" + like_escaped(text) + "%", escape=ESCAPE)
