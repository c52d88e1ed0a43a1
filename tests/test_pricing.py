"""The price table and `cost(usage, model, prices)`: lookup by name and prefix, dollars, bad tables named."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pipeline.errors import ConfigError
from pipeline.pricing import PRICES_ENV, cost, load_prices, run_cost


def table(tmp_path, text: str, name: str = "prices.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_prices(path)


PRICES = """
batch_discount = 0.5
as_of = "2026-11"
[models."gpt-4o"]
input = 2.5
output = 10.0
[models."gpt-4o-mini"]
input = 0.15
output = 0.6
[models."local-model"]
input = 0
output = 0
batch_discount = 0
"""


def test_cost_in_dollars_with_batch_discount(tmp_path):
    prices = table(tmp_path, PRICES)
    result = cost({"prompt_tokens": 2_000_000, "completion_tokens": 500_000}, "gpt-4o-mini", prices)
    assert result["priced_as"] == "gpt-4o-mini"
    assert result["usd"] == pytest.approx(2 * 0.15 + 0.5 * 0.6)
    assert result["usd_batch"] == pytest.approx((2 * 0.15 + 0.5 * 0.6) / 2)
    assert result["prices_as_of"] == "2026-11"


def test_dated_model_names_take_the_longest_prefix(tmp_path):
    prices = table(tmp_path, PRICES)
    usage = SimpleNamespace(prompt_tokens=1_000_000, completion_tokens=0)  # the backends' Usage object works too
    assert cost(usage, "gpt-4o-mini-2024-07-18", prices)["priced_as"] == "gpt-4o-mini"
    assert cost(usage, "gpt-4o-2024-08-06", prices)["usd"] == pytest.approx(2.5)
    assert cost(usage, "gpt-4ox", prices)["priced_as"] is None  # a prefix must end at a separator


def test_unknown_model_is_unpriced_not_guessed(tmp_path):
    result = cost({"prompt_tokens": 10, "completion_tokens": 10}, "mystery", table(tmp_path, PRICES))
    assert (result["usd"], result["usd_batch"], result["input_tokens"]) == (None, None, 10)


def test_per_document_and_per_thousand(tmp_path):
    prices = table(tmp_path, PRICES)
    result = run_cost({"prompt_tokens": 4_000_000, "completion_tokens": 0}, 8, "gpt-4o", prices)
    assert result["usd"] == pytest.approx(10.0)
    assert result["usd_per_document"] == pytest.approx(1.25)
    assert result["usd_per_1000_documents"] == pytest.approx(1250.0)
    assert result["usd_batch_per_1000_documents"] == pytest.approx(625.0)
    assert result["input_tokens_per_document"] == 500_000


def test_shipped_table_and_environment_variable(tmp_path, monkeypatch):
    shipped = load_prices()
    assert shipped.source == "pipeline/prices.json" and shipped.lookup("gpt-4o-mini") is not None
    path = tmp_path / "mine.json"
    path.write_text('{"models": {"only": {"input": 1, "output": 2}}}', encoding="utf-8")
    monkeypatch.setenv(PRICES_ENV, str(path))
    assert list(load_prices().models) == ["only"]


@pytest.mark.parametrize(("text", "problem"), [
    ("[models]\nx = 1\n", "models.x must be a table with input and output"),
    ('[models."a"]\ninput = -1\noutput = 1\n', "models.a.input must be a number >= 0 (got -1)"),
    ('[models."a"]\ninput = 1\n', "models.a.output must be a number >= 0 (got None)"),
    ('[models."a"]\ninput = 1\noutput = 1\nbatch_discount = 2\n', "models.a.batch_discount must be a fraction"),
    ("currency = 'USD'\n", "a price table needs a 'models' table"),
    ("models = [", "not a valid price table"),
])
def test_bad_tables_are_one_line_naming_the_file(tmp_path, text, problem):
    with pytest.raises(ConfigError) as caught:
        table(tmp_path, text)
    assert str(caught.value).startswith(f"{tmp_path / 'prices.toml'}: ")
    assert problem in str(caught.value)
