"""Pathological PDFs for the library's text extraction, written by hand (no PDF library
would write them): many pages sharing one heavy content stream, and a small file whose
one stream inflates to a great deal of memory."""

import zlib


def _pdf(objects: list[bytes]) -> bytes:
    """A PDF of `objects` (object 1 the catalog) with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _stream(data: bytes, compress: bool = True) -> bytes:
    if compress:
        data = zlib.compress(data, 9)
        return (
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(data) + data + (b"\nendstream")
        )
    return b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


def shared_stream_pdf(pages: int = 2_000, operations: int = 150) -> bytes:
    """`pages` pages that all draw one content stream of `operations` text operations.

    The file is small (the stream is stored once, compressed), but a reader extracting
    text page by page parses the stream again for every page: pages × operations."""
    font = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    # Mostly lines drawn (nothing a text reader keeps, so no cap on the text stops it
    # early), and a few words.
    ops = b"0 0 m 10 10 l S " * operations + b"BT /F1 9 Tf 20 800 Td (brake caliper) Tj ET"
    first_page = 5
    kids = b" ".join(b"%d 0 R" % (first_page + i) for i in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages,
        font,
        _stream(ops),
    ]
    page = (
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842]"
        b" /Resources << /Font << /F1 3 0 R >> >> /Contents 4 0 R >>"
    )
    objects += [page] * pages
    return _pdf(objects)


def inflating_pdf(megabytes: int = 400) -> bytes:
    """One page whose content stream is a few hundred KB compressed and `megabytes` MiB
    once inflated: text extraction holds it all at once."""
    line = b"(x) Tj "
    ops = b"BT /F1 9 Tf " + line * (megabytes * 1024 * 1024 // len(line)) + b"ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [5 0 R] /Count 1 >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        _stream(ops),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842]"
        b" /Resources << /Font << /F1 3 0 R >> >> /Contents 4 0 R >>",
    ]
    return _pdf(objects)
