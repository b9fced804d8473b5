"""The technical library: search in Chinese and English, upload a document (the file to
records' files first, then the document naming it) or a new version, edit its
applicability, op codes and who may see it, read its download log."""

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from services.staff.api import Answer, gather, page_items
from services.staff.pages.records.common import Clerk, Desk, download, refused
from services.staff.web import Form, Viewer, render

CATEGORIES = ("manual", "bulletin", "wiring_diagram", "picture", "data_sheet", "training")
READER_ROLES = ("advisor", "foreman", "technician", "qc", "manager")
RULE_FIELDS = ("make", "model", "year_from", "year_to", "vin_prefix")
_LIST = re.compile(r"[,，、;；\s]+")


def install(app: FastAPI) -> None:
    route = app.add_api_route
    route("/records/library", search, methods=["GET"], include_in_schema=False)
    route("/records/library", create, methods=["POST"], include_in_schema=False)
    route("/records/library/{document_id}", document, methods=["GET"], include_in_schema=False)
    route("/records/library/{document_id}", edit, methods=["POST"], include_in_schema=False)
    route(
        "/records/library/{document_id}/versions",
        new_version,
        methods=["POST"],
        include_in_schema=False,
    )
    route(
        "/records/library/{document_id}/content",
        content,
        methods=["GET"],
        include_in_schema=False,
    )


def _words(value: str) -> list[str]:
    return [w for w in _LIST.split(value.strip()) if w]


def _tags(value: str) -> list[str]:
    return [w.strip() for w in re.split(r"[,，、;；]+", value) if w.strip()]


def _rules(form: dict[str, str]) -> list[dict[str, Any]]:
    """The applicability rows of the form (`rule_<field>_<n>`), the empty ones left out."""
    rules = []
    for n in range(10):
        rule = {f: form.get(f"rule_{f}_{n}", "").strip() for f in RULE_FIELDS}
        if not any(rule.values()):
            continue
        kept: dict[str, Any] = {k: v for k, v in rule.items() if v}
        for year in ("year_from", "year_to"):
            if year in kept and kept[year].isdigit():
                kept[year] = int(kept[year])
        if "vin_prefix" in kept:
            kept["vin_prefix"] = kept["vin_prefix"].upper()
        rules.append(kept)
    return rules


def _rule_rows(rules: list[dict[str, Any]], extra: int) -> list[dict[str, str]]:
    rows = [{f: "" if r.get(f) is None else str(r.get(f)) for f in RULE_FIELDS} for r in rules]
    return rows + [dict.fromkeys(RULE_FIELDS, "") for _ in range(extra)]


def _rows_from_form(form: dict[str, str]) -> list[dict[str, str]]:
    count = max(
        [n + 1 for n in range(10) if any(f"rule_{f}_{n}" in form for f in RULE_FIELDS)] or [1]
    )
    return [{f: form.get(f"rule_{f}_{n}", "") for f in RULE_FIELDS} for n in range(count)]


def _form_errors(answer: Answer, seen: Viewer) -> tuple[dict[str, str], str | None]:
    """Records' field errors under the form's names: `applies_to.1.make` is the second
    rule's make field, `op_codes.0` the op codes field."""
    errors, message = refused(answer, seen)
    named: dict[str, str] = {}
    for field, text in errors.items():
        parts = field.split(".")
        if parts[0] == "applies_to" and len(parts) >= 3 and parts[1].isdigit():
            named[f"rule_{parts[2]}_{parts[1]}"] = text
        elif parts[0] == "applies_to" and len(parts) >= 2 and parts[1].isdigit():
            named[f"rule_make_{parts[1]}"] = text
        elif parts[0] in ("op_codes", "tags", "allowed_roles"):
            named.setdefault(parts[0], text)
        elif "." not in field:
            named.setdefault(field, text)
    if errors and not named:
        message = next(iter(errors.values()))
    return named, message


def _fields(form: dict[str, str], sent: Any) -> dict[str, Any]:
    return {
        "title": form.get("title", "").strip(),
        "category": form.get("category", ""),
        "language": form.get("doc_language", "zh-CN"),
        "tags": _tags(form.get("tags", "")),
        "op_codes": [w.upper() for w in _words(form.get("op_codes", ""))],
        "applies_to": _rules(form),
        "confidential": form.get("confidential") == "on",
        "allowed_roles": [r for r in sent.getlist("allowed_roles") if r in READER_ROLES],
        "shared": form.get("shared") == "on",
    }


