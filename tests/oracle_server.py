"""A perfect model on a real socket: an OpenAI-wire server that answers every request with the gold.

It serves POST /v1/chat/completions. For a trialstruct request it reads the criterion lines
`[id] text` of the last user message that has them, finds each criterion's text in a gold
document and answers with the gold entities inside it, in reading order, in the answer format the
request asks for (trialstruct's compact answer; `response_format` json_schema, json_object with
or without a schema, or instructor's `tools`). For a LangExtract request (its prompt ends with the
chunk to read after the last "Q: "), it answers the gold entities of that chunk in LangExtract's
`{"extractions": [...]}` format. Like a real endpoint it counts prompt tokens (messages plus the
response schema or tools) and completion tokens, and cuts an answer at `max_tokens` with
`finish_reason: "length"`. Every request and answer is recorded.

Tokens are o200k_base when the `bpe-openai` package (the `bench` extra) is installed, else a
word-and-punctuation count (`TOKENIZER` names the one in use).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from pipeline.extract.llm.answer import answer_keys
from pipeline.ground import format_temporal, format_value
from pipeline.schema import Entity, TrialRecord
from tests.loopback import JSONHandler, LoopbackServer

CRITERION_LINE = re.compile(r"^\[(\S+)\] (.+)$", re.MULTILINE)
_PIECE = re.compile(r"\w+|[^\w\s]")


def _load_tokenizer() -> tuple[str, Callable[[str], list[Any]], Callable[[list[Any]], str]]:
    try:
        import bpe_openai
    except ImportError:
        return "words+punctuation (approximate; pip install '.[bench]' for o200k_base)", _PIECE.findall, "".join
    encoding = bpe_openai.get_encoding("o200k_base")
    return "o200k_base (bpe-openai)", encoding.encode, encoding.decode


TOKENIZER, _encode, _decode = _load_tokenizer()


def count_tokens(text: str) -> int:
    return len(_encode(text))


def cut_tokens(text: str, limit: int) -> str:
    return _decode(_encode(text)[:limit])


def prompt_tokens(body: dict[str, Any]) -> int:
    """OpenAI's count: each message's content plus 4 framing tokens, 3 for the reply, and the schema/tools."""
    total = 3 + sum(4 + count_tokens(m.get("content") or "") for m in body.get("messages", []))
    for extra in ("response_format", "tools"):
        if body.get(extra):
            total += count_tokens(json.dumps(body[extra], separators=(",", ":")))
    return total


def _squeeze(text: str) -> tuple[str, list[int]]:
    """`text` with whitespace runs as one space, and each kept character's offset in `text`."""
    out: list[str] = []
    offsets: list[int] = []
    for i, ch in enumerate(text):
        if ch.isspace():
            if out and out[-1] == " ":
                continue
            ch = " "
        out.append(ch)
        offsets.append(i)
    return "".join(out), offsets


@dataclass
class GoldDoc:
    record: TrialRecord
    squeezed: str = ""
    offsets: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.squeezed, self.offsets = _squeeze(self.record.source_text)

    def region(self, text: str, squeezed: bool) -> tuple[int, int] | None:
        """Source offsets of `text` (whitespace-squeezed or raw) in this document, first occurrence."""
        if not squeezed:
            at = self.record.source_text.find(text)
            return None if at < 0 else (at, at + len(text))
        at = self.squeezed.find(text)
        if at < 0:
            return None
        return self.offsets[at], self.offsets[at + len(text) - 1] + 1

    def entities_in(self, start: int, end: int) -> list[Entity]:
        inside = [e for e in self.record.entities() if start <= e.start and e.end <= end]
        return sorted(inside, key=lambda e: (e.start, e.end))


class Gold:
    """Gold entities by the text they sit in."""

    def __init__(self, records: Iterable[TrialRecord]) -> None:
        self.docs = [GoldDoc(r) for r in records]

    def entities_for(self, text: str, squeezed: bool = True) -> tuple[GoldDoc, list[Entity], int] | None:
        for doc in self.docs:
            region = doc.region(text, squeezed)
            if region is not None:
                return doc, doc.entities_in(*region), region[0]
        return None


def _squeezed(text: str) -> str:
    return " ".join(text.split())


