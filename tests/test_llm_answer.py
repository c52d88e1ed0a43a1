"""The compact answer: its schema, the per-batch schema for in-process decoding, salvaging a cut answer."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pipeline.extract.llm.answer import Answer, answer_model, answer_schema, salvage


def test_endpoints_get_one_schema_for_every_batch() -> None:
    assert answer_model(None) is Answer
    assert Answer.model_json_schema() == answer_schema()
    assert "properties" not in answer_schema()  # criterion ids are free keys: the prefix never changes


def test_a_batch_schema_admits_exactly_its_criteria() -> None:
    model = answer_model(("inc-1", "exc-2"))
    schema = model.model_json_schema()
    assert (list(schema["properties"]), schema["required"], schema["additionalProperties"]) == (
        ["inc-1", "exc-2"], ["inc-1", "exc-2"], False)
    answer = model.model_validate({"inc-1": [{"t": "asthma", "y": "Condition"}], "exc-2": []})
    assert [e.text for e in answer.criteria()["inc-1"]] == ["asthma"]


def test_entities_need_text_and_a_known_type() -> None:
    with pytest.raises(ValidationError):
        Answer.model_validate({"inc-1": [{"t": "asthma", "y": "Disease"}]})
    entity = Answer.model_validate({"inc-1": [{"t": "Hb", "y": "Measurement", "v": "< 9 g/dL"}]}).criteria()["inc-1"][0]
    assert (entity.negated, entity.value, entity.value_norm) == (False, "< 9 g/dL", None)
    assert entity.compact() == {"t": "Hb", "y": "Measurement", "v": "< 9 g/dL"}  # defaults left out


def test_salvage_keeps_finished_criteria_and_names_the_one_cut() -> None:
    cut = '{"inc-1":[{"t":"a","y":"Drug"}],"inc-2":[{"t":"b","y":"Drug"},{"t":"c'
    answer, open_criterion = salvage(cut)
    assert {k: [e.text for e in v] for k, v in answer.criteria().items()} == {"inc-1": ["a"], "inc-2": ["b"]}
    assert open_criterion == "inc-2"
    answer, open_criterion = salvage('{"inc-1":[{"t":"a","y":"Drug"}],"inc-2":[')
    assert (list(answer.criteria()), open_criterion) == (["inc-1"], None)
    assert salvage('{"inc-1":[{"t":"a')[0].criteria() == {}