def _doc_row(seen: Viewer, doc: dict[str, Any]) -> dict[str, Any]:
    rules = []
    for rule in doc.get("applies_to") or []:
        if rule.get("vin_prefix"):
            rules.append(f"VIN {rule['vin_prefix']}…")
        else:
            years = ""
            if rule.get("year_from") or rule.get("year_to"):
                years = f" {rule.get('year_from') or ''}–{rule.get('year_to') or ''}"
            rules.append(f"{rule.get('make') or ''} {rule.get('model') or ''}{years}".strip())
    return {**doc, "rules": rules, "updated": seen.local(doc.get("updated_at"))}


async def _upload(seen: Viewer, upload: UploadFile) -> Answer:
    data = await upload.read()
    return await seen.api.call(
        "records",
        "POST",
        "/files",
        files={"file": (upload.filename, data, upload.content_type or "application/octet-stream")},
    )


async def _search_page(
    request: Request,
    seen: Viewer,
    q: str,
    category: str,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    problem: str | None = None,
    saved: str | None = None,
    status_code: int = 200,
) -> Response:
    params: dict[str, Any] = {"q": q.strip(), "category": category or None, "limit": 30}
    answer = await seen.api.get("records", "/library/search", **params)
    hits, search_problem = [], None
    if answer.ok:
        hits = [_doc_row(seen, h["document"]) for h in page_items(answer.body)]
    else:
        search_problem = refused(answer, seen)[1]
    values = values or {}
    return render(
        request,
        "records_library.html",
        lang=seen.lang,
        viewer=seen,
        nav="library",
        q=q,
        category=category,
        categories=CATEGORIES,
        reader_roles=READER_ROLES,
        hits=hits,
        search_problem=search_problem,
        values=values,
        rules=values.get("rules") or _rule_rows([], 2),
        errors=errors or {},
        problem=problem,
        saved=saved,
        may_write=seen.session.has("records_clerk"),
        status_code=status_code,
    )


async def search(request: Request, seen: Desk, q: str = "", category: str = "") -> Response:
    return await _search_page(request, seen, q, category)


async def create(request: Request, seen: Clerk, form: Form) -> Response:
    """The file first (records keeps it once per content), then the document naming it,
    under the form's own key; a refused document keeps the uploaded file for the retry."""
    sent = await request.form()
    upload = sent.get("file")
    file_id, file_name = form.get("file_id", ""), form.get("file_name", "")
    values: dict[str, Any] = {
        **form,
        "allowed_roles": sent.getlist("allowed_roles"),
        "rules": _rows_from_form(form),
    }
    if isinstance(upload, UploadFile) and upload.filename:
        stored = await _upload(seen, upload)
        if not stored.ok:
            errors, message = refused(stored, seen)
            values.update(file_id="", file_name="")
            return await _search_page(
                request,
                seen,
                "",
                "",
                values=values,
                errors={"file": errors.get("file") or message or ""},
                status_code=422,
            )
        file_id, file_name = stored.body["id"], upload.filename
    if not file_id:
        return await _search_page(
            request,
            seen,
            "",
            "",
            values=values,
            errors={"file": seen.t["field_required"]},
            status_code=422,
        )
    body = {**_fields(form, sent), "file_id": file_id, "note": form.get("note", "").strip()}
    if form.get("text", "").strip():
        body["text"] = form["text"].strip()
    answer = await seen.api.call(
        "records",
        "POST",
        "/library/documents",
        json=body,
        idempotency_key=form.get("idempotency_key"),
    )
    if answer.ok:
        saved = seen.t["document_saved"].format(title=answer.body["title"])
        return await _search_page(request, seen, "", "", saved=saved)
    errors, message = _form_errors(answer, seen)
    values.update(file_id=file_id, file_name=file_name)
    return await _search_page(
        request, seen, "", "", values=values, errors=errors, problem=message, status_code=422
    )


# --- one document ------------------------------------------------------------------------


