"""The request: a versioned prompt (prompts/<name>/), the criteria it carries, and how they are batched.

Every request of a run starts with the same messages (system, instructions, one worked example),
so endpoints that cache prompts reuse that prefix; only the last user message, the criteria of the
batch, changes. Batches are sized so the answer fits `max_tokens`: an answer cut off is a lost call.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from pipeline.errors import BackendError, ExtractError
from pipeline.ground import CriterionItem
from pipeline.schema import TrialRecord

CHARS_PER_TOKEN = 4
LINE_TOKENS = 4  # "[inc-12] " and the line break
# answer tokens per criterion: its entities copy about half its words, plus keys and the id
ANSWER_TOKENS_PER_TEXT_TOKEN = 1.0
ANSWER_TOKENS_PER_CRITERION = 12


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


def compact_json(data: object) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def prompts_root() -> Path:
    """`pipeline/prompts` in an installed package, else the repository's `prompts/` (editable install)."""
    packaged = resources.files("pipeline") / "prompts"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[3] / "prompts"


def builtin_prompts() -> list[str]:
    return sorted(p.name for p in prompts_root().iterdir() if (p / "version.txt").is_file())


@cache
def load_prompt(name: str) -> Prompt:
    """A prompt by folder name under `prompts/`, or by the path of any prompt folder."""
    folder = Path(name) if Path(name).is_dir() and name not in builtin_prompts() else prompts_root() / name
    if not folder.is_dir():
        raise BackendError(f"prompt {name!r} not found: neither a folder under {prompts_root()} "
                           f"({', '.join(builtin_prompts())}) nor a prompt directory")
    try:
        version = (folder / "version.txt").read_text(encoding="utf-8").strip()
        system = (folder / "system.txt").read_text(encoding="utf-8").strip()
        examples = json.loads((folder / "examples.json").read_text(encoding="utf-8"))["examples"]
    except (OSError, ValueError, KeyError) as exc:
        raise ExtractError(f"{folder}: cannot load prompt ({exc})") from exc
    shots = tuple((render_criteria(ex["criteria"]), compact_json(ex["answer"])) for ex in examples)
    return Prompt(version=version, system=system, examples=shots)


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


def answer_estimate(item: CriterionItem) -> int:
    return int(estimate_tokens(item.text) * ANSWER_TOKENS_PER_TEXT_TOKEN) + ANSWER_TOKENS_PER_CRITERION


def batches(items: list[CriterionItem], budget: int, max_tokens: int) -> list[list[CriterionItem]]:
    """Pack criteria in order while their text fits `budget` tokens and their expected answer `max_tokens`.

    The answer estimate keeps a margin (90% of max_tokens); a lone long criterion is its own batch.
    """
    answer_room = max_tokens * 0.9
    packed: list[list[CriterionItem]] = []
    used = answered = 0.0
    for item in items:
        cost, answer = estimate_tokens(item.text) + LINE_TOKENS, answer_estimate(item)
        if packed and used + cost <= budget and answered + answer <= answer_room:
            packed[-1].append(item)
            used += cost
            answered += answer
        else:
            packed.append([item])
            used, answered = cost, answer
    return packed
