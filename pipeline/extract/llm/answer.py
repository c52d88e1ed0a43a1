"""The model's answer: a compact JSON object, criterion id -> its entities.

    {"inc-1": [{"t": "aged", "y": "Person", "v": "18 years or older", "vn": ">= 18 - years"}], "exc-2": []}

Keys are one or two letters because every key is paid for in every entity; optional keys are left
out (`n` only when negated, `v`/`vn` for a value, `w`/`wn` for a time window). The model copies
text (`t`, `v`, `w`) and may give the normalised form (`vn`: "comparator low high unit",
`wn`: "direction anchor min_days max_days", "-" for none); grounding places the text and
cross-checks the normalised form against it (pipeline.ground). The schema is the same for every
batch (criterion ids are free keys), so the request prefix is stable for endpoints that cache it.
No entity cap: a criterion lists as many entities as it has.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.schema import EntityType

MAX_TEXT = 300


class EntityOut(BaseModel):
    """One entity as the model writes it: field names say what each compact key (the alias) means."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    text: str = Field(alias="t", max_length=MAX_TEXT)
    type: EntityType = Field(alias="y")
    negated: bool = Field(default=False, alias="n")
    value: str | None = Field(default=None, alias="v", max_length=MAX_TEXT)
    value_norm: str | None = Field(default=None, alias="vn")
    time: str | None = Field(default=None, alias="w", max_length=MAX_TEXT)
    time_norm: str | None = Field(default=None, alias="wn")

    def compact(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_defaults=True, mode="json")


KEYS = {name: str(info.alias) for name, info in EntityOut.model_fields.items()}


def answer_keys() -> dict[str, str]:
    """Field name -> compact key ('text' -> 't')."""
    return dict(KEYS)


class Answer(BaseModel):
    """Criterion id -> entities, in the order the model wrote them."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, list[EntityOut]] = Field(init=False)

    @classmethod
    def of(cls, criteria: dict[str, list[EntityOut]]) -> Answer:
        return cls.model_validate({cid: [e.compact() for e in entities] for cid, entities in criteria.items()})

    def criteria(self) -> dict[str, list[EntityOut]]:
        return dict(self.__pydantic_extra__ or {})

    def compact(self) -> dict[str, list[dict[str, Any]]]:
        return {cid: [e.compact() for e in entities] for cid, entities in self.criteria().items()}

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The schema sent to the endpoint, written for tokens (no titles, no defaults)."""
        return answer_schema()


@lru_cache(maxsize=256)
def answer_model(ids: tuple[str, ...] | None = None) -> type[Answer]:
    """The response model; with `ids`, one whose schema admits exactly those criteria, in order.

    Endpoints get the one schema for every batch (a stable, cacheable prefix); a backend decoding
    under the schema's grammar in-process (`local`) gets the batch's ids, so a small model can
    neither invent an id nor skip one.
    """
    if ids is None:
        return Answer
    schema = answer_schema(ids)
    return type("Answer", (Answer,), {"model_json_schema": classmethod(lambda cls, *a, **k: schema)})


def answer_schema(ids: tuple[str, ...] | None = None) -> dict[str, Any]:
    text = {"type": "string"}
    entity = {
        "type": "object",
        "properties": {
            KEYS["text"]: text,
            KEYS["type"]: {"enum": [t.value for t in EntityType]},
            KEYS["negated"]: {"type": "boolean"},
            KEYS["value"]: text, KEYS["value_norm"]: text, KEYS["time"]: text, KEYS["time_norm"]: text,
        },
        "required": [KEYS["text"], KEYS["type"]],
        "additionalProperties": False,
    }
    entities = {"type": "array", "items": entity}
    if ids is not None:
        return {"title": "Answer", "type": "object", "properties": dict.fromkeys(ids, entities), "required": list(ids),
                "additionalProperties": False}
    return {"title": "Answer", "type": "object", "additionalProperties": entities}


def salvage(text: str) -> tuple[Answer, str | None]:
    """The complete part of an answer cut off mid-way, and the id of the criterion it was cut in.

    Criteria whose list closed are complete; the one being written when the cut came keeps its
    complete entities and is named, so the caller can send it (and those after it) again.
    """
    for cut in range(len(text), 0, -1):
        if text[cut - 1] not in "]}":
            continue
        for closing in ("}", "]}", "}]}"):
            try:
                data = json.loads(text[:cut] + closing)
                answer = Answer.model_validate(data)
            except (ValueError, ValidationError):
                continue
            if not isinstance(data, dict):
                continue
            open_criterion = next(reversed(data), None) if closing != "}" else None
            return answer, open_criterion
    return Answer(), None


def constrained_format(request: dict[str, Any]) -> dict[str, Any]:
    """Rewrite OpenAI's `json_schema` response format as `json_object` + `schema` (llama.cpp's form)."""
    fmt = request.get("response_format") or {}
    if fmt.get("type") != "json_schema":
        return request
    return {**request, "response_format": {"type": "json_object", "schema": fmt["json_schema"]["schema"]}}