async def _document_page(
    request: Request,
    seen: Viewer,
    document_id: str,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    problem: str | None = None,
    version_form: dict[str, Any] | None = None,
    saved: str | None = None,
    status_code: int = 200,
) -> Response:
    clerk = seen.session.has("records_clerk")
    doc, versions, downloads = await gather(
        seen.api.get("records", f"/library/documents/{document_id}"),
        seen.api.get("records", f"/library/documents/{document_id}/versions"),
        seen.api.get("records", f"/library/documents/{document_id}/downloads", limit=20)
        if clerk
        else _nothing(),
    )
    if not doc.ok:
        return render(
            request,
            "error.html",
            lang=seen.lang,
            viewer=seen,
            status_code=403 if doc.status == 403 else 404,
            message_key="forbidden" if doc.status == 403 else "not_found",
            fmt={},
        )
    body = doc.body
    shown = values or {
        "title": body["title"],
        "category": body["category"],
        "doc_language": body["language"],
        "tags": "、".join(body["tags"]) if seen.lang == "zh-CN" else ", ".join(body["tags"]),
        "op_codes": ", ".join(body["op_codes"]),
        "confidential": "on" if body["confidential"] else "",
        "shared": "on" if body["shared"] else "",
        "allowed_roles": body["allowed_roles"],
        "etag": body["etag"],
        "rules": _rule_rows(body["applies_to"], 1),
    }
    version_rows = [
        {**v, "created": seen.local(v.get("created_at"))}
        for v in (page_items(versions.body) if versions.ok else [])
    ]
    download_rows = [
        {**d, "at": seen.local(d.get("downloaded_at"))}
        for d in (page_items(downloads.body) if downloads.ok and downloads.body else [])
    ]
    return render(
        request,
        "records_document.html",
        lang=seen.lang,
        viewer=seen,
        nav="library",
        doc=_doc_row(seen, body),
        values=shown,
        rules=shown.get("rules") or _rule_rows([], 1),
        errors=errors or {},
        problem=problem,
        version_form=version_form or {"values": {}, "errors": {}},
        versions=version_rows,
        downloads=download_rows,
        categories=CATEGORIES,
        reader_roles=READER_ROLES,
        saved=saved,
        may_write=clerk,
        status_code=status_code,
    )


async def _nothing() -> Answer:
    return Answer(204)


async def document(request: Request, document_id: str, seen: Desk) -> Response:
    return await _document_page(request, seen, document_id)


async def edit(request: Request, document_id: str, seen: Clerk, form: Form) -> Response:
    """Title, tags, op codes, applicability and who may see it, with the ETag the clerk
    saw: a 412 says someone else saved first and shows the document as it is now."""
    sent = await request.form()
    body = _fields(form, sent)
    answer = await seen.api.call(
        "records",
        "PATCH",
        f"/library/documents/{document_id}",
        json=body,
        if_match=form.get("etag"),
    )
    if answer.ok:
        return await _document_page(request, seen, document_id, saved=seen.t["doc_changed_saved"])
    if answer.status == 412:
        return await _document_page(
            request, seen, document_id, problem=seen.t["changed"], status_code=409
        )
    errors, message = _form_errors(answer, seen)
    values = {
        **form,
        "allowed_roles": sent.getlist("allowed_roles"),
        "rules": _rows_from_form(form),
    }
    return await _document_page(
        request,
        seen,
        document_id,
        values=values,
        errors=errors,
        problem=message,
        status_code=422,
    )


async def new_version(request: Request, document_id: str, seen: Clerk, form: Form) -> Response:
    sent = await request.form()
    upload = sent.get("file")
    if not (isinstance(upload, UploadFile) and upload.filename):
        errors = {"file": seen.t["field_required"]}
        return await _document_page(
            request,
            seen,
            document_id,
            version_form={"values": form, "errors": errors},
            status_code=422,
        )
    stored = await _upload(seen, upload)
    if not stored.ok:
        errors, message = refused(stored, seen)
        errors = {"file": errors.get("file") or message or ""}
        return await _document_page(
            request,
            seen,
            document_id,
            version_form={"values": form, "errors": errors},
            status_code=422,
        )
    answer = await seen.api.call(
        "records",
        "POST",
        f"/library/documents/{document_id}/versions",
        json={"file_id": stored.body["id"], "note": form.get("note", "").strip()},
        idempotency_key=form.get("idempotency_key"),
        if_match=form.get("etag"),
    )
    if answer.ok:
        saved = seen.t["version_saved"].format(n=answer.body["current_version"])
        return await _document_page(request, seen, document_id, saved=saved)
    if answer.status == 412:
        return await _document_page(
            request, seen, document_id, problem=seen.t["changed"], status_code=409
        )
    errors, message = refused(answer, seen)
    return await _document_page(
        request,
        seen,
        document_id,
        version_form={"values": form, "errors": errors},
        problem=message,
        status_code=422,
    )


async def content(request: Request, document_id: str, seen: Desk, version: str = "") -> Response:
    params = {"version": version} if version.isdigit() else None
    return await download(request, seen, f"/library/documents/{document_id}/content", params)
