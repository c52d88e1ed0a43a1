"""`trialstruct review --serve`: the review page with editing, saving reviewed records as gold.

Standard library only (ThreadingHTTPServer). Writes are guarded several ways: the server binds to
loopback unless told otherwise and then also checks the Host header (DNS rebinding); a POST needs
the per-server token embedded in the page (a custom header, so other sites cannot forge it); only
documents of the run can be saved, each to a file name derived from its id that cannot leave the
gold directory (`gold_file_name`); the body must be a valid `TrialRecord` of the same document and
source text. Each gold file is written atomically (temp file + `os.replace`) under a per-file lock,
the version it replaces is kept in `<gold dir>/.history/`, and the gold's annotation notes gain a
line naming the reviewer and date instead of being replaced. Reviewer comments are not gold: they
live in `<gold dir>/.comments/`. Every request gets an answer: bad input a 4xx with the reason, an
unexpected failure a 500, and the listen backlog holds a burst of concurrent saves.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import shutil
import threading
import traceback
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from pydantic import ValidationError

from pipeline.errors import ReviewError
from pipeline.files import atomic_write
from pipeline.review.overview import problem_rows, problems_csv
from pipeline.review.page import doc_bundle, doc_summary, page_payload, render_page
from pipeline.schema import Annotation, TrialRecord

SAFE_DOC_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")
MAX_BODY = 50_000_000
MAX_COMMENT = 20_000
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
REVIEW_METHOD = "trialstruct review --serve: record checked and corrected against the source"


def gold_file_name(doc_id: str) -> str:
    """`<doc_id>.json` for a plain id; any other id percent-encoded (no `/`, no leading dot, no NUL) and,
    when long, cut and suffixed with a hash. Encoded names hold `%` or `~`, so they never collide with
    a plain id's file."""
    if SAFE_DOC_ID.fullmatch(doc_id):
        return f"{doc_id}.json"
    encoded = quote(doc_id, safe="")
    encoded = "%2E" + encoded[1:] if encoded.startswith(".") else encoded
    if len(encoded) > 200 or not encoded:
        encoded = encoded[:150] + "~" + hashlib.sha256(doc_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{encoded}.json"


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def merged_annotation(previous: Annotation | None, review: Annotation | None) -> Annotation:
    """The gold's annotation after a review: the earlier one kept, a line naming reviewer and date appended."""
    reviewer = (review.checked_by if review else "").strip() or "reviewer"
    summary = f": {review.notes}" if review and review.notes else ""
    line = f"{today()} reviewed by {reviewer} in trialstruct review --serve{summary}"
    if previous is None:
        return Annotation(method=REVIEW_METHOD, checked_by=reviewer, date=today(), notes=line)
    notes = f"{previous.notes}\n{line}" if previous.notes else line
    return previous.model_copy(update={"notes": notes})


class Refused(Exception):
    """A request the server will not honour, with the HTTP status to answer."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


class GoldStore:
    """The run being reviewed and the gold directory it is saved into."""

    def __init__(self, records: list[TrialRecord], gold_dir: Path, other: list[TrialRecord] | None = None) -> None:
        self.records = {r.doc_id: r for r in records}
        self.others = {r.doc_id: r for r in other} if other is not None else None
        gold_dir.mkdir(parents=True, exist_ok=True)
        self.gold_dir = gold_dir.resolve()
        self._locks: dict[Path, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def gold_path(self, doc_id: str) -> Path:
        """Where the gold of `doc_id` lives: always a direct child of the gold directory."""
        path = self.gold_dir / gold_file_name(doc_id)
        if path.parent != self.gold_dir or path.is_symlink():
            raise Refused(HTTPStatus.FORBIDDEN, f"refused: {path.name!r} is not a plain file inside the gold directory")
        return path

    def comment_path(self, doc_id: str) -> Path:
        return self.gold_dir / ".comments" / gold_file_name(doc_id)

    def record(self, doc_id: str) -> TrialRecord:
        if doc_id not in self.records:
            raise Refused(HTTPStatus.NOT_FOUND, f"no document {doc_id!r} in this run")
        return self.records[doc_id]

    def gold(self, doc_id: str) -> TrialRecord | None:
        path = self.gold_path(self.record(doc_id).doc_id)
        if not path.exists():
            return None
        try:
            return TrialRecord.model_validate_json(path.read_bytes())
        except ValidationError as exc:
            message = f"{path}: not a valid TrialRecord ({exc.error_count()} errors)"
            raise Refused(HTTPStatus.CONFLICT, message) from None

    def bundle(self, doc_id: str) -> dict[str, Any]:
        record = self.record(doc_id)
        other = self.others.get(doc_id) if self.others is not None else None
        return doc_bundle(record, self.gold(doc_id), other, self.comment(doc_id))

    def summary(self, doc_id: str, bundle: dict[str, Any] | None = None) -> dict[str, Any]:
        return doc_summary(self.records[doc_id], bundle or self.bundle(doc_id))

    def bundles(self) -> dict[str, dict[str, Any]]:
        return {doc_id: self.bundle(doc_id) for doc_id in self.records}

    def page(self, token: str) -> str:
        bundles = self.bundles()
        docs = [self.summary(doc_id, bundle) for doc_id, bundle in bundles.items()]
        title = f"trialstruct review --serve ({len(docs)} documents, gold: {self.gold_dir})"
        extra = {"editable": True, "api": True, "token": token, "has_gold": True, "problems_csv": "/problems.csv"}
        payload = page_payload(docs, {}, title=title, problems=problem_rows(bundles), **extra)
        return render_page(payload)

    def problems_csv(self) -> str:
        bundles = self.bundles()
        return problems_csv([self.summary(doc_id, bundle) for doc_id, bundle in bundles.items()], bundles)

    def comment(self, doc_id: str) -> dict[str, Any] | None:
        path = self.comment_path(doc_id)
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            raise Refused(HTTPStatus.CONFLICT, f"{path}: not valid JSON") from None

    def save_comment(self, doc_id: str, body: bytes) -> dict[str, Any]:
        """Store the reviewer's comment on a document beside the gold (never inside it); empty text removes it."""
        self.record(doc_id)
        try:
            data = json.loads(body)
            text, reviewer = str(data.get("text", "")).strip(), str(data.get("reviewer", "")).strip()
        except (ValueError, AttributeError):
            raise Refused(HTTPStatus.BAD_REQUEST, 'body must be JSON {"text": ..., "reviewer": ...}') from None
        if len(text) > MAX_COMMENT:
            raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"comment longer than {MAX_COMMENT} characters")
        path = self.comment_path(doc_id)
        with self._lock(path):
            if not text:
                path.unlink(missing_ok=True)
                return {"comment": None}
            comment = {"doc_id": doc_id, "text": text, "reviewer": reviewer or "reviewer", "date": today()}
            path.parent.mkdir(exist_ok=True)
            atomic_write(path, json.dumps(comment, ensure_ascii=False, indent=1) + "\n")
        return {"comment": comment}

    def _lock(self, path: Path) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(path, threading.Lock())

    def save(self, doc_id: str, body: bytes) -> dict[str, Any]:
        """Validate and write one gold record; returns where it went and the refreshed document bundle."""
        run_record = self.record(doc_id)
        try:
            record = TrialRecord.model_validate_json(body)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise Refused(HTTPStatus.UNPROCESSABLE_ENTITY, f"not a valid TrialRecord: {where}: {err['msg']}") from None
        if record.doc_id != doc_id:
            raise Refused(HTTPStatus.BAD_REQUEST, f"body is for {record.doc_id!r}, not {doc_id!r}")
        if record.source_text != run_record.source_text:
            raise Refused(HTTPStatus.BAD_REQUEST, f"source_text differs from the run's text of {doc_id!r}")
        path = self.gold_path(doc_id)
        previous = self._write(path, record)
        bundle = self.bundle(doc_id)
        return {
            "path": str(path),
            "previous": str(previous) if previous else None,
            "bundle": bundle,
            "summary": self.summary(doc_id, bundle),
        }

    def _write(self, path: Path, record: TrialRecord) -> Path | None:
        """Write `record` as the gold at `path`, its annotation merged with the one it replaces."""
        with self._lock(path):
            previous = None
            earlier = self.gold(record.doc_id)
            if path.exists():
                history = self.gold_dir / ".history"
                history.mkdir(exist_ok=True)
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
                previous = history / f"{path.stem}.{stamp}.json"
                shutil.copy2(path, previous)
            annotation = merged_annotation(earlier.annotation if earlier else None, record.annotation)
            record = record.model_copy(update={"annotation": annotation})
            atomic_write(path, record.model_dump_json(indent=1, exclude_none=False) + "\n")
            return previous


