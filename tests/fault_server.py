"""A scripted OpenAI-compatible chat-completions server on a real socket, for fault injection.

Each POST /v1/chat/completions is answered by the first script whose marker occurs in the
request's criteria message: its next action (an HTTP error, a hang, or some content) is played,
and once a script runs dry the default answer is given. The default answer names, for every
criterion line `[id] text`, the criterion's last word as a Condition, which is always grounded.
Answers use trialstruct's compact format (criterion id -> entities). Every request and the usage
of every completion served are recorded for the tests to check.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.loopback import JSONHandler, LoopbackServer

CRITERION_LINE = re.compile(r"^\[(\S+)\] (.+)$", re.MULTILINE)


@dataclass(frozen=True)
class Action:
    status: int = 200
    content: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    hang: float = 0.0
    trickle: float = 0.0  # seconds between the bytes of the answer (a server that never times out a read)
    finish_reason: str = "stop"
    echo_headers: bool = False  # a careless server that quotes the request headers in its error or answer


def error(status: int, echo_headers: bool = False, **headers: str) -> Action:
    return Action(status=status, headers=headers, echo_headers=echo_headers)


def hang(seconds: float) -> Action:
    return Action(hang=seconds)


def content(text: str) -> Action:
    return Action(content=text)


def truncated(text: str) -> Action:
    """Content cut off as if the model hit max_tokens."""
    return Action(content=text, finish_reason="length")


def trickled(seconds_per_byte: float) -> Action:
    return Action(trickle=seconds_per_byte)


def answer(*entities: dict[str, Any], criterion: str = "inc-1") -> Action:
    return Action(content=json.dumps({criterion: list(entities)}))


def criteria_message(request: dict[str, Any]) -> str:
    """The last user message holding criterion lines (re-ask messages hold none)."""
    users = [m["content"] for m in request.get("messages", []) if m.get("role") == "user"]
    return next((text for text in reversed(users) if CRITERION_LINE.search(text)), "")


def default_answer(request: dict[str, Any]) -> str:
    criteria = CRITERION_LINE.findall(criteria_message(request))
    return json.dumps({cid: [{"t": re.findall(r"\w+", text)[-1], "y": "Condition"}] for cid, text in criteria})


class FaultServer(LoopbackServer):
    def __init__(
        self, scripts: dict[str, list[Action]] | None = None, json_schema_format: bool = True, refuse_together: int = 0
    ) -> None:
        self.json_schema_format = json_schema_format  # False: refuse it as llama-cpp-python's server does
        # refuse_together=N: hold the first N json_schema requests until all have arrived, then refuse them
        # 0.2 s apart, so a client with N requests in flight sees refusals after it has switched formats
        self._refusals = threading.Barrier(refuse_together) if refuse_together else None
        self._refused = 0
        self.scripts = {marker: deque(actions) for marker, actions in (scripts or {}).items()}
        self.served: list[dict[str, int]] = []
        super().__init__()

    def requests_for(self, marker: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if marker in criteria_message(r["body"])]

    def next_action(self, request: dict[str, Any]) -> Action:
        text = criteria_message(request)
        if not self.json_schema_format and request.get("response_format", {}).get("type") == "json_schema":
            self._hold_refusal()
            return Action(status=500, content="response_format.type: Input should be 'text' or 'json_object'")
        with self._lock:
            for marker, actions in self.scripts.items():
                if marker in text and actions:
                    return actions.popleft()
        return Action(content=default_answer(request))

    def _hold_refusal(self) -> None:
        if self._refusals is None:
            return
        with self._lock:
            order, self._refused = self._refused, self._refused + 1
        if order < self._refusals.parties:
            with contextlib.suppress(threading.BrokenBarrierError):  # fewer arrived: refuse them anyway
                self._refusals.wait(timeout=10)
            time.sleep(0.2 * order)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(JSONHandler):
            def do_POST(self) -> None:
                raw, body = self.read_json()
                headers = {name.lower(): value for name, value in self.headers.items()}
                with server._lock:
                    server.requests.append({"time": time.monotonic(), "body": body, "headers": headers})
                action = server.next_action(body)
                if action.hang:
                    time.sleep(action.hang)
                    self.close_connection = True
                    return
                echoed = f" for {dict(self.headers)}" if action.echo_headers else ""
                if action.status != 200:
                    message = (action.content or f"scripted {action.status}") + echoed
                    payload = {"error": {"message": message, "type": "scripted", "code": None}}
                    self.send_json(action.status, payload, action.headers)
                    return
                if echoed:  # the echo inside the answer itself: a dropped entity's text quotes the key
                    quoted = f"sent with {self.headers.get('Authorization')}"
                    action = Action(content=json.dumps({"inc-1": [{"t": quoted, "y": "Condition"}]}))
                self.send_json(200, server.completion(body, raw, action), {}, action.trickle)

        return Handler

    def completion(self, body: dict[str, Any], raw: bytes, action: Action) -> dict[str, Any]:
        text = action.content if action.content is not None else default_answer(body)
        usage = {"prompt_tokens": len(raw) // 4, "completion_tokens": len(text) // 4 + 1}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        with self._lock:
            self.served.append(usage)
            number = len(self.served)
        return {
            "id": f"chatcmpl-{number}",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": body.get("model", "scripted"),
            "system_fingerprint": "fault-server",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": action.finish_reason}
            ],
            "usage": usage,
        }
