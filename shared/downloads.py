"""Headers for what the services hand out as files (stored uploads, library documents,
printed PDFs, report exports): a Content-Disposition that no name can break out of, no
type sniffing, and nothing a browser would run as a page."""

import re
from urllib.parse import quote

# Types a browser shows as what they are, never as a page: these alone are served inline.
INLINE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "application/pdf"})
EXTENSIONS = {
    "image/jpeg": ("jpg", "jpeg"),
    "image/png": ("png",),
    "image/webp": ("webp",),
    "image/heic": ("heic",),
    "application/pdf": ("pdf",),
    "text/csv": ("csv",),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ("xlsx",),
}
# RFC 5987 attr-char, less nothing: what may stand unescaped in filename*.
_ATTR_CHARS = "!#$&+-.^_`|~"
_FALLBACK_UNSAFE = re.compile(r"[^A-Za-z0-9!#$&+\-.^_`|~ ()\[\]{}@,=]")
# Sandboxed as a document of its own: no scripts, forms, plugins or same-origin access,
# should a browser ever render the bytes as a page.
FILE_CSP = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"


def file_name(name: str, media_type: str) -> str:
    """The name a saved copy gets: no path, no control characters, and ending in the
    extension of the type the content was found to be (a JPEG named `x.html` is saved as
    `x.html.jpg`, so the saved file does not open as a page either)."""
    name = re.sub(r"[\x00-\x1f\x7f]", "", name.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    name = name.lstrip(".") or "file"
    extensions = EXTENSIONS.get(media_type)
    if extensions and not name.lower().endswith(tuple(f".{e}" for e in extensions)):
        name = f"{name}.{extensions[0]}"
    return name[-255:]


def content_disposition(disposition: str, name: str) -> str:
    """RFC 6266: an ASCII `filename` for old clients and the exact name as RFC 5987
    `filename*`; quotes, backslashes, semicolons and line breaks in a name are escaped or
    replaced, so a name cannot end the header or add a parameter."""
    fallback = _FALLBACK_UNSAFE.sub("_", name) or "file"
    encoded = quote(name, safe=_ATTR_CHARS)
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


def file_headers(media_type: str, name: str) -> tuple[str, dict[str, str]]:
    """The type to declare and the headers for a file's bytes: inline for the types in
    `INLINE_TYPES`, anything else an attachment of `application/octet-stream`."""
    inline = media_type in INLINE_TYPES
    headers = {
        "Content-Disposition": content_disposition(
            "inline" if inline else "attachment", file_name(name, media_type)
        ),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": FILE_CSP,
    }
    return (media_type if inline else "application/octet-stream"), headers


def export_headers(name: str) -> dict[str, str]:
    """An export (CSV, workbook) saved by the browser, never shown."""
    return {
        "Content-Disposition": content_disposition("attachment", name),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": FILE_CSP,
    }
