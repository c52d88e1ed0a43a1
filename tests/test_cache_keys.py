"""Cache keys change with everything that can change an answer, and with nothing else."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pydantic import BaseModel, Field

from pipeline.cache import cache_key, call_parts, canonical_json, endpoint_identity
from pipeline.config import RunConfig

BASE = RunConfig(
    backend="openai", model="smollm2", base_url="http://127.0.0.1:8080/v1", api_key="sk-one", timeout=30.0
)
MESSAGES = [{"role": "system", "content": "Extract entities."}, {"role": "user", "content": "Age ≥ 18 years"}]


def schema(description: str = "The entity text, verbatim") -> dict:
    class Item(BaseModel):
        text: str = Field(description=description)

    return Item.model_json_schema()


def key_for(config: RunConfig = BASE, messages: list = MESSAGES, response_schema: dict | None = None) -> str:
    parts = call_parts(
        config,
        backend="openai",
        messages=messages,
        response_schema=response_schema or schema(),
        mode="JSON_SCHEMA",
        prompt_version="p1",
        code_version="0.1.0",
    )
    return cache_key(parts)


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.7},
        {"seed": 1},
        {"seed": None},
        {"model": "qwen2.5"},
        {"max_tokens": 2048},
        {"top_p": 0.9},
        {"base_url": "http://127.0.0.1:8081/v1"},
    ],
    ids=lambda change: next(iter(change)),
)
def test_changing_a_config_input_misses(change: dict) -> None:
    assert key_for(replace(BASE, **change)) != key_for()


def test_changing_the_prompt_text_misses() -> None:
    edited = [MESSAGES[0], {"role": "user", "content": "Age ≥ 21 years"}]
    assert key_for(messages=edited) != key_for()


def test_changing_a_schema_field_description_misses() -> None:
    assert key_for(response_schema=schema("The entity text, copied exactly")) != key_for()


@pytest.mark.parametrize(
    "change",
    [{"api_key": "sk-two"}, {"api_key": None}, {"timeout": 600.0}, {"concurrency": 8}, {"max_transport_retries": 0}],
    ids=lambda change: next(iter(change)),
)
def test_transport_settings_hit(change: dict) -> None:
    assert key_for(replace(BASE, **change)) == key_for()


def test_other_parts_each_change_the_key() -> None:
    base = call_parts(
        BASE, backend="openai", messages=MESSAGES, response_schema=None, mode="JSON", prompt_version="p1",
        code_version="0.1.0",
    )
    variants = [
        {**base, "mode": "TOOLS"},
        {**base, "prompt_version": "p2"},
        {**base, "code_version": "0.1.1"},
        {**base, "backend": "local"},
    ]
    keys = {cache_key(v) for v in variants}
    assert len(keys) == len(variants) and cache_key(base) not in keys


def test_key_is_sha256_of_canonical_json_independent_of_dict_order() -> None:
    a = {"b": 1, "a": {"y": "é", "x": [1, 2]}}
    b = {"a": {"x": [1, 2], "y": "é"}, "b": 1}
    assert canonical_json(a) == '{"a":{"x":[1,2],"y":"é"},"b":1}'
    assert cache_key(a) == cache_key(b)
    assert len(cache_key(a)) == 64 and int(cache_key(a), 16) >= 0


def test_extra_sampling_parameters_enter_the_key() -> None:
    plain = call_parts(BASE, backend="openai", messages=MESSAGES, response_schema=None, mode=None,
                       prompt_version=None, code_version="0")
    penalised = call_parts(BASE, backend="openai", messages=MESSAGES, response_schema=None, mode=None,
                           prompt_version=None, code_version="0", frequency_penalty=0.5)
    assert penalised["sampling"]["frequency_penalty"] == 0.5
    assert cache_key(plain) != cache_key(penalised)


@pytest.mark.parametrize("name", ["api_key", "Authorization", "x-api-key", "client_secret"])
def test_parts_named_like_a_secret_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="secret"):
        cache_key({"request": {"headers": {name: "value"}}})


def test_endpoint_identity_drops_credentials_and_query() -> None:
    config = replace(BASE, base_url="HTTP://user:pw@LocalHost:8080/v1/?key=abc")
    assert endpoint_identity(config) == "http://localhost:8080/v1"
    assert endpoint_identity(RunConfig(model_path="/models/SmolLM2-135M.gguf")) == "file:SmolLM2-135M.gguf"
    assert endpoint_identity(RunConfig()) is None
