"""What the LLM backends share: prompt, response model, batching, grounding re-asks, cache, usage.

Flow for one document: the criteria (already segmented, with ids) are packed into batches under
`config.batch_token_budget`; each batch is one rendered message list and one cached unit. A call
goes through instructor, whose validator grounds every entity in its criterion (`pipeline.ground`)
and, on failure, re-asks the model with the error. Entities still ungrounded after the last
attempt are dropped with a warning naming them. Transport retries live in the backend's
`complete` (see openai_compat), apart from these validation re-asks.

The grounding context reaches the validator through a context variable, not instructor's
`context=`: instructor renders every message as a Jinja template when a context is given, which
would rewrite criteria text containing `{{` or `{#`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from pipeline import __version__
from pipeline.config import RunConfig
from pipeline.errors import BackendError, ExtractError
from pipeline.extract import Extraction, Usage
from pipeline.ground import Match, locate, number_occurs
from pipeline.schema import (
    Comparator,
    Criterion,
    Direction,
    Entity,
    EntityType,
    Provenance,
    Temporal,
    TrialRecord,
    Value,
)

# instructor logs every failed attempt at ERROR; the outcome reaches the user as record warnings or
# errors.jsonl, so its messages go only where the application configured logging.
logging.getLogger("instructor").addHandler(logging.NullHandler())

CODE_VERSION = f"{__version__}+llm1"
INSTRUCTOR_MODE = "json_schema"
CHARS_PER_TOKEN = 4
MAX_ENTITIES_PER_CRITERION = 6
MAX_TEXT = 300
ANSWER_TOKENS_PER_CRITERION = MAX_ENTITIES_PER_CRITERION * 40


class ExtractionError(ExtractError):
    """A document could not be extracted; `usage` still holds what the attempts cost."""

    def __init__(self, message: str, usage: Usage | None = None) -> None:
        super().__init__(message)
        self.usage = usage or Usage()


class TokenBudgetExceeded(ExtractionError):
    """The per-document token budget ran out (re-asks cannot run away)."""


class CutOff(Exception):
    """An answer was cut off at max_tokens; `partial` holds its complete entities."""

    def __init__(self, partial: Answer) -> None:
        super().__init__("answer cut off at max_tokens")
        self.partial = partial


# ---------------------------------------------------------------- response model


class _Out(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ValueOut(_Out):
    comparator: Comparator | None = None
    low: float | None = None
    high: float | None = None
    unit: str | None = None
    text: str = Field(max_length=MAX_TEXT)


class TemporalOut(_Out):
    text: str = Field(max_length=MAX_TEXT)
    direction: Direction | None = None
    anchor: str | None = None
    min_days: float | None = None
    max_days: float | None = None


class EntityOut(_Out):
    criterion: str
    text: str = Field(max_length=MAX_TEXT)
    type: EntityType
    negated: bool = False
    value: ValueOut | None = None
    temporal: TemporalOut | None = None


@dataclass(frozen=True)
class CriterionItem:
    """The part of a criterion sent to the model: its own text, without its sub-items."""

    id: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class GroundingContext:
    source: str
    items: dict[str, CriterionItem]


_GROUNDING: ContextVar[GroundingContext | None] = ContextVar("grounding", default=None)


class Answer(_Out):
    """The model's answer for one batch; validated against the source when grounding is active."""

    entities: list[EntityOut]

    @model_validator(mode="after")
    def _grounded(self) -> Answer:
        context = _GROUNDING.get()
        if context is None:
            return self
        errors = list(dict.fromkeys(err for e in self.entities if (err := ground_entity(context, e)[1])))
        if errors:
            raise ValueError("; ".join(errors) + ". Copy entity, value and time text verbatim from its criterion.")
        return self


@lru_cache(maxsize=256)
def answer_model(ids: tuple[str, ...]) -> type[Answer]:
    """The answer schema for one batch: criterion ids limited to the batch's, entity count bounded.

    With schema-constrained decoding this stops a small model from inventing ids or looping forever.
    """
    entity = create_model("EntityOut", __base__=EntityOut, criterion=(Literal[ids], ...))
    limit = MAX_ENTITIES_PER_CRITERION * len(ids)
    return create_model("Answer", __base__=Answer, entities=(list[entity], Field(max_length=limit)))


