"""Tokens per document, trialstruct vs LangExtract, both answered by the same perfect model.

    pip install -e ".[bench]" && python benchmarks/bench_tokens_langextract.py [--docs N]

Both sides run against the perfect-model server (tests/oracle_server.py) over the gold documents
whose source is at hand, on the criteria text, for the same eight classes and the same attributes
(negated, value and its normalised form, time window and its normalised form), with the same
worked example (trialstruct's prompts/extract-v2 example; LangExtract gets it as two few-shot
examples). LangExtract runs its real `extract` with its OpenAI provider pointed at the server and
its default chunking (max_char_buffer 1000); the server answers each chunk with the gold in
LangExtract's own format, indented as its examples are. Tokens are what the server counts for each
request (messages plus response format), with one tokenizer for both, named in the output.
Exact alignment: the share of gold entities each side places at exactly the gold offsets.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests package: the perfect-model server

from benchmarks.bench_llm_oracle import GOLD, available_gold, run_oracle
from pipeline.extract.llm.prompt import prompts_root
from pipeline.schema import TrialRecord
from tests.oracle_server import TOKENIZER, OracleServer

DESCRIPTION = (
    "Extract the entities of clinical-trial eligibility criteria, in order of appearance, with their exact text. "
    "Classes: condition, drug, procedure, measurement, observation, device, person (age, sex), visit (care setting). "
    "Attributes, only when present: negated (\"true\" when the text says the entity is absent or excepted); "
    "value (the value text) and value_norm (\"comparator low high unit\", \"-\" for none); time (the time window "
    "text) and time_norm (\"direction anchor min_days max_days\"). Use exact text; do not paraphrase."
)
KEYS = {"n": "negated", "v": "value", "vn": "value_norm", "w": "time", "wn": "time_norm"}


@dataclass
class Side:
    tokens: int
    calls: int
    exact: int


def attributes(entity: dict) -> dict[str, str]:
    """trialstruct's compact keys as LangExtract attributes ('n': true -> 'negated': 'true')."""
    return {KEYS[k]: str(v).lower() if k == "n" else v for k, v in entity.items() if k in KEYS}


def langextract_examples() -> list:
    """trialstruct's worked example as LangExtract few-shot examples: inclusion criteria, then exclusion."""
    import langextract as lx

    example = json.loads((prompts_root() / "extract-v2" / "examples.json").read_text(encoding="utf-8"))["examples"][0]
    groups: dict[str, list[dict]] = {}
    for criterion in example["criteria"]:
        groups.setdefault(criterion["id"].split("-")[0], []).append(criterion)
    shots = []
    for criteria in groups.values():
        extractions = [
            lx.data.Extraction(extraction_class=e["y"].lower(), extraction_text=e["t"], attributes=attributes(e))
            for c in criteria for e in example["answer"][c["id"]]
        ]
        shots.append(lx.data.ExampleData(text="\n".join(c["text"] for c in criteria), extractions=extractions))
    return shots


def criteria_region(record: TrialRecord) -> tuple[int, int]:
    return min(c.start for c in record.criteria), max(c.end for c in record.criteria)


def run_langextract(gold: list[TrialRecord]) -> Side:
    import langextract as lx
    from langextract.providers.openai import OpenAILanguageModel

    examples, exact = langextract_examples(), 0
    with OracleServer(gold) as server:
        model = OpenAILanguageModel(model_id="oracle", api_key="none", base_url=server.url)
        for record in gold:
            start, end = criteria_region(record)
            result = lx.extract(record.source_text[start:end], prompt_description=DESCRIPTION, examples=examples,
                                model=model, show_progress=False, prompt_validation_level="off")
            wanted = {(str(e.type).lower(), e.start - start, e.end - start) for e in record.entities()}
            placed = {(x.extraction_class, x.char_interval.start_pos, x.char_interval.end_pos)
                      for x in result.extractions
                      if x.char_interval is not None and x.alignment_status == lx.data.AlignmentStatus.MATCH_EXACT}
            exact += len(wanted & placed)
    return Side(tokens=sum(u["total_tokens"] for u in server.usage), calls=len(server.usage), exact=exact)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=None, help="only the first N gold documents")
    args = parser.parse_args()
    gold, skipped = available_gold(sorted(GOLD.glob("*.json"))[: args.docs])
    gold = [r for r in gold if r.criteria]
    entities = sum(len(r.entities()) for r in gold)
    ours = run_oracle(gold)
    trialstruct = Side(tokens=ours.tokens, calls=ours.calls, exact=ours.scores["entities.strict"].tp)
    langextract = run_langextract(gold)
    n = len(gold)
    print(f"{n} gold documents with criteria ({len(skipped)} skipped, source absent), {entities} gold entities")
    print(f"tokenizer for both sides: {TOKENIZER}")
    print(f"  {'':<12} {'tokens/doc':>11} {'calls/doc':>10} {'exact alignment':>16}")
    for name, side in (("trialstruct", trialstruct), ("LangExtract", langextract)):
        print(f"  {name:<12} {side.tokens / n:>11,.0f} {side.calls / n:>10.2f} {side.exact / entities:>16.1%}")
    ratio = trialstruct.tokens / langextract.tokens
    print(f"  ratio trialstruct / LangExtract: {ratio:.2f}x   (target <= 0.75x, aim 0.5x)")


if __name__ == "__main__":
    main()