def trialstruct_answer(gold: Gold, criteria_text: str) -> str:
    """The gold entities of every criterion line, in trialstruct's compact answer format."""
    keys = answer_keys()
    answer: dict[str, list[dict[str, Any]]] = {}
    for cid, text in CRITERION_LINE.findall(criteria_text):
        found = gold.entities_for(text.strip())
        entities = found[1] if found else []
        answer[cid] = [_trialstruct_entity(e, keys) for e in entities]
    return json.dumps(answer, ensure_ascii=False, separators=(",", ":"))


def _trialstruct_entity(entity: Entity, keys: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {keys["text"]: _squeezed(entity.text), keys["type"]: str(entity.type)}
    if entity.negated:
        out[keys["negated"]] = True
    if entity.value is not None:
        out[keys["value"]] = _squeezed(entity.value.text)
        norm = format_value(entity.value)
        if norm is not None:
            out[keys["value_norm"]] = norm
    if entity.temporal is not None:
        out[keys["time"]] = _squeezed(entity.temporal.text)
        norm = format_temporal(entity.temporal)
        if norm is not None:
            out[keys["time_norm"]] = norm
    return out


LANGEXTRACT_QUESTION = re.compile(r"(?:^|\n)Q: (.*)\nA: ?$", re.DOTALL)


def langextract_answer(gold: Gold, prompt: str) -> str:
    """The gold entities of the chunk a LangExtract prompt asks about (after its last "Q: "), in its format."""
    match = LANGEXTRACT_QUESTION.search(prompt[prompt.rfind("Q: ") - 1 :])
    found = gold.entities_for(match.group(1), squeezed=False) if match else None
    extractions = [langextract_extraction(e) for e in (found[1] if found else [])]
    return json.dumps({"extractions": extractions}, ensure_ascii=False, indent=2)  # as its examples are written


def langextract_extraction(entity: Entity) -> dict[str, Any]:
    """One entity as LangExtract writes it: the class as key, attributes beside it."""
    name = str(entity.type).lower()
    attributes: dict[str, Any] = {}
    if entity.negated:
        attributes["negated"] = "true"
    if entity.value is not None:
        attributes["value"] = entity.value.text
        attributes["value_norm"] = format_value(entity.value) or ""
    if entity.temporal is not None:
        attributes["time"] = entity.temporal.text
        attributes["time_norm"] = format_temporal(entity.temporal) or ""
    return {name: entity.text, f"{name}_attributes": attributes}


def criteria_message(body: dict[str, Any]) -> str:
    users = [m.get("content") or "" for m in body.get("messages", []) if m.get("role") == "user"]
    return next((text for text in reversed(users) if CRITERION_LINE.search(text)), "")


class OracleServer(LoopbackServer):
    """Serve the gold as a perfect model would; `requests` and `answers` record the traffic."""

    def __init__(self, records: Iterable[TrialRecord]) -> None:
        self.gold = Gold(records)
        self.usage: list[dict[str, int]] = []
        super().__init__()

    def content_for(self, body: dict[str, Any]) -> str:
        criteria = criteria_message(body)
        if criteria:
            return trialstruct_answer(self.gold, criteria)
        prompt = (body.get("messages") or [{}])[-1].get("content") or ""
        return langextract_answer(self.gold, prompt)

    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        text = self.content_for(body)
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        finish = "stop"
        if limit is not None and count_tokens(text) > limit:
            text, finish = cut_tokens(text, limit), "length"
        usage = {"prompt_tokens": prompt_tokens(body), "completion_tokens": count_tokens(text)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        with self._lock:
            self.requests.append(body)
            self.usage.append(usage)
            number = len(self.usage)
        return {
            "id": f"chatcmpl-oracle-{number}", "object": "chat.completion", "created": 1_700_000_000,
            "model": body.get("model", "oracle"), "system_fingerprint": "oracle",
            "choices": [{"index": 0, "message": _message(body, text), "finish_reason": finish}],
            "usage": usage,
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(JSONHandler):
            def do_POST(self) -> None:
                self.send_json(200, server.completion(self.read_json()[1]))

        return Handler


def _message(body: dict[str, Any], text: str) -> dict[str, Any]:
    """Plain content, or a tool call when the request asked through `tools` (instructor's TOOLS mode)."""
    tools = body.get("tools")
    if not tools:
        return {"role": "assistant", "content": text}
    name = tools[0]["function"]["name"]
    call = {"id": "call_oracle", "type": "function", "function": {"name": name, "arguments": text}}
    return {"role": "assistant", "content": None, "tool_calls": [call]}