@contextmanager
def grounding(context: GroundingContext) -> Iterator[None]:
    token = _GROUNDING.set(context)
    try:
        yield
    finally:
        _GROUNDING.reset(token)


# ---------------------------------------------------------------- grounding


def ground_entity(context: GroundingContext, out: EntityOut) -> tuple[dict[str, Any] | None, str | None]:
    """Offsets for one model entity, or an error naming it (the error is what a re-ask sends back).

    A value with neither comparator nor bound carries no quantity and is ignored, not an error.
    Text found verbatim in another criterion of the batch moves the entity there (a wrong id is
    the model's slip; the words are real).
    """
    name = f"entity {out.text!r} (criterion {out.criterion})"
    item = context.items.get(out.criterion)
    if item is None:
        return None, f"{name}: unknown criterion id; use one of {', '.join(context.items)}"
    match = locate(context.source, item.start, item.end, out.text)
    if match is None or match.alignment == "fuzzy":
        elsewhere = _exactly_elsewhere(context, out.text, item)
        if elsewhere is not None:
            item, match = elsewhere
    if match is None:
        return None, f"{name}: text not found in the criterion"
    fields: dict[str, Any] = {
        "criterion": item.id, "type": out.type, "text": match.text, "start": match.start, "end": match.end,
        "negated": out.negated, "alignment": match.alignment,
    }
    if out.value is not None and (out.value.comparator, out.value.low, out.value.high) != (None, None, None):
        bad = [n for n in (out.value.low, out.value.high) if n is not None and not number_occurs(n, item.text)]
        if bad:
            return None, f"{name}: value number {bad[0]:g} does not occur in the criterion"
        span = locate(context.source, item.start, item.end, out.value.text, near=match.start)
        if span is None:
            return None, f"{name}: value text {out.value.text!r} not found in the criterion"
        fields["value"] = Value(**out.value.model_dump(exclude={"text"}), **_offsets(span))
    if out.temporal is not None:
        span = locate(context.source, item.start, item.end, out.temporal.text, near=match.start)
        if span is None:
            return None, f"{name}: temporal text {out.temporal.text!r} not found in the criterion"
        fields["temporal"] = Temporal(**out.temporal.model_dump(exclude={"text"}), **_offsets(span))
    return fields, None


def _exactly_elsewhere(context: GroundingContext, text: str, item: CriterionItem) -> tuple[CriterionItem, Match] | None:
    for other in context.items.values():
        if other is not item:
            match = locate(context.source, other.start, other.end, text, threshold=None)
            if match is not None:
                return other, match
    return None


def _offsets(match: Match) -> dict[str, Any]:
    return {"text": match.text, "start": match.start, "end": match.end}


# ---------------------------------------------------------------- prompt


@dataclass(frozen=True)
class Prompt:
    version: str
    system: str
    examples: tuple[tuple[str, str], ...]

    @property
    def hash(self) -> str:
        """SHA-256 of the rendered template (everything but the document's criteria)."""
        template = json.dumps([self.system, self.examples], ensure_ascii=False)
        return hashlib.sha256(template.encode("utf-8")).hexdigest()

    def messages(self, items: list[CriterionItem]) -> list[dict[str, str]]:
        messages = [{"role": "system", "content": self.system}]
        for user, assistant in self.examples:
            messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
        messages.append({"role": "user", "content": render_criteria(items)})
        return messages


def render_criteria(items: list[CriterionItem] | list[dict[str, str]]) -> str:
    rows = [(i["id"], i["text"]) if isinstance(i, dict) else (i.id, i.text) for i in items]
    return "\n".join(f"[{cid}] {' '.join(text.split())}" for cid, text in rows)


def prompts_root() -> Path:
    """`pipeline/prompts` in an installed package, else the repository's `prompts/` (editable install)."""
    packaged = resources.files("pipeline") / "prompts"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "prompts"


