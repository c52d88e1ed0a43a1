"""An OpenAI Batch API on a real socket: files (multipart upload, list, content) and batches (create,
retrieve, list, cancel), answering each request as `FaultServer` answers a chat call.

The chat endpoint of `FaultServer` stays available, and every batch line is played through the same
scripts (`next_action`, `completion`), so a synchronous run and a batch run against servers built
with the same scripts get the same answers. Faults to inject:

- `fates`: the final status of the next batches in order (`completed` once they run dry):
  `expired` answers the first half of the lines and reports the rest as `batch_expired`, `failed`
  answers nothing, `cancelled` is what `cancel` gives;
- a scripted HTTP error for a line becomes a line of the error file (a partial failure);
- `stray_line`: the first output file gets a line for a custom_id nobody sent;
- `duplicate_lines`: every output file repeats its first line;
- `hang_after`: `upload` or `create` is carried out, then the response hangs until `release()`,
  as when the client is killed mid-call;
- `polls_to_finish`: retrieves that still see the batch `in_progress`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fault_server import Action, FaultServer


class BatchServer(FaultServer):
    def __init__(self, scripts: dict[str, list[Action]] | None = None, *, fates: list[str] | None = None,
                 stray_line: bool = False, duplicate_lines: bool = False, hang_after: set[str] | None = None,
                 polls_to_finish: int = 1) -> None:
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.polls: dict[str, int] = {}
        self.fates = deque(fates or [])
        self.stray_line = stray_line
        self.duplicate_lines = duplicate_lines
        self.hang_after = set(hang_after or ())
        self.polls_to_finish = polls_to_finish
        self.released = threading.Event()
        self.calls: list[str] = []
        super().__init__(scripts)

    def release(self) -> None:
        self.released.set()

    def _hang(self, action: str) -> None:
        if action in self.hang_after:
            self.hang_after.discard(action)
            self.released.wait(timeout=30)

    # ------------------------------------------------------------------ files

    def upload(self, content_type: str, raw: bytes) -> dict[str, Any]:
        message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
        fields: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            fields[name] = (part.get_filename(), part.get_payload(decode=True))
        filename, content = fields["file"]
        purpose = fields["purpose"][1].decode()
        with self._lock:
            return self._store_file(filename, content, purpose)

    def _store_file(self, filename: str, content: bytes, purpose: str) -> dict[str, Any]:
        file_id = f"file-{len(self.files) + 1}"
        self.files[file_id] = {"id": file_id, "object": "file", "bytes": len(content), "created_at": 1_700_000_000,
                               "filename": filename, "purpose": purpose, "status": "processed", "content": content}
        return self.file_object(file_id)

    def file_object(self, file_id: str) -> dict[str, Any]:
        return {k: v for k, v in self.files[file_id].items() if k != "content"}

    # ------------------------------------------------------------------ batches

    def create(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            batch_id = f"batch_{len(self.batches) + 1}"
            lines = self.files[request["input_file_id"]]["content"].decode().splitlines()
            self.batches[batch_id] = {
                "id": batch_id, "object": "batch", "endpoint": request["endpoint"], "errors": None,
                "input_file_id": request["input_file_id"], "completion_window": request["completion_window"],
                "status": "validating", "output_file_id": None, "error_file_id": None, "created_at": 1_700_000_000,
                "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
                "metadata": request.get("metadata"),
            }
            self.polls[batch_id] = 0
            return dict(self.batches[batch_id])

    def retrieve(self, batch_id: str) -> dict[str, Any]:
        batch = self.batches[batch_id]
        if batch["status"] in ("validating", "in_progress"):
            self.polls[batch_id] += 1
            batch["status"] = "in_progress"
            if self.polls[batch_id] > self.polls_to_finish:
                self.run_batch(batch)
        return dict(batch)

    def cancel(self, batch_id: str) -> dict[str, Any]:
        batch = self.batches[batch_id]
        if batch["status"] in ("validating", "in_progress"):
            batch["status"] = "cancelled"
        return dict(batch)

    def run_batch(self, batch: dict[str, Any]) -> None:
        """Answer the batch's lines as its fate says, writing output and error files."""
        fate = self.fates.popleft() if self.fates else "completed"
        if fate == "failed":
            batch.update(status="failed", errors={"object": "list", "data": [
                {"code": "invalid_request", "message": "scripted failure", "line": None, "param": None}]})
            return
        lines = [json.loads(line) for line in self.files[batch["input_file_id"]]["content"].decode().splitlines()]
        answered = lines[: len(lines) // 2] if fate == "expired" else lines
        outputs, errors = [], []
        for number, line in enumerate(answered, start=1):
            raw = json.dumps(line["body"]).encode()
            action = self.next_action(line["body"])
            if action.status == 200:
                body, target = self.completion(line["body"], raw, action), outputs
            else:
                body, target = {"error": {"message": f"scripted {action.status}", "type": "scripted"}}, errors
            target.append({"id": f"batch_req_{number}", "custom_id": line["custom_id"], "error": None,
                           "response": {"status_code": action.status, "request_id": f"req_{number}", "body": body}})
        for line in lines[len(answered):]:
            errors.append({"id": "batch_req_expired", "custom_id": line["custom_id"], "response": None,
                           "error": {"code": "batch_expired", "message": "not answered within 24h"}})
        counts = {"total": len(lines), "completed": len(outputs), "failed": len(errors)}
        batch.update(status=fate, request_counts=counts)
        if self.stray_line and outputs:
            self.stray_line = False
            outputs.append({**outputs[0], "custom_id": "never-sent"})
        if self.duplicate_lines and outputs:
            outputs.insert(1, outputs[0])
        for kind, rows in (("output_file_id", outputs), ("error_file_id", errors)):
            if rows:
                text = "".join(json.dumps(row) + "\n" for row in rows).encode()
                with self._lock:
                    batch[kind] = self._store_file(f"{batch['id']}_{kind}.jsonl", text, "batch_output")["id"]

    # ------------------------------------------------------------------ HTTP

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        chat = super()._handler()
        server = self

        class Handler(chat):  # type: ignore[valid-type, misc]
            def do_POST(self) -> None:
                path = self.path.split("?")[0]
                if path.endswith("/chat/completions"):
                    super().do_POST()
                    return
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.calls.append(f"POST {path}")
                if path.endswith("/files"):
                    payload = server.upload(self.headers["Content-Type"], raw)
                    server._hang("upload")
                elif path.endswith("/batches"):
                    payload = server.create(json.loads(raw))
                    server._hang("create")
                elif path.endswith("/cancel"):
                    payload = server.cancel(path.split("/")[-2])
                else:
                    self.send_json(404, {"error": {"message": f"no route {path}"}}, {})
                    return
                self.send_json(200, payload, {})

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                server.calls.append(f"GET {path}")
                parts = path.rstrip("/").split("/")
                if path.endswith("/files"):
                    self.send_json(200, listing([server.file_object(i) for i in list(server.files)]), {})
                elif path.endswith("/content"):
                    self._raw(server.files[parts[-2]]["content"])
                elif path.endswith("/batches"):
                    self.send_json(200, listing([dict(b) for b in list(server.batches.values())]), {})
                elif parts[-2] == "batches":
                    self.send_json(200, server.retrieve(parts[-1]), {})
                else:
                    self.send_json(404, {"error": {"message": f"no route {path}"}}, {})

            def _raw(self, data: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


def listing(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "list", "data": items, "has_more": False,
            "first_id": items[0]["id"] if items else None, "last_id": items[-1]["id"] if items else None}


def wait_for(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
