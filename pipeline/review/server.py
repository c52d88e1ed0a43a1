"""`trialstruct review --serve`: the review page with editing, saving reviewed records as gold.

Standard library only (ThreadingHTTPServer). Writes are guarded several ways: the server binds to
loopback unless told otherwise and then also checks the Host header (DNS rebinding); a POST needs
the per-server token embedded in the page (a custom header, so other sites cannot forge it); a doc
id that is not a plain file name or resolves outside the gold directory is refused; the body must be
a valid `TrialRecord` of the same document and source text. Each gold file is written atomically
(temp file + `os.replace`) under a per-file lock, and the version it replaces is kept in
`<gold dir>/.history/`.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import threading
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import ValidationError

from pipeline.errors import ReviewError
from pipeline.files import atomic_write
from pipeline.review.page import doc_bundle, doc_summary, page_payload, render_page
from pipeline.schema import TrialRecord

SAFE_DOC_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")
MAX_BODY = 50_000_000
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


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
        """Where the gold of `doc_id` lives; refuses ids that are not plain names inside the gold dir."""
        path = (self.gold_dir / f"{doc_id}.json").resolve()
        if not SAFE_DOC_ID.fullmatch(doc_id) or path.parent != self.gold_dir:
            message = f"refused: doc id {doc_id!r} is not a file name inside the gold directory"
            raise Refused(HTTPStatus.FORBIDDEN, message)
        return path

    def record(self, doc_id: str) -> TrialRecord:
        self.gold_path(doc_id)
        if doc_id not in self.records:
            raise Refused(HTTPStatus.NOT_FOUND, f"no document {doc_id!r} in this run")
        return self.records[doc_id]

    def gold(self, doc_id: str) -> TrialRecord | None:
        path = self.gold_path(doc_id)
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
        return doc_bundle(record, self.gold(doc_id), other)

    def summary(self, doc_id: str, bundle: dict[str, Any] | None = None) -> dict[str, Any]:
        return doc_summary(self.records[doc_id], bundle or self.bundle(doc_id))

    def page(self, token: str) -> str:
        docs = [self.summary(doc_id) for doc_id in self.records]
        title = f"trialstruct review --serve ({len(docs)} documents, gold: {self.gold_dir})"
        payload = page_payload(docs, {}, title=title, editable=True, api=True, token=token, has_gold=True)
        return render_page(payload)

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
        previous = self._write(path, record.model_dump_json(indent=1, exclude_none=False) + "\n")
        bundle = self.bundle(doc_id)
        return {
            "path": str(path),
            "previous": str(previous) if previous else None,
            "bundle": bundle,
            "summary": self.summary(doc_id, bundle),
        }

    def _write(self, path: Path, text: str) -> Path | None:
        with self._lock(path):
            previous = None
            if path.exists():
                history = self.gold_dir / ".history"
                history.mkdir(exist_ok=True)
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
                previous = history / f"{path.stem}.{stamp}.json"
                shutil.copy2(path, previous)
            atomic_write(path, text)
            return previous


class ReviewHandler(BaseHTTPRequestHandler):
    """Routes: GET /, GET /api/doc/<id>, GET /api/gold/<id>, POST /api/gold/<id>."""

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

    def do_GET(self) -> None:
        self._handle(self._get)

    def do_POST(self) -> None:
        self._handle(self._post)

    def _get(self) -> None:
        store = self.server.store
        path = urlsplit(self.path).path
        if path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, store.page(self.server.token).encode("utf-8"), "text/html; charset=utf-8")
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
        doc_id = self._doc_id("/api/gold/")
        if doc_id is None:
            raise Refused(HTTPStatus.NOT_FOUND, "POST only to /api/gold/<doc_id>")
        self.server.store.gold_path(doc_id)
        if not secrets.compare_digest(self.headers.get("X-Review-Token", ""), self.server.token):
            raise Refused(HTTPStatus.FORBIDDEN, "refused: missing or wrong X-Review-Token")
        if self.headers.get_content_type() != "application/json":
            raise Refused(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "body must be application/json")
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_BODY:
            raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body length {length} is not in 1..{MAX_BODY}")
        self._json(HTTPStatus.OK, self.server.store.save(doc_id, self.rfile.read(length)))


class ReviewHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

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
        host, port = self.server_address[:2]
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