@cache
def load_prompt(name: str) -> Prompt:
    """A prompt by folder name under `prompts/`, or by the path of any prompt folder."""
    folder = Path(name) if Path(name).is_dir() and name not in _builtin_prompts() else prompts_root() / name
    if not folder.is_dir():
        raise BackendError(f"prompt {name!r} not found: neither a folder under {prompts_root()} "
                           f"({', '.join(_builtin_prompts())}) nor a prompt directory")
    try:
        version = (folder / "version.txt").read_text(encoding="utf-8").strip()
        system = (folder / "system.txt").read_text(encoding="utf-8").strip()
        instructions = (folder / "instructions.txt").read_text(encoding="utf-8").strip()
        examples = json.loads((folder / "examples.json").read_text(encoding="utf-8"))["examples"]
    except (OSError, ValueError, KeyError) as exc:
        raise ExtractionError(f"{folder}: cannot load prompt ({exc})") from exc
    shots = tuple(
        (render_criteria(ex["criteria"]), json.dumps(ex["answer"], separators=(",", ":"), ensure_ascii=False))
        for ex in examples
    )
    return Prompt(version=version, system=f"{system}\n\n{instructions}", examples=shots)


# ---------------------------------------------------------------- batching


def criterion_items(record: TrialRecord) -> list[CriterionItem]:
    """Each criterion's own text (up to its first sub-item), skipping criteria with none left."""
    first_child: dict[str, int] = {}
    for c in record.criteria:
        if c.parent is not None:
            first_child[c.parent] = min(first_child.get(c.parent, c.start), c.start)
    items = []
    for c in record.criteria:
        end = max(c.start, min(c.end, first_child.get(c.id, c.end)))
        text = record.source_text[c.start : end].rstrip()
        if text.strip():
            items.append(CriterionItem(c.id, c.start, c.start + len(text), text))
    return items


def estimate_tokens(text: str) -> int:
    return len(text) // CHARS_PER_TOKEN + 1


