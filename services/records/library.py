"""The technical library: documents with versions, applicability, op codes and search.

Full text: PostgreSQL keeps two weighted tsvectors on the row ('simple' configuration,
GIN indexes): the whole document and the title with the tags alone; SQLite keeps the FTS5
table `library_fts`, a derived index the service creates at start-up and rebuilds when it
is missing (it is not in the migrations because autogenerate would see FTS5's shadow
tables as unknown tables). Both index the words of `library_text.words` (Chinese split by
jieba), and a query is split the same way. A document indexed an older way
(`search_index_version` below SEARCH_INDEX_VERSION) is re-indexed by `reindex_stale`, in
batches after start-up.
"""

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Float,
    String,
    and_,
    case,
    cast,
    delete,
    exists,
    false,
    func,
    literal,
    literal_column,
    or_,
    text,
    union_all,
)
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.records import library_text
from services.records.files import get_file, storage_for
from services.records.models import (
    FileReference,
    LendingItem,
    LibraryApplicability,
    LibraryDocument,
    LibraryDocumentCreate,
    LibraryDocumentPublic,
    LibraryDocumentUpdate,
    LibraryDownload,
    LibraryOpCode,
    LibraryVersion,
    Loan,
    StoredFile,
)
from shared.auth import Role, User
from shared.concurrency import check_if_match, etag
from shared.db import Database
from shared.events import utcnow
from shared.pagination import after, page
from shared.problems import Forbidden, InvalidInput, NotFound

if TYPE_CHECKING:
    from shared.service import Runtime

log = logging.getLogger(__name__)

REFERENCE_OWNER = "records.library_version"

# How documents are indexed now: 1 = words split by jieba, and on PostgreSQL the title
# vector too. A document with a lower `search_index_version` is re-indexed (reindex_stale).
SEARCH_INDEX_VERSION = 1

# The words go in already split (library_text.index_text), separated by spaces.
FTS_DDL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS library_fts USING fts5("
    "document_id, title, tags, body, tokenize='unicode61 remove_diacritics 2')"
)


async def ensure_search_index_on_start(runtime: "Runtime") -> None:
    await ensure_search_index(runtime.db)


async def ensure_search_index(db: Database) -> None:
    """SQLite: create the FTS5 table if missing and fill it from the documents."""
    if not db.is_sqlite:
        return
    async with db.transaction() as session:
        present = (
            await (await session.connection()).execute(
                text("SELECT 1 FROM sqlite_master WHERE type='table' AND name='library_fts'")
            )
        ).first()
        if present is not None:
            return
        # Earlier indexes (Chinese unsplit, rowids not derived from the document) are
        # rebuilt under the new name.
        for earlier in ("library_search", "library_search_words"):
            await (await session.connection()).execute(text(f"DROP TABLE IF EXISTS {earlier}"))
        await (await session.connection()).execute(text(FTS_DDL))
        documents = (await session.exec(select(LibraryDocument))).all()
        await index_rows(
            session,
            [{"id": d.id, "title": d.title, "tags": d.tags, "text": d.text} for d in documents],
        )


