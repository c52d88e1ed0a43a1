"""The extraction loop the LLM backends share: batches, cache, answer, targeted re-asks, cut-offs.

Flow for one document: the criteria (already segmented, with ids) are packed into batches sized to
the answer room (`prompt.batches`); each batch is one cached unit. A call goes through instructor
(public API: `create_with_completion`), which re-asks only when the answer is not valid JSON of the
answer schema. Grounding (`pipeline.ground`) then places every entity; the criteria with an entity
that cannot be placed, and only those, are asked again with their own errors, while each re-ask
changes something. An entity still unplaced at the end is dropped with a warning naming it.
An answer cut off at max_tokens keeps its finished criteria and the rest go out again.
The batches are independent of each other: a call the transport defers (`CallDeferred`, the batch
flow) does not stop the others, so one batch pass records every call that waits on no answer.
Transport retries live in the backend's `complete` (see openai_compat), apart from all this.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

from pipeline import __version__
from pipeline.config import RunConfig
from pipeline.extract import Extraction
from pipeline.extract.llm.answer import Answer, answer_model, salvage
from pipeline.extract.llm.prompt import Prompt, batches, compact_json, criterion_items, load_prompt, render_criteria
from pipeline.extract.llm.usage import CallDeferred, ExtractionError, Meter
from pipeline.ground import CriterionItem, Grounder
from pipeline.redact import redact_text, url_secrets
from pipeline.schema import Criterion, Entity, Provenance, TrialRecord

# instructor logs every failed attempt at ERROR; the outcome reaches the user as record warnings or
# errors.jsonl, so its messages go only where the application configured logging.
logging.getLogger("instructor").addHandler(logging.NullHandler())

CODE_VERSION = f"{__version__}+llm2"
INSTRUCTOR_MODE = "json_schema"
REASK = "Some entities could not be found in their criterion:\n{errors}\nCopy entity, value and time text " \
        "verbatim from the criterion. Answer again for criteria {ids} only."


class LLMBackend:
    """Shared extraction loop; subclasses say how to reach the model (`complete`) and what it is."""

    name = "llm"
    model_id = "unknown"
    cpu_bound = False  # waits on a model: threads, not processes
    batch_schema = False  # True: each request's schema names exactly its batch's criteria (see answer_model)

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.prompt: Prompt = load_prompt(config.prompt)
        self._cache: Any = None

    def complete(self, on_retry: Any, **request: Any) -> Any:
        """One chat completion (an `openai` ChatCompletion) after transport retries; `on_retry()` per retry."""
        raise NotImplementedError

    def secrets(self) -> list[str]:
        """Strings that must never be written: the API key and credentials inside the endpoint URL."""
        return [s for s in (self.config.api_key, *url_secrets(self.config.base_url)) if s]

    def redact(self, text: str) -> str:
        return redact_text(text, self.secrets())

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
        meter = Meter(budget=self.config.doc_token_budget, seconds=self.config.document_timeout)
        found: dict[str, list[dict[str, Any]]] = {}
        packed = batches(criterion_items(record), self.config.batch_token_budget, self.config.max_tokens)
        calls = (partial(self._batch, record.source_text, batch, meter, out.warnings) for batch in packed)
        try:
            for fields in _independent(calls):
                found.setdefault(fields.pop("criterion"), []).append(fields)
        except ExtractionError as exc:
            raise type(exc)(self.redact(f"{record.doc_id}: {exc}"), meter.usage) from None
        out.warnings = [self.redact(w) for w in out.warnings]
        out.criteria = [_with_entities(c, found.get(c.id, [])) for c in out.criteria]
        out.provenance = self.provenance()
        return Extraction(record=TrialRecord.model_validate(out.model_dump()), usage=meter.usage)

    def _batch(
        self, source: str, batch: list[CriterionItem], meter: Meter, warnings: list[str]
    ) -> list[dict[str, Any]]:
        """Grounded entity fields for one batch (each with its 'criterion').

        When the answer was cut off, the finished criteria keep their entities and the rest go out
        again; a lone criterion that still overflows keeps what it got, with a warning.
        """
        answer, unfinished = self._answer(source, batch, meter)
        ids = [i.id for i in batch]
        if unfinished is None:
            return _keep_grounded(source, batch, answer, meter, warnings)
        if len(batch) == 1:
            salvaged = sum(len(e) for e in answer.criteria().values())
            warnings.append(f"criterion {ids[0]}: answer cut off at max_tokens; {salvaged} entities salvaged")
            return _keep_grounded(source, batch, answer, meter, warnings)
        cut = ids.index(unfinished)
        if cut == 0:
            return _independent(partial(self._batch, source, part, meter, warnings) for part in (batch[:1], batch[1:]))
        done = Answer.of({cid: e for cid, e in answer.criteria().items() if cid in ids[:cut]})
        kept = _keep_grounded(source, batch[:cut], done, meter, warnings)
        return kept + self._batch(source, batch[cut:], meter, warnings)

    def _answer(self, source: str, batch: list[CriterionItem], meter: Meter) -> tuple[Answer, str | None]:
        """The batch's final answer (after re-asks) and its first unfinished criterion if it was cut off.

        What is cached is that outcome, so a replay reproduces the run, with the response of the last
        call that made it; re-ask intermediates and calls that end in an error are never cached.
        """
        from pipeline.cache import CacheMiss, cache_key, call_parts

        messages = self.prompt.messages(batch)
        parts = call_parts(
            replace(self.config, model=self.model_id),
            backend=self.name,
            messages=messages,
            response_schema=self._response_model(batch).model_json_schema(),
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
            return Answer.model_validate(entry["parsed"]), entry.get("unfinished")
        answer, raw, unfinished = self._ask(messages, batch, meter)
        grounded = False
        if unfinished is None:
            answer, grounded, raw = self._reask_failures(source, batch, answer, raw, meter)
        self.cache().put(key, self._entry(parts, raw, answer, grounded=grounded, unfinished=unfinished))
        return answer, unfinished

    def _reask_failures(
        self, source: str, batch: list[CriterionItem], answer: Answer, raw: Any, meter: Meter
    ) -> tuple[Answer, bool, Any]:
        """Ask again for the criteria with unplaced entities, each with its own errors, up to max_reasks.

        A criterion whose errors come back unchanged is not asked again: that cannot succeed.
        """
        previous: dict[str, list[str]] = {}
        for attempt in range(self.config.max_reasks + 1):
            errors = _errors_by_criterion(source, batch, answer)
            retry = {cid: errs for cid, errs in errors.items() if errs != previous.get(cid)}
            if not retry or attempt == self.config.max_reasks:
                return answer, not errors, raw
            failed = [i for i in batch if i.id in retry]
            meter.usage.reasks += 1
            again, raw, _cut = self._ask(self._reask_messages(failed, answer, retry), failed, meter)
            merged = answer.criteria()
            merged.update({cid: e for cid, e in again.criteria().items() if cid in retry})
            answer, previous = Answer.of(merged), errors
        return answer, False, raw

    def _response_model(self, batch: list[CriterionItem]) -> type[Answer]:
        return answer_model(tuple(i.id for i in batch) if self.batch_schema else None)

    def _reask_messages(
        self, failed: list[CriterionItem], answer: Answer, errors: dict[str, list[str]]
    ) -> list[dict[str, str]]:
        """The usual prefix and the failed criteria only, then their previous answer and their own errors."""
        previous = answer.compact()
        listed = "\n".join(e for errs in errors.values() for e in errs)
        return [
            *self.prompt.messages(failed),
            {"role": "assistant", "content": compact_json({i.id: previous.get(i.id, []) for i in failed})},
            {"role": "user", "content": REASK.format(errors=listed, ids=", ".join(errors))},
        ]

    def _ask(
        self, messages: list[dict[str, str]], batch: list[CriterionItem], meter: Meter
    ) -> tuple[Answer, Any, str | None]:
        """One answer through instructor: (answer, completion, first unfinished criterion if cut off)."""
        import instructor
        from instructor.core import IncompleteOutputException, InstructorRetryException

        mode = instructor.Mode.JSON_SCHEMA
        create = instructor.patch(create=meter.wrap(self.complete), mode=mode)
        client = instructor.Instructor(client=None, create=create, mode=mode)
        calls_before = meter.usage.calls
        try:
            answer, completion = client.create_with_completion(
                messages=messages,  # type: ignore[arg-type]  # plain dicts are what the endpoint receives
                response_model=self._response_model(batch), max_retries=self.config.max_reasks, **self.sampling()
            )
            return answer, completion, None
        except IncompleteOutputException as exc:
            return _cut_off(exc.last_completion, batch)
        except InstructorRetryException as exc:
            failure = _root_cause(exc)
            if isinstance(failure, ExtractionError):  # a fresh exception: re-raising `failure` would chain it to itself
                raise type(failure)(str(failure), failure.usage) from exc
            summary = str(failure).splitlines()[0] if str(failure) else type(failure).__name__
            raise ExtractionError(f"no valid answer after {exc.n_attempts} attempts: {summary}") from exc
        finally:
            meter.usage.reasks += max(0, meter.usage.calls - calls_before - 1)

    def _entry(self, parts: dict[str, Any], raw: Any, answer: Answer, **flags: Any) -> dict[str, Any]:
        """The cache entry of one batch, secrets masked (an endpoint may echo the key in its answer)."""
        usage = raw.usage.model_dump(mode="json") if getattr(raw, "usage", None) is not None else {}
        entry = {
            "request": parts,
            "response": raw.model_dump(mode="json") if raw is not None else None,
            "parsed": answer.compact(),
            "usage": usage,
            "model_fingerprint": getattr(raw, "system_fingerprint", None),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            **flags,
        }
        return json.loads(self.redact(json.dumps(entry, ensure_ascii=False)))


def _independent(calls: Iterable[Callable[[], list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """The entity fields of calls that do not depend on each other, in order.

    A deferred call does not stop the ones after it: all are made (so the batch flow records them
    in one pass), then the deferral is raised for the lot.
    """
    fields: list[dict[str, Any]] = []
    held = 0
    for call in calls:
        try:
            fields += call()
        except CallDeferred as exc:
            held += exc.calls
    if held:
        raise CallDeferred(f"{held} model call{'s' * (held > 1)} wait for an answer", calls=held)
    return fields


def _cut_off(completion: Any, batch: list[CriterionItem]) -> tuple[Answer, Any, str | None]:
    """The finished head of a cut-off answer and the first criterion it did not finish.

    A criterion cut mid-way is unfinished; so are the criteria after the last one it reached.
    For a lone criterion, its complete entities are kept.
    """
    choices = getattr(completion, "choices", None) or []
    text = (choices[0].message.content or "") if choices else ""
    answer, open_criterion = salvage(text)
    ids = [i.id for i in batch]
    reached = [ids.index(cid) for cid in answer.criteria() if cid in ids]
    if open_criterion in ids:
        unfinished = open_criterion
    else:
        after = max(reached, default=-1) + 1
        unfinished = ids[after] if after < len(ids) else ids[-1]
    if len(batch) > 1:
        answer = Answer.of({cid: e for cid, e in answer.criteria().items() if cid != unfinished})
    return answer, completion, unfinished


def _errors_by_criterion(source: str, batch: list[CriterionItem], answer: Answer) -> dict[str, list[str]]:
    grounder = Grounder(source, {i.id: i for i in batch})
    errors: dict[str, list[str]] = {}
    for cid, entities in answer.criteria().items():
        for entity in entities:
            error = grounder.entity(cid, entity).error
            if error is not None:
                errors.setdefault(cid if cid in grounder.items else batch[0].id, []).append(error)
    return errors


def _keep_grounded(
    source: str, batch: list[CriterionItem], answer: Answer, meter: Meter, warnings: list[str]
) -> list[dict[str, Any]]:
    grounder = Grounder(source, {i.id: i for i in batch})
    kept = []
    for cid, entities in answer.criteria().items():
        for entity in entities:
            grounded = grounder.entity(cid, entity)
            warnings.extend(grounded.warnings)
            if grounded.fields is None:
                meter.usage.dropped_entities += 1
                warnings.append(f"dropped {grounded.error}")
            else:
                kept.append(grounded.fields)
    return kept


def _root_cause(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def _with_entities(criterion: Criterion, fields: list[dict[str, Any]]) -> Criterion:
    """Attach entities in text order, numbered `<criterion id>.e<N>`; a repeated span keeps its first answer."""
    unique: dict[tuple[int, int], dict[str, Any]] = {}
    for f in sorted(fields, key=lambda f: (f["start"], f["end"])):
        unique.setdefault((f["start"], f["end"]), f)
    entities = [Entity(id=f"{criterion.id}.e{n}", **f) for n, f in enumerate(unique.values(), start=1)]
    return criterion.model_copy(update={"entities": entities})


__all__ = ["LLMBackend", "render_criteria"]
