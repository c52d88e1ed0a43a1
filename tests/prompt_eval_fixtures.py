"""Test helpers for prompt evaluations: a small gold set and an OpenAI-wire server whose answers depend on the prompt.

The server speaks real HTTP (it is `tests.fault_server.FaultServer`). A request whose system
message contains `CAREFUL_MARKER` gets careful answers: every vocabulary word of each criterion
with its right type. Any other prompt gets the fault server's default answer, the criterion's last
word as a Condition, which is right only for "Diagnosis of <condition>" criteria.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from pipeline.config import RunConfig
from pipeline.extract.llm.prompt import prompts_root
from pipeline.ingest import Document, iter_documents
from pipeline.segment import segment
from tests.conftest import REPO
from tests.fault_server import CRITERION_LINE, Action, FaultServer, criteria_message

CAREFUL_MARKER = "Name the medical term of every criterion with its own type."
VOCABULARY = {
    "asthma": "Condition", "eczema": "Condition", "psoriasis": "Condition", "diabetes": "Condition",
    "Hemoglobin": "Measurement", "Creatinine": "Measurement", "Bilirubin": "Measurement",
    "aspirin": "Drug", "warfarin": "Drug", "heparin": "Drug",
}
DOCUMENTS = {
    "d1": ["Diagnosis of asthma", "Hemoglobin >= 9 g/dL", "Prior aspirin therapy"],
    "d2": ["Diagnosis of eczema"],
    "d3": ["Creatinine above 2 mg/dL", "Current warfarin treatment"],
    "d4": ["Diagnosis of psoriasis", "Prior heparin exposure"],
    "d5": ["Diagnosis of diabetes"],
    "d6": ["Bilirubin above 3 mg/dL"],
}


class PromptScriptedServer(FaultServer):
    """Careful answers for the careful prompt, last-word answers for any other."""

    def next_action(self, request: dict[str, Any]) -> Action:
        if CAREFUL_MARKER not in request["messages"][0]["content"]:
            return super().next_action(request)
        found = {cid: [{"t": word, "y": VOCABULARY[word]} for word in re.findall(r"\w+", text) if word in VOCABULARY]
                 for cid, text in CRITERION_LINE.findall(criteria_message(request))}
        return Action(content=json.dumps(found))

    def requests_with(self, careful: bool) -> list[dict[str, Any]]:
        return [r for r in self.requests if (CAREFUL_MARKER in r["body"]["messages"][0]["content"]) == careful]


def write_gold_set(root: Path) -> Path:
    """root/docs/<id>.txt and their gold records in root/evals/gold (entities placed by hand, not by a backend)."""
    docs, gold = root / "docs", root / "evals" / "gold"
    docs.mkdir(parents=True)
    gold.mkdir(parents=True)
    for doc_id, criteria in DOCUMENTS.items():
        lines = "".join(f"{n}. {text}\n" for n, text in enumerate(criteria, 1))
        (docs / f"{doc_id}.txt").write_text(f"Inclusion Criteria:\n{lines}", encoding="utf-8")
    for document in iter_documents([docs]):
        assert isinstance(document, Document)
        record = segment(document)
        record.source.path = f"docs/{record.doc_id}.txt"
        data = record.model_dump(mode="json")
        for criterion in data["criteria"]:
            text = record.source_text[criterion["start"]:criterion["end"]]
            words = [w for w in re.findall(r"\w+", text) if w in VOCABULARY]
            starts = [criterion["start"] + text.index(word) for word in words]
            criterion["entities"] = [
                {"id": f"{criterion['id']}.e{n}", "type": VOCABULARY[word], "text": word, "start": start,
                 "end": start + len(word)}
                for n, (word, start) in enumerate(zip(words, starts, strict=True), 1)
            ]
        data["provenance"] = {"backend": "gold"}
        (gold / f"{record.doc_id}.json").write_text(type(record).model_validate(data).model_dump_json(), "utf-8")
    return gold


def default_prompt_folder() -> Path:
    """The configured default prompt's folder, whatever it is called."""
    return prompts_root() / RunConfig().prompt


def careful_variant(root: Path, name: str) -> Path:
    """A real prompt folder: a copy of the default prompt whose instructions gain the careful sentence."""
    folder = root / "prompts" / name
    shutil.copytree(default_prompt_folder(), folder)
    (folder / "version.txt").write_text(f"{name}\n", encoding="utf-8")
    system = folder / "system.txt"
    system.write_text(system.read_text(encoding="utf-8") + f"\n{CAREFUL_MARKER}\n", encoding="utf-8")
    return folder


def trialstruct(*args: str | Path, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The CLI in a fresh process, as a user runs it (the repository on the import path)."""
    command = [sys.executable, "-c", "from pipeline.cli import main; main()", *map(str, args)]
    full_env = {**env, "PYTHONPATH": str(REPO)}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=cwd, env=full_env)