class ReviewHandler(BaseHTTPRequestHandler):
    """Routes: GET /, GET /problems.csv, GET /api/doc/<id>, GET /api/gold/<id>, POST /api/gold/<id>,
    POST /api/comment/<id>."""

    server: ReviewHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: HTTPStatus, data: Any) -> None:
        self._send(status, json.dumps(data, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8")

    def _doc_id(self, prefix: str) -> str | None:
        path = urlsplit(self.path).path
        return unquote(path[len(prefix) :]) if path.startswith(prefix) else None

    def _check_host(self) -> None:
        if self.server.allowed_hosts and self.headers.get("Host", "") not in self.server.allowed_hosts:
            raise Refused(HTTPStatus.FORBIDDEN, "refused: unexpected Host header")

    def _handle(self, action: Any) -> None:
        try:
            self._check_host()
            action()
        except Refused as exc:
            self._json(exc.status, {"error": str(exc)})
        except ReviewError as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
        except Exception as exc:  # an answer for the client, the traceback for the operator
            traceback.print_exc()
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"internal error: {type(exc).__name__}: {exc}"})

    def do_GET(self) -> None:
        self._handle(self._get)

    def do_POST(self) -> None:
        self._handle(self._post)

    def _get(self) -> None:
        store = self.server.store
        path = urlsplit(self.path).path
        if path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, store.page(self.server.token).encode("utf-8"), "text/html; charset=utf-8")
        elif path == "/problems.csv":
            self._send(HTTPStatus.OK, store.problems_csv().encode("utf-8"), "text/csv; charset=utf-8")
        elif (doc_id := self._doc_id("/api/doc/")) is not None:
            self._json(HTTPStatus.OK, store.bundle(doc_id))
        elif (doc_id := self._doc_id("/api/gold/")) is not None:
            gold = store.gold(doc_id)
            if gold is None:
                raise Refused(HTTPStatus.NOT_FOUND, f"no gold record for {doc_id!r}")
            self._json(HTTPStatus.OK, gold.model_dump(mode="json"))
        else:
            raise Refused(HTTPStatus.NOT_FOUND, f"no such page: {path}")

    def _post(self) -> None:
        store = self.server.store
        gold_id, comment_id = self._doc_id("/api/gold/"), self._doc_id("/api/comment/")
        if gold_id is None and comment_id is None:
            raise Refused(HTTPStatus.NOT_FOUND, "POST only to /api/gold/<doc_id> or /api/comment/<doc_id>")
        store.record(gold_id if gold_id is not None else comment_id or "")
        if not secrets.compare_digest(self.headers.get("X-Review-Token", ""), self.server.token):
            raise Refused(HTTPStatus.FORBIDDEN, "refused: missing or wrong X-Review-Token")
        if self.headers.get_content_type() != "application/json":
            raise Refused(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "body must be application/json")
        body = self.rfile.read(self._content_length())
        if gold_id is not None:
            self._json(HTTPStatus.OK, store.save(gold_id, body))
        else:
            self._json(HTTPStatus.OK, store.save_comment(comment_id or "", body))

    def _content_length(self) -> int:
        """The declared body length; a missing, non-numeric or out-of-range value is refused with the reason."""
        declared = self.headers.get("Content-Length")
        if declared is None:
            raise Refused(HTTPStatus.LENGTH_REQUIRED, "a POST needs a Content-Length header")
        if not declared.strip().isdigit():
            raise Refused(HTTPStatus.BAD_REQUEST, f"Content-Length {declared[:40]!r} is not a number")
        length = int(declared)
        if not 0 < length <= MAX_BODY:
            raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body length {length} is not in 1..{MAX_BODY}")
        return length


class ReviewHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the listen backlog; socketserver's default of 5 reset bursts of saves

    def __init__(self, store: GoldStore, host: str = "127.0.0.1", port: int = 0, verbose: bool = False) -> None:
        super().__init__((host, port), ReviewHandler)
        self.store = store
        self.verbose = verbose
        self.token = secrets.token_urlsafe(24)
        bound = self.server_address[1]
        names = {"localhost", "127.0.0.1", "[::1]"}
        self.allowed_hosts = {f"{n}:{bound}" for n in names} if host in LOOPBACK else set()

    @property
    def url(self) -> str:
        host, port = str(self.server_address[0]), self.server_address[1]
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
