"""What model calls cost: a small price table and `cost(usage, model, prices)`.

A leaf module (it imports only `pipeline.errors`), so eval reports and the run manifest can both
price token usage the same way. The table ships as `pipeline/prices.json`; `--prices FILE` or the
`TRIALSTRUCT_PRICES` environment variable names a replacement (TOML or JSON, same fields):

    batch_discount = 0.5            # fraction the provider's batch API takes off
    [models."gpt-4o-mini"]          # US dollars per million tokens
    input = 0.15
    output = 0.60                   # an entry may carry its own batch_discount

A model is priced by its exact name, else by the longest entry that is a prefix of it followed by
a separator (`gpt-4o-mini-2024-07-18` is priced as `gpt-4o-mini`). An unknown model is not an
error: its cost is reported as unknown (None), never guessed.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError

PRICES_ENV = "TRIALSTRUCT_PRICES"
SEPARATORS = "-.:@"
PER_TOKENS = 1_000_000


@dataclass(frozen=True)
class Price:
    input: float
    output: float
    batch_discount: float


@dataclass(frozen=True)
class PriceTable:
    models: dict[str, Price]
    source: str
    currency: str = "USD"
    as_of: str | None = None

    def lookup(self, model: str | None) -> tuple[str, Price] | None:
        """(entry name, price) for `model`: the exact entry, else the longest prefix entry."""
        if not model:
            return None
        if model in self.models:
            return model, self.models[model]
        prefixes = [name for name in self.models if model.startswith(name) and model[len(name)] in SEPARATORS]
        if not prefixes:
            return None
        name = max(prefixes, key=len)
        return name, self.models[name]


def default_prices_path() -> Path:
    return Path(str(resources.files("pipeline") / "prices.json"))


def load_prices(path: Path | None = None) -> PriceTable:
    """The table at `path`, else at $TRIALSTRUCT_PRICES, else the shipped one; a bad file is named."""
    given = path or (Path(os.environ[PRICES_ENV]) if os.environ.get(PRICES_ENV) else None)
    chosen = given or default_prices_path()
    try:
        text = chosen.read_text(encoding="utf-8")
        data = tomllib.loads(text) if chosen.suffix == ".toml" else json.loads(text)
    except OSError as exc:
        raise ConfigError(f"{chosen}: cannot read the price table ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{chosen}: not a valid price table ({exc})") from None
    return _table(data, str(given) if given else "pipeline/prices.json")


def _table(data: Any, source: str) -> PriceTable:
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise ConfigError(f"{source}: a price table needs a 'models' table")
    default_discount = _number(data.get("batch_discount", 0.0), source, "batch_discount")
    models = {}
    for name, entry in data["models"].items():
        if not isinstance(entry, dict):
            raise ConfigError(f"{source}: models.{name} must be a table with input and output")
        where = f"models.{name}"
        models[name] = Price(
            input=_number(entry.get("input"), source, f"{where}.input"),
            output=_number(entry.get("output"), source, f"{where}.output"),
            batch_discount=_number(entry.get("batch_discount", default_discount), source, f"{where}.batch_discount"),
        )
    for name, price in models.items():
        if price.batch_discount > 1:
            raise ConfigError(f"{source}: models.{name}.batch_discount must be a fraction between 0 and 1")
    return PriceTable(models, source, str(data.get("currency", "USD")), data.get("as_of"))


def _number(value: Any, source: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{source}: {where} must be a number >= 0 (got {value!r})")
    return float(value)


def _tokens(usage: Any, name: str) -> int:
    value = usage.get(name) if isinstance(usage, Mapping) else getattr(usage, name, None)
    return int(value or 0)


def cost(usage: Any, model: str | None, prices: PriceTable) -> dict[str, Any]:
    """What `usage` (a mapping or object with prompt_tokens / completion_tokens) costs on `model`.

    `usd` is the list price, `usd_batch` the price through the provider's batch API; both are None
    when the table has no price for the model (`priced_as` then is None too).
    """
    input_tokens, output_tokens = _tokens(usage, "prompt_tokens"), _tokens(usage, "completion_tokens")
    found = prices.lookup(model)
    result: dict[str, Any] = {
        "model": model, "priced_as": None, "input_tokens": input_tokens, "output_tokens": output_tokens,
        "usd": None, "usd_batch": None, "prices": prices.source, "prices_as_of": prices.as_of,
    }
    if found is None:
        return result
    name, price = found
    usd = (input_tokens * price.input + output_tokens * price.output) / PER_TOKENS
    result.update(priced_as=name, usd=round(usd, 8), usd_batch=round(usd * (1 - price.batch_discount), 8))
    return result


def run_cost(usage: Any, documents: int, model: str | None, prices: PriceTable) -> dict[str, Any]:
    """`cost` of a run's total usage, with tokens and dollars per document and per 1,000 documents."""
    total = cost(usage, model, prices)
    per_doc = 1 / documents if documents else 0.0
    scaled = {
        "documents": documents,
        "input_tokens_per_document": round(total["input_tokens"] * per_doc, 1),
        "output_tokens_per_document": round(total["output_tokens"] * per_doc, 1),
    }
    for name in ("usd", "usd_batch"):
        value = total[name]
        scaled[f"{name}_per_document"] = None if value is None else round(value * per_doc, 8)
        scaled[f"{name}_per_1000_documents"] = None if value is None else round(value * per_doc * 1000, 6)
    return {**total, **scaled}
