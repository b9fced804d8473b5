"""The HTTP protocol the services run under uvicorn: httptools, whose own refusals (a
request it cannot parse, a request target it cannot take) are problem+json like every
other error, and which stops reading an over-long request target or header section at
once instead of buffering it."""

from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from shared.http import MAX_HEADERS, MAX_HEADERS_BYTES, MAX_URL_BYTES
from shared.problems import PROBLEM_BASE, PROBLEM_JSON

# The server's bounds sit above the app's (`shared.http.HeadLimit`), which answers
# requests between the two with the same statuses and a route-aware log line; these
# only cut off what the app should never be handed (httptools cannot parse a target of
# 64 KiB or more at all).
SERVER_MAX_URL_BYTES = 4 * MAX_URL_BYTES
SERVER_MAX_HEADERS_BYTES = 2 * MAX_HEADERS_BYTES
SERVER_MAX_HEADERS = 2 * MAX_HEADERS

_REFUSALS = {
    400: ("bad-request", "Malformed HTTP request", "the request could not be parsed as HTTP/1.1"),
    414: (
        "uri-too-long",
        "Request target too long",
        f"the path and query string may be at most {MAX_URL_BYTES} bytes",
    ),
    431: (
        "header-fields-too-large",
        "Request header fields too large",
        f"the header fields may be at most {MAX_HEADERS_BYTES} bytes together",
    ),
}


class _HeadTooLarge(Exception):
    pass


class ProblemHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with problem+json refusals (`--http
    shared.server:ProblemHttpToolsProtocol`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._refusal = 400
        self._header_bytes = 0

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._refusal = 400
        self._header_bytes = 0

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > SERVER_MAX_URL_BYTES:
            self._refusal = 414
            raise _HeadTooLarge  # httptools stops and raises HttpParserCallbackError

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > SERVER_MAX_HEADERS_BYTES or len(self.headers) > SERVER_MAX_HEADERS:
            self._refusal = 431
            raise _HeadTooLarge

    def send_400_response(self, msg: str) -> None:
        status = self._refusal
        if status == 400 and len(self.url) > MAX_URL_BYTES:
            status = 414  # httptools could not parse a target this long
        slug, title, detail = _REFUSALS[status]
        payload = orjson.dumps(
            {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail}
        )
        reason = {
            400: b"Bad Request",
            414: b"URI Too Long",
            431: b"Request Header Fields Too Large",
        }
        content = [b"HTTP/1.1 %d %s\r\n" % (status, reason[status])]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: " + PROBLEM_JSON.encode() + b"\r\n",
                b"content-length: " + str(len(payload)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                payload,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()