def _is_sqlite(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "sqlite"


# `document_id` is indexed too (one 32-digit token, weight 0 in the ranking), so
# re-indexing a document finds its old row through the index instead of reading the
# whole table; rowids stay in the order documents were (re)indexed, newest highest.
_SQLITE_UNINDEX = text("DELETE FROM library_fts WHERE library_fts MATCH :match")
_SQLITE_INDEX = text(
    "INSERT INTO library_fts (document_id, title, tags, body) VALUES (:id, :title, :tags, :body)"
)
_SQLITE_INDEXED = text("UPDATE library_document SET search_index_version = :version WHERE id = :id")
_PG_INDEX = text(
    "UPDATE library_document SET search_vector = "
    "setweight(to_tsvector('simple', :title), 'A') || "
    "setweight(to_tsvector('simple', :tags), 'B') || "
    "setweight(to_tsvector('simple', :body), 'C'), "
    "title_vector = "
    "setweight(to_tsvector('simple', :title), 'A') || "
    "setweight(to_tsvector('simple', :tags), 'B'), "
    "search_index_version = :version WHERE id = :id"
)


def _index_params(row: dict[str, Any], *, is_sqlite: bool) -> dict[str, Any]:
    return {
        # SQLite keeps UUIDs as 32 hex digits, as the FTS table does.
        "id": row["id"].hex if is_sqlite else row["id"],
        "title": library_text.index_text(row["title"]),
        "tags": library_text.index_text(" ".join(row["tags"])),
        "body": library_text.index_text(row["text"]),
        "version": SEARCH_INDEX_VERSION,
    }


async def index_rows(
    session: AsyncSession, rows: list[dict[str, Any]], *, in_thread: bool = False
) -> None:
    """Put documents (`id`, `title`, `tags`, `text`) in the full-text index, many at once,
    and mark them indexed the current way. `in_thread`: split the words in a worker thread
    (a large batch would otherwise keep the event loop from answering requests)."""
    if not rows:
        return
    await library_text.ready()
    is_sqlite = _is_sqlite(session)

    def split() -> list[dict[str, Any]]:
        return [_index_params(row, is_sqlite=is_sqlite) for row in rows]

    params = await asyncio.to_thread(split) if in_thread else split()
    connection = await session.connection()
    if is_sqlite:
        await connection.execute(
            _SQLITE_UNINDEX, [{"match": f'document_id : "{p["id"]}"'} for p in params]
        )
        await connection.execute(_SQLITE_INDEX, params)
        await connection.execute(
            _SQLITE_INDEXED, [{"id": p["id"], "version": p["version"]} for p in params]
        )
    else:
        await connection.execute(_PG_INDEX, params)


# Documents re-indexed per transaction by reindex_stale: each is split by jieba again, and
# a document's text may run to 200,000 characters.
REINDEX_BATCH = 200


async def reindex_stale(db: Database, batch: int = REINDEX_BATCH) -> int:
    """Re-index, in batches of `batch` (one transaction each), every document indexed an
    older way than SEARCH_INDEX_VERSION (e.g. before Chinese was split by jieba, or before
    the title vector); returns how many. Resumable: a batch done stays done, and a second
    run finds nothing to do. On PostgreSQL a batch's rows are locked while they are
    re-indexed (an edit waits for it, then indexes its own text) and rows an edit holds
    are skipped (the edit indexes them)."""
    done = 0
    after: uuid.UUID | None = None
    while True:
        async with db.transaction() as session:
            stale = (
                select(
                    col(LibraryDocument.id),
                    col(LibraryDocument.title),
                    col(LibraryDocument.tags),
                    col(LibraryDocument.text),
                )
                .where(col(LibraryDocument.search_index_version) < SEARCH_INDEX_VERSION)
                .order_by(col(LibraryDocument.id))
                .limit(batch)
            )
            if after is not None:
                stale = stale.where(col(LibraryDocument.id) > after)
            if not db.is_sqlite:
                stale = stale.with_for_update(skip_locked=True, of=LibraryDocument)
            rows: list[dict[str, Any]] = [
                {"id": r[0], "title": r[1], "tags": r[2], "text": r[3]}
                for r in (await session.exec(stale)).all()
            ]
            await index_rows(session, rows, in_thread=True)
        done += len(rows)
        if len(rows) < batch:
            break
        after = rows[-1]["id"]
    if done and not db.is_sqlite:
        # The search's plans depend on the vectors' statistics (a newest-first walk for
        # common words, the GIN matches for rare ones): gather them now rather than when
        # autovacuum gets to it.
        async with db.transaction() as session:
            await (await session.connection()).execute(text("ANALYZE library_document"))
    return done


# After a failure, the start-up re-index tries again this much later (seconds).
REINDEX_RETRY = 60.0


async def reindex_on_start(runtime: "Runtime") -> None:
    """Background job: re-index the stale documents once after start-up. Until a document
    is re-indexed it is found by its old index entry."""
    while True:
        try:
            count = await reindex_stale(runtime.db)
        except Exception:
            log.exception("re-indexing the library failed; trying again later")
            await asyncio.sleep(REINDEX_RETRY)
            continue
        if count:
            log.info("re-indexed %d library documents", count)
        return


async def _index(session: AsyncSession, document: LibraryDocument) -> None:
    row = {"id": document.id, "title": document.title, "tags": document.tags}
    await index_rows(session, [{**row, "text": document.text}])


def public(document: LibraryDocument) -> LibraryDocumentPublic:
    return LibraryDocumentPublic(
        id=document.id,
        title=document.title,
        category=document.category,  # type: ignore[arg-type]
        language=document.language,
        tags=document.tags,
        op_codes=document.op_codes,
        applies_to=document.applies_to,  # type: ignore[arg-type]
        confidential=document.confidential,
        allowed_roles=document.allowed_roles,
        shared=document.branch is None,
        owner_branch=document.owner_branch,
        current_version=document.current_version,
        created_at=document.created_at,
        updated_at=document.updated_at,
        etag=etag(document.version),
    )


def can_manage(user: User) -> bool:
    return user.has(Role.records_clerk, Role.admin)


def visible_to(user: User) -> Any:
    """Rows the user may see: their branch's or shared, and not confidential unless the
    user holds one of the document's named roles (the clerk sees everything)."""
    in_scope = or_(
        col(LibraryDocument.branch).is_(None), col(LibraryDocument.branch) == user.branch
    )
    if can_manage(user):
        return in_scope
    # allowed_roles is a JSON list of role names (identifiers from the Role enum), so a
    # match on its text form is exact and works on SQLite and PostgreSQL alike.
    roles_text = cast(col(LibraryDocument.allowed_roles), String)
    named = [roles_text.like(f'%"{role.value}"%') for role in sorted(user.roles)]
    return and_(in_scope, or_(col(LibraryDocument.confidential).is_(False), *named))


def may_read(document: LibraryDocument, user: User) -> bool:
    if document.branch is not None and document.branch != user.branch:
        return False
    if can_manage(user) or not document.confidential:
        return True
    return bool({r.value for r in user.roles} & set(document.allowed_roles))


def _normalize(fields: dict[str, Any]) -> None:
    if "tags" in fields and fields["tags"] is not None:
        fields["tags"] = list(dict.fromkeys(t for t in fields["tags"]))
    if "op_codes" in fields and fields["op_codes"] is not None:
        fields["op_codes"] = list(dict.fromkeys(c.upper() for c in fields["op_codes"]))
    if fields.get("applies_to") is not None:
        rules = []
        for i, rule in enumerate(fields["applies_to"]):
            if not rule.get("make") and not rule.get("vin_prefix"):
                raise InvalidInput(f"applies_to.{i}", "needs a make or a VIN prefix")
            if rule.get("model") and not rule.get("make"):
                raise InvalidInput(f"applies_to.{i}.model", "a model needs its make")
            y0, y1 = rule.get("year_from"), rule.get("year_to")
            if y0 is not None and y1 is not None and y0 > y1:
                raise InvalidInput(f"applies_to.{i}.year_to", "is before year_from")
            rules.append(rule)
        fields["applies_to"] = rules
    if fields.get("allowed_roles") is not None:
        fields["allowed_roles"] = sorted({str(r) for r in fields["allowed_roles"]})


async def _replace_children(session: AsyncSession, document: LibraryDocument) -> None:
    await session.exec(
        delete(LibraryApplicability).where(col(LibraryApplicability.document_id) == document.id)
    )
    await session.exec(delete(LibraryOpCode).where(col(LibraryOpCode.document_id) == document.id))
    document.makes = sorted(
        {rule["make"].lower() for rule in document.applies_to if rule.get("make")}
    )
    for rule in document.applies_to:
        session.add(
            LibraryApplicability(
                document_id=document.id,
                make=(rule.get("make") or "").lower() or None,
                model=(rule.get("model") or "").lower() or None,
                year_from=rule.get("year_from"),
                year_to=rule.get("year_to"),
                vin_prefix=rule.get("vin_prefix"),
            )
        )
    for code in document.op_codes:
        session.add(LibraryOpCode(document_id=document.id, op_code=code))


async def _attach_version(
    session: AsyncSession,
    document: LibraryDocument,
    number: int,
    file_id: uuid.UUID,
    note: str,
    by: User,
) -> LibraryVersion:
    try:
        await get_file(session, file_id, by)
    except NotFound as exc:
        raise InvalidInput("file_id", "no such file in your branch; upload it first") from exc
    version = LibraryVersion(
        document_id=document.id,
        number=number,
        file_id=file_id,
        note=note,
        created_by=by.id,
        created_at=utcnow(),
    )
    session.add(version)
    if await session.get(FileReference, (file_id, REFERENCE_OWNER, str(version.id))) is None:
        session.add(
            FileReference(
                file_id=file_id,
                owner=REFERENCE_OWNER,
                owner_id=str(version.id),
                created_at=utcnow(),
            )
        )
    return version


async def create(
    session: AsyncSession, body: LibraryDocumentCreate, by: User, extracted: str | None = None
) -> LibraryDocumentPublic:
    """`extracted`: the text of the version's file when it is a PDF (`file_text`); it is
    the text to search unless the clerk typed one."""
    fields = body.model_dump(exclude={"file_id", "note", "shared"})
    if not fields.get("text") and extracted:
        fields["text"] = extracted
    _normalize(fields)
    now = utcnow()
    document = LibraryDocument(
        **fields,
        branch=None if body.shared else by.branch,
        owner_branch=by.branch,
        created_by=by.id,
        created_at=now,
        updated_at=now,
    )
    session.add(document)
    await session.flush()
    await _attach_version(session, document, 1, body.file_id, body.note, by)
    await _replace_children(session, document)
    await session.flush()
    await _index(session, document)
    return public(document)


async def get(session: AsyncSession, document_id: uuid.UUID, by: User) -> LibraryDocument:
    document = await session.get(LibraryDocument, document_id)
    if document is None or (document.branch is not None and document.branch != by.branch):
        raise NotFound(f"no library document {document_id}")
    if not may_read(document, by) and not await _on_loan_to(session, document, by):
        raise Forbidden("this document is confidential; ask the records clerk to lend it")
    return document


async def _on_loan_to(session: AsyncSession, document: LibraryDocument, by: User) -> bool:
    """A restricted document is readable by whoever has it out on a loan right now."""
    held = await session.exec(
        select(Loan.id)
        .join(LendingItem, col(LendingItem.id) == col(Loan.item_id))
        .where(
            LendingItem.document_id == document.id,
            Loan.borrower_id == by.id,
            Loan.branch == by.branch,
            Loan.status == "out",
        )
    )
    return held.first() is not None


async def _editable(
    session: AsyncSession, document_id: uuid.UUID, by: User, if_match: str | None
) -> LibraryDocument:
    document = await get(session, document_id, by)
    if document.owner_branch != by.branch:
        raise Forbidden("only the branch that owns a shared document edits it")
    check_if_match(if_match, document.version)
    return document


async def update(
    session: AsyncSession,
    document_id: uuid.UUID,
    body: LibraryDocumentUpdate,
    by: User,
    if_match: str | None,
) -> LibraryDocumentPublic:
    document = await _editable(session, document_id, by, if_match)
    fields = body.model_dump(exclude_unset=True)
    for name in list(fields):
        if fields[name] is None:
            raise InvalidInput(name, "may not be null")
    _normalize(fields)
    shared = fields.pop("shared", None)
    if shared is not None:
        document.branch = None if shared else document.owner_branch
    for name, value in fields.items():
        setattr(document, name, value)
    document.updated_at = utcnow()
    await _replace_children(session, document)
    await session.flush()
    await _index(session, document)
    return public(document)


async def add_version(
    session: AsyncSession,
    document_id: uuid.UUID,
    file_id: uuid.UUID,
    note: str,
    by: User,
    if_match: str | None,
    extracted: str | None = None,
) -> LibraryDocumentPublic:
    """A PDF version with text in it replaces the text to search with its own (the
    clerk may edit it afterwards); any other version keeps the text as it was."""
    document = await _editable(session, document_id, by, if_match)
    document.current_version += 1
    document.updated_at = utcnow()
    await _attach_version(session, document, document.current_version, file_id, note, by)
    if extracted:
        document.text = extracted
    await session.flush()
    if extracted:
        await _index(session, document)
    return public(document)


async def file_text(db: Database, settings: Any, file_id: uuid.UUID, by: User) -> str | None:
    """The text of the user's branch's file `file_id` when it is a PDF, else None.

    Runs before the write transaction that uses it: reading a large PDF takes a while,
    and SQLite has one writer at a time. A file that is not there is left for the
    transaction to refuse (422 on `file_id`)."""
    async with db.reader() as session:
        stored = await session.get(StoredFile, file_id)
        if stored is None or stored.branch != by.branch:
            return None
        media_type, sha256, size = stored.media_type, stored.sha256, stored.size
    if media_type != "application/pdf":
        return None
    return await library_text.pdf_text(storage_for(settings), sha256, size)


async def versions(session: AsyncSession, document_id: uuid.UUID, by: User) -> list[LibraryVersion]:
    await get(session, document_id, by)
    query = (
        select(LibraryVersion)
        .where(LibraryVersion.document_id == document_id)
        .order_by(col(LibraryVersion.number).desc())
    )
    return list((await session.exec(query)).all())


async def version_for_download(
    session: AsyncSession, document_id: uuid.UUID, number: int | None, by: User, *, ranged: bool
) -> tuple[LibraryDocument, LibraryVersion]:
    """The version to send, with the download logged in the same transaction."""
    document = await get(session, document_id, by)
    wanted = number or document.current_version
    version = (
        await session.exec(
            select(LibraryVersion).where(
                LibraryVersion.document_id == document_id, LibraryVersion.number == wanted
            )
        )
    ).first()
    if version is None:
        raise NotFound(f"document {document_id} has no version {wanted}")
    session.add(
        LibraryDownload(
            document_id=document_id,
            version_number=wanted,
            user_id=by.id,
            user_name=by.name,
            branch=by.branch,
            ranged=ranged,
            downloaded_at=utcnow(),
        )
    )
    return document, version


async def downloads(
    session: AsyncSession, document_id: uuid.UUID, by: User, *, limit: int, cursor: str | None
) -> tuple[list[LibraryDownload], str | None]:
    """Who downloaded the document, newest first, a page at a time."""
    await get(session, document_id, by)
    query = (
        select(LibraryDownload)
        .where(
            LibraryDownload.document_id == document_id,
            after(LibraryDownload.downloaded_at, LibraryDownload.id, cursor),
        )
        .order_by(col(LibraryDownload.downloaded_at).desc(), col(LibraryDownload.id).desc())
        .limit(limit + 1)
    )
    return page(list((await session.exec(query)).all()), limit, "downloaded_at")


# A query ranks at most this many of the newest matching documents, plus half as many of
# the newest whose title holds every word (on PostgreSQL: title or tags): a word found in
# most of the library would otherwise make every search score and sort tens of thousands
# of rows. On SQLite, when that leaves fewer hits than asked for (a narrow filter), the
# search runs again over every match; PostgreSQL applies the filters before the cut.
SEARCH_CANDIDATES = 500

# ts_rank's weights for D, C (text), B (tags), A (title): a title hit outranks any number
# of mentions in the text.
_PG_WEIGHTS = "'{0.0, 0.02, 0.2, 1.0}'::float4[]"
# Added to the score of the title tier, so it comes before every other match.
TITLE_TIER = 1000.0


def _pg_ranked(query: Any, words: list[str], limit: int) -> Any:
    """PostgreSQL: the ids and scores of the best `limit` matches of `query` (the user's
    visibility and the filters) for `words`, best first, newest first among equals.

    Two newest-first cuts, each read through the `updated_at` index, or through the GIN
    index and sorted when the words are rare (the planner picks by the vectors'
    statistics): the newest SEARCH_CANDIDATES // 2 documents whose small title vector
    (title A, tags B) holds every word, ranked by that vector above everything else, and
    the newest SEARCH_CANDIDATES documents holding every word anywhere, ranked by the
    whole vector. Only those rows are ranked, however many documents match; a walk reads
    only the rows it passes (the title tier from the covering index alone), and the GIN
    match of a query without weights needs no recheck. The cut comes after the filters,
    so it always leaves `limit` hits when there are that many. Each tier is scored inside
    its cut: a walk scores only the rows it keeps, and a sort sorts numbers, not vectors.
    """
    tsquery = func.plainto_tsquery(literal_column("'simple'::regconfig"), " ".join(words))
    weights: Any = literal_column(_PG_WEIGHTS)
    candidates = max(SEARCH_CANDIDATES, limit)
    updated_at = col(LibraryDocument.updated_at)

    def newest(vector: Any, count: int, bonus: float | None = None) -> Any:
        score: Any = func.ts_rank(weights, vector, tsquery).cast(Float)
        if bonus is not None:
            score = score + bonus
        return (
            query.where(vector.op("@@")(tsquery))
            .with_only_columns(col(LibraryDocument.id), updated_at, score.label("score"))
            .order_by(updated_at.desc())
            .limit(count)
        )

    hits = union_all(
        newest(col(LibraryDocument.title_vector), candidates // 2, TITLE_TIER),
        newest(col(LibraryDocument.search_vector), candidates),
    ).subquery("hits")
    return (
        select(hits.c.id, func.max(hits.c.score).label("rank"))
        .group_by(hits.c.id, hits.c.updated_at)
        .order_by(text("rank DESC"), hits.c.updated_at.desc())
        .limit(limit)
    )


_SQLITE_HITS = (
    "SELECT doc, max(score) AS score FROM ("
    # Documents with every word in the title come first...
    " SELECT * FROM (SELECT document_id AS doc,"
    "  1000.0 - bm25(library_fts, 0, 10.0, 5.0, 1.0) AS score"
    "  FROM library_fts WHERE library_fts MATCH :title_match"
    "  ORDER BY rowid DESC LIMIT :title_candidates)"
    " UNION ALL"
    # ...then the rest, by bm25 with the title counting most, then tags, then the text.
    " SELECT * FROM (SELECT document_id AS doc,"
    "  -bm25(library_fts, 0, 10.0, 5.0, 1.0) AS score"
    "  FROM library_fts WHERE library_fts MATCH :match"
    "  ORDER BY rowid DESC LIMIT :candidates)"
    ") GROUP BY doc"
)


async def search(
    session: AsyncSession,
    by: User,
    *,
    q: str | None = None,
    category: str | None = None,
    make: str | None = None,
    model: str | None = None,
    year: int | None = None,
    vin: str | None = None,
    op_codes: list[str] | None = None,
    limit: int = 50,
) -> list[tuple[LibraryDocument, float | None]]:
    """Documents the user may see, best match first when there is a query, else newest.

    Confidential documents the user may not read are left out of lists entirely.
    """
    filters = _filters(
        category, make, model, year, vin, op_codes, on_postgres=not _is_sqlite(session)
    )
    query = select(LibraryDocument).where(visible_to(by), *filters)
    if not q:
        plain = query.order_by(col(LibraryDocument.updated_at).desc(), col(LibraryDocument.id))
        return [(d, None) for d in (await session.exec(plain.limit(limit))).all()]
    await library_text.ready()
    words = library_text.query_words(q)
    if not words:
        raise InvalidInput("q", "no words to search for")
    connection = await session.connection()
    if _is_sqlite(session):
        phrases = " ".join(f'"{w}"' for w in words)
        rows: list[Any] = []
        for candidates in (SEARCH_CANDIDATES, -1):  # -1: no limit
            hits = (
                text(_SQLITE_HITS)
                .bindparams(
                    match=phrases,
                    title_match=f"title : ({phrases})",
                    candidates=candidates,
                    title_candidates=candidates // 2 if candidates > 0 else -1,
                )
                .columns(literal_column("doc", String), literal_column("score", Float))
                .subquery("hits")
            )
            # SQLite keeps UUIDs as 32 hex digits, as the FTS table does.
            ranked = (
                query.join(hits, text("hits.doc = library_document.id"))
                .with_only_columns(col(LibraryDocument.id), hits.c.score.label("rank"))
                .order_by(text("rank DESC"), col(LibraryDocument.updated_at).desc())
            )
            rows = list((await connection.execute(ranked.limit(limit))).all())
            if len(rows) == limit:
                break
    else:
        # The statement is prepared once for every query (asyncpg); a generic plan, made
        # without knowing the words, would walk the wrong index for common or rare ones.
        await connection.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
        rows = list((await connection.execute(_pg_ranked(query, words, limit))).all())
    found = {
        d.id: d
        for d in (
            await session.exec(
                select(LibraryDocument).where(col(LibraryDocument.id).in_([r[0] for r in rows]))
            )
        ).all()
    }
    return [(found[row[0]], float(row[1])) for row in rows]


def _filters(
    category: str | None,
    make: str | None,
    model: str | None,
    year: int | None,
    vin: str | None,
    op_codes: list[str] | None,
    *,
    on_postgres: bool = False,
) -> list[Any]:
    filters: list[Any] = []
    if category:
        filters.append(col(LibraryDocument.category) == category)
    vehicle_rules: list[Any] = []
    # PostgreSQL: the make is checked on the row (or the covering index) first, and the
    # rules only for rows of that make. Inside CASE the rules stay a subplan, hashed once
    # per query, instead of a semi-join probing the rules for every row the newest-first
    # walk passes (and a plain `makes @>` filter makes the planner trade the walk for a
    # scan of every match, four times slower).
    prefilter = None
    if make and not vin and on_postgres:
        prefilter = col(LibraryDocument.makes).op("@>")(func.jsonb_build_array(make.lower()))
    if make:
        rule: list[Any] = [col(LibraryApplicability.make) == make.lower()]
        if model:
            rule.append(
                or_(
                    col(LibraryApplicability.model).is_(None),
                    col(LibraryApplicability.model) == model.lower(),
                )
            )
        if year is not None:
            rule.append(
                or_(
                    col(LibraryApplicability.year_from).is_(None),
                    col(LibraryApplicability.year_from) <= year,
                )
            )
            rule.append(
                or_(
                    col(LibraryApplicability.year_to).is_(None),
                    col(LibraryApplicability.year_to) >= year,
                )
            )
        vehicle_rules.append(and_(*rule))
    if vin:
        vehicle_rules.append(
            and_(
                col(LibraryApplicability.vin_prefix).is_not(None),
                literal(vin.upper()).like(col(LibraryApplicability.vin_prefix) + "%"),
            )
        )
    if vehicle_rules:
        rules_hold: Any = exists().where(
            col(LibraryApplicability.document_id) == LibraryDocument.id, or_(*vehicle_rules)
        )
        if prefilter is not None:
            rules_hold = case((prefilter, rules_hold), else_=false())
        filters.append(rules_hold)
    if op_codes:
        codes = [c.upper() for c in op_codes]
        filters.append(
            exists().where(
                col(LibraryOpCode.document_id) == LibraryDocument.id,
                col(LibraryOpCode.op_code).in_(codes),
            )
        )
    return filters