def batches(items: list[CriterionItem], budget: int, max_tokens: int) -> list[list[CriterionItem]]:
    """Pack criteria in order while their text fits `budget` tokens and their answer fits `max_tokens`.

    A batch answers with up to MAX_ENTITIES_PER_CRITERION entities per criterion, so at most
    `max_tokens // ANSWER_TOKENS_PER_CRITERION` criteria share a call; a lone long criterion is its own batch.
    """
    per_call = max(1, max_tokens // ANSWER_TOKENS_PER_CRITERION)
    packed: list[list[CriterionItem]] = []
    used = 0
    for item in items:
        cost = estimate_tokens(item.text) + 4
        if packed and used + cost <= budget and len(packed[-1]) < per_call:
            packed[-1].append(item)
            used += cost
        else:
            packed.append([item])
            used = cost
    return packed


# ---------------------------------------------------------------- usage


@dataclass
class Meter:
    """Counts every completion a document costs, failed attempts included, and enforces its budget."""

    budget: int
    usage: Usage = field(default_factory=Usage)

    def spent(self) -> int:
        return self.usage.prompt_tokens + self.usage.completion_tokens

    def wrap(self, complete: Callable[..., Any]) -> Callable[..., Any]:
        def metered(**request: Any) -> Any:
            if self.spent() >= self.budget:
                raise TokenBudgetExceeded(f"token budget of {self.budget} exhausted ({self.spent()} spent)")
            response = complete(self, **request)
            self.usage.calls += 1
            if response.usage is not None:
                self.usage.prompt_tokens += response.usage.prompt_tokens or 0
                self.usage.completion_tokens += response.usage.completion_tokens or 0
            return response

        return metered


def constrained_format(request: dict[str, Any]) -> dict[str, Any]:
    """Rewrite OpenAI's `json_schema` response format as `json_object` + `schema` (llama.cpp's form)."""
    fmt = request.get("response_format") or {}
    if fmt.get("type") != "json_schema":
        return request
    return {**request, "response_format": {"type": "json_object", "schema": fmt["json_schema"]["schema"]}}


# ---------------------------------------------------------------- the backend base


def _builtin_prompts() -> list[str]:
    return sorted(p.name for p in prompts_root().iterdir() if (p / "version.txt").is_file())


class LLMBackend:
    """Shared extraction loop; subclasses say how to reach the model (`complete`) and what it is."""

    name = "llm"
    model_id = "unknown"
    cpu_bound = False

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.prompt = load_prompt(config.prompt)
        self._cache: Any = None

    def complete(self, meter: Meter, **request: Any) -> Any:
        """One chat completion (an `openai` ChatCompletion), after transport retries."""
        raise NotImplementedError

    def provenance(self) -> Provenance:
        return Provenance(
            backend=self.name,
            model=self.model_id,
            prompt_version=self.prompt.version,
            prompt_hash=self.prompt.hash,
            pipeline_version=__version__,
        )

    def sampling(self) -> dict[str, Any]:
        config = self.config
        params = {"temperature": config.temperature, "seed": config.seed, "max_tokens": config.max_tokens}
        return params if config.top_p is None else {**params, "top_p": config.top_p}

    def cache(self) -> Any:
        if self._cache is None:
            from pipeline.cache import open_cache

            self._cache = open_cache(self.config)
        return self._cache

    def extract(self, record: TrialRecord) -> Extraction:
        out = record.model_copy(deep=True)
        meter = Meter(budget=self.config.doc_token_budget)
        context = GroundingContext(record.source_text, {})
        found: dict[str, list[dict[str, Any]]] = {}
        try:
            for batch in batches(criterion_items(record), self.config.batch_token_budget, self.config.max_tokens):
                for fields in self._batch(batch, context, meter, out.warnings):
                    found.setdefault(fields.pop("criterion"), []).append(fields)
        except ExtractionError as exc:
            raise type(exc)(f"{record.doc_id}: {exc}", meter.usage) from exc
        out.criteria = [_with_entities(c, found.get(c.id, [])) for c in out.criteria]
        out.provenance = self.provenance()
        return Extraction(record=TrialRecord.model_validate(out.model_dump()), usage=meter.usage)

    def _batch(
        self, batch: list[CriterionItem], context: GroundingContext, meter: Meter, warnings: list[str]
    ) -> list[dict[str, Any]]:
        """Grounded entity fields for one batch (each with its 'criterion').

        An answer cut off at max_tokens is not wasted: the criteria it finished keep their complete
        entities and the rest go out again; a lone criterion that still overflows keeps what it got.
        """
        context = replace(context, items={i.id: i for i in batch})
        try:
            return self._keep_grounded(self._answer(batch, context, meter), context, meter, warnings)
        except CutOff as exc:
            partial = exc.partial
        ids = [i.id for i in batch]
        if len(batch) == 1:
            salvaged = len(partial.entities)
            warnings.append(f"criterion {ids[0]}: answer cut off at max_tokens; {salvaged} entities salvaged")
            return self._keep_grounded(partial, context, meter, warnings)
        # criteria come back in order: those before the last one reached are finished
        finished = max((ids.index(e.criterion) for e in partial.entities if e.criterion in ids), default=0)
        if finished == 0:
            return self._batch(batch[:1], context, meter, warnings) + self._batch(batch[1:], context, meter, warnings)
        unfinished = set(ids[finished:])
        partial = Answer(entities=[e for e in partial.entities if e.criterion not in unfinished])
        kept = self._keep_grounded(partial, context, meter, warnings)
        return kept + self._batch(batch[finished:], context, meter, warnings)

    def _keep_grounded(
        self, answer: Answer, context: GroundingContext, meter: Meter, warnings: list[str]
    ) -> list[dict[str, Any]]:
        kept = []
        for entity in answer.entities:
            fields, error = ground_entity(context, entity)
            if fields is None:
                meter.usage.dropped_entities += 1
                warnings.append(f"dropped {error}")
            else:
                kept.append(fields)
        return kept

    def _answer(self, batch: list[CriterionItem], context: GroundingContext, meter: Meter) -> Answer:
        """The batch's answer from the cache, else from the model.

        What is cached is the outcome of the whole call: the answer that passed grounding, or, when
        the re-asks ran out, the last answer (`grounded: false`), whose ungroundable entities are
        dropped again on replay; or the complete head of an answer cut off at max_tokens
        (`incomplete: true`). So a replay reproduces the run. Re-ask intermediates and calls that
        end in an error are never cached.
        """
        from instructor.core import IncompleteOutputException

        from pipeline.cache import CacheMiss, cache_key, call_parts

        messages = self.prompt.messages(batch)
        model = answer_model(tuple(i.id for i in batch))
        parts = call_parts(
            replace(self.config, model=self.model_id),
            backend=self.name,
            messages=messages,
            response_schema=model.model_json_schema(),
            mode=INSTRUCTOR_MODE,
            prompt_version=self.prompt.version,
            code_version=CODE_VERSION,
            max_reasks=self.config.max_reasks,
        )
        key = cache_key(parts)
        try:
            entry = self.cache().get(key)
        except CacheMiss as exc:
            raise ExtractionError(f"offline and not cached: batch {[i.id for i in batch]} (key {key[:16]})") from exc
        if entry is not None:
            meter.usage.cache_hits += 1
            if entry.get("incomplete"):
                raise CutOff(Answer.model_validate(entry["parsed"]))
            return Answer.model_validate(entry["parsed"])
        try:
            answer, raw, grounded = self._ask(model, messages, context, meter)
        except IncompleteOutputException as exc:
            partial = salvage(exc.last_completion)
            self.cache().put(key, {**_entry(parts, exc.last_completion, partial), "grounded": False,
                                   "incomplete": True})
            raise CutOff(partial) from exc
        self.cache().put(key, {**_entry(parts, raw, answer), "grounded": grounded})
        return answer

    def _ask(
        self, model: type[Answer], messages: list[dict[str, str]], context: GroundingContext, meter: Meter
    ) -> tuple[Answer, Any, bool]:
        """Call through instructor with grounding re-asks; returns (answer, raw response, fully grounded?)."""
        import instructor
        from instructor.core import InstructorRetryException

        create = instructor.patch(create=meter.wrap(self.complete), mode=instructor.Mode.JSON_SCHEMA)
        calls_before = meter.usage.calls
        try:
            with grounding(context):
                answer = create(
                    response_model=model, messages=messages, max_retries=self.config.max_reasks, **self.sampling()
                )
            return answer, answer._raw_response, True
        except InstructorRetryException as exc:
            failure = _root_cause(exc)
            if isinstance(failure, ExtractionError):  # a fresh exception: re-raising `failure` would chain it to itself
                raise type(failure)(str(failure), failure.usage) from exc
            answer = _lenient(exc, failure)
            return answer, exc.last_completion, False
        finally:
            meter.usage.reasks += max(0, meter.usage.calls - calls_before - 1)


def _root_cause(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def _lenient(exc: Any, failure: BaseException) -> Answer:
    """The last answer parsed without grounding, so the grounded entities survive and the rest are dropped."""
    completion = exc.last_completion
    text = completion.choices[0].message.content if completion is not None and completion.choices else None
    try:
        return Answer.model_validate_json(text or "")
    except ValidationError:
        summary = str(failure).splitlines()[0] if str(failure) else type(failure).__name__
        raise ExtractionError(f"no valid answer after {exc.n_attempts} attempts: {summary}") from exc


def salvage(completion: Any) -> Answer:
    """The complete entities at the head of an answer cut off mid-way (none if nothing parses)."""
    text = (completion.choices[0].message.content or "") if completion is not None and completion.choices else ""
    cut = text.rfind("}")
    while cut > 0:
        try:
            return Answer.model_validate_json(text[: cut + 1] + "]}")
        except ValidationError:
            cut = text.rfind("}", 0, cut)
    return Answer(entities=[])


def _entry(parts: dict[str, Any], raw: Any, answer: Answer) -> dict[str, Any]:
    usage = raw.usage.model_dump(mode="json") if getattr(raw, "usage", None) is not None else {}
    return {
        "request": parts,
        "response": raw.model_dump(mode="json"),
        "parsed": answer.model_dump(mode="json"),
        "usage": usage,
        "model_fingerprint": getattr(raw, "system_fingerprint", None),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _with_entities(criterion: Criterion, fields: list[dict[str, Any]]) -> Criterion:
    """Attach entities in text order, numbered `<criterion id>.e<N>`; a repeated span keeps its first answer."""
    unique: dict[tuple[int, int], dict[str, Any]] = {}
    for f in sorted(fields, key=lambda f: (f["start"], f["end"])):
        unique.setdefault((f["start"], f["end"]), f)
    entities = [Entity(id=f"{criterion.id}.e{n}", **f) for n, f in enumerate(unique.values(), start=1)]
    return criterion.model_copy(update={"entities": entities})
