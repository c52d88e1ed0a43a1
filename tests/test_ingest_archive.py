"""Zip archives (ClinicalTrials.gov's bulk download is one): members in name order through the
readers of their types, named `archive.zip!/member`; bad, odd, oversized and bomb-like members
each one error; runs over an archive resume and shard like runs over files."""

from __future__ import annotations

import json
import stat
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.config import RunConfig
from pipeline.errors import IngestError
from pipeline.ingest import Document, iter_documents
from pipeline.ingest.archive import EXPANSION_LIMIT
from pipeline.run import Shard, run
from tests.data.make_bad_corpus import study

MEMBERS = {  # name -> content, the readable members of a mixed archive
    "NCT00000002.json": json.dumps(study("NCT00000002")),
    "NCT00000001.json": json.dumps(study("NCT00000001"), indent=2),
    "pages/page.txt": "Inclusion Criteria:\n1. Adults\nExclusion Criteria:\n1. Pregnancy\n",
    "tables/rows.jsonl": '{"nct_id": "NCT00000011", "criteria": "- adults"}\n'
                         '{"nct_id": "NCT00000012", "criteria": "- a"}\n',
    "tables/rows.csv": 'nct_id,criteria\nNCT00000021,"- adults\n- children"\nNCT00000022,- teens\n',
}
IGNORED = {".hidden.json": "{", "__MACOSX/._NCT00000001.json": "\x00\x05", "readme.xml": "<x/>"}


def _zip(path: Path, members: dict[str, str | bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return path


def _outline(items: list[Document | IngestError]) -> list[str]:
    return [f"{i.source.path}#{i.source.row}:{i.doc_id}" if isinstance(i, Document) else f"{i.path}: {i.message}"
            for i in items]


def test_members_are_read_in_name_order_like_the_same_files_in_a_folder(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "ctg-studies.json.zip", {**MEMBERS, **IGNORED, "empty-dir/": ""})
    folder = tmp_path / "folder"
    for name, content in MEMBERS.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(content, encoding="utf-8")
    from_zip = list(iter_documents([archive]))
    from_folder = list(iter_documents([folder]))
    assert all(isinstance(item, Document) for item in from_zip + from_folder)
    renamed = [replace(d, source=d.source.model_copy(update={"path": d.source.path.replace(
        str(folder), f"{archive}!")})) for d in from_folder if isinstance(d, Document)]
    assert from_zip == renamed
    assert _outline(from_zip) == [f"{archive}!/{member}" for member in (
        "NCT00000001.json#1:NCT00000001", "NCT00000002.json#1:NCT00000002", "pages/page.txt#None:page",
        "tables/rows.csv#1:NCT00000021", "tables/rows.csv#2:NCT00000022",
        "tables/rows.jsonl#1:NCT00000011", "tables/rows.jsonl#2:NCT00000012")]


def test_a_bad_member_is_one_error_and_the_others_are_read(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "a.zip", {"NCT1.json": json.dumps(study("NCT00000001")),
                                        "NCT2.json": '{"protocolSection": ',
                                        "NCT3.json": json.dumps(study("NCT00000003")), "NCT4.txt": b"\x00\x01binary",
                                        "NCT5.jsonl": b'{"nct_id": "NCT5", "criteria": "- caf\xe9"}\n'})
    assert _outline(list(iter_documents([archive]))) == [
        f"{archive}!/NCT1.json#1:NCT00000001",
        f"{archive}!/NCT2.json: invalid JSON at line 1 column 21: Expecting value",
        f"{archive}!/NCT3.json#1:NCT00000003",
        f"{archive}!/NCT4.txt: binary file (contains NUL bytes), not a text document",
        f"{archive}!/NCT5.jsonl: row 1: not valid UTF-8: byte 0xe9 at byte 37 of the row",
    ]


def test_members_over_the_limit_or_expanding_like_a_bomb_are_stopped(tmp_path: Path) -> None:
    bomb = '{"studies": [' + " " * 5_000_000 + "]}"  # deflates about 1,000 times
    archive = _zip(tmp_path / "a.zip", {"bomb.json": bomb, "long.txt": "Inclusion Criteria:\n" + "- adults\n" * 200,
                                        "rows.jsonl": "".join(json.dumps({"nct_id": f"NCT{n}", "criteria": "- adults"})
                                                              + "\n" for n in range(100)),
                                        "study.json": json.dumps(study("NCT00000001"))})
    compressed = zipfile.ZipFile(archive).getinfo("bomb.json").compress_size
    assert compressed * EXPANSION_LIMIT < len(bomb) // 5
    items = list(iter_documents([archive], max_bytes=1000))
    assert _outline(items) == [
        f"{archive}!/bomb.json: member decompresses to more than {EXPANSION_LIMIT * compressed:,} bytes "
        f"({EXPANSION_LIMIT} times its compressed size: a zip bomb?): reading stopped",
        f"{archive}!/long.txt: file is over the 1,000-byte limit (--max-bytes)",
        *[f"{archive}!/rows.jsonl#{n + 1}:NCT{n}" for n in range(100)],  # the member is bigger than max_bytes,
        f"{archive}!/study.json#1:NCT00000001",                           # each row is not
    ]


def test_odd_names_and_members_that_are_not_files_are_reported_not_read(tmp_path: Path) -> None:
    good = json.dumps(study("NCT00000001"))
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w") as archive, pytest.warns(UserWarning, match="Duplicate name"):
        for name in ("../escape.json", "/absolute.json", "line\nbreak.json", "a//b.json", "inner.zip", "ok.json",
                     "ok.json"):
            archive.writestr(name, good)
        link = zipfile.ZipInfo("link.json")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    outline = _outline(list(iter_documents([path])))
    assert outline == [
        f"{path}!//absolute.json: member name '/absolute.json' is an absolute path or holds a backslash: not read",
        f"{path}!/../escape.json: member name '../escape.json' holds an empty, '.' or '..' part: not read",
        f"{path}!/a//b.json: member name 'a//b.json' holds an empty, '.' or '..' part: not read",
        f"{path}!/inner.zip: an archive inside the archive: not read",
        f"{path}!/line\nbreak.json: member name 'line\\nbreak.json' holds a control character: not read",
        f"{path}!/link.json: member is a symbolic link: not read",
        f"{path}!/ok.json#1:NCT00000001",
        f"{path}!/ok.json: a second member of the same name: not read",
    ]


def test_corrupt_and_fake_archives(tmp_path: Path) -> None:
    content = json.dumps(study("NCT00000001"))
    stored = _zip(tmp_path / "stored.zip", {"a.json": content, "b.json": content.replace("01", "02")},
                  compression=zipfile.ZIP_STORED)
    raw = stored.read_bytes()
    at = raw.index(b"NCT00000002")
    stored.write_bytes(raw[:at] + b"NCT00000003" + raw[at + 11:])  # b.json's data no longer matches its CRC
    (tmp_path / "fake.zip").write_text("not an archive", encoding="utf-8")
    _zip(tmp_path / "xml.zip", {"a.xml": "<x/>", "b.xml": "<y/>"})
    _zip(tmp_path / "empty.zip", {})
    items = list(iter_documents([stored, tmp_path / "fake.zip", tmp_path / "xml.zip", tmp_path / "empty.zip"]))
    assert _outline(items) == [
        f"{stored}!/a.json#1:NCT00000001",
        f"{stored}!/b.json: corrupt or unreadable member: Bad CRC-32 for file 'b.json'",
        f"{tmp_path / 'fake.zip'}: not a readable zip archive: File is not a zip file",
        f"{tmp_path / 'xml.zip'}: no supported input files in this archive (reads .csv, .json, .jsonl, .md, .txt; "
        "found 2 .xml)",
        f"{tmp_path / 'empty.zip'}: no input files in this archive (reads .csv, .json, .jsonl, .md, .txt)",
    ]


def test_a_run_over_an_archive_resumes_and_shards_like_one_over_files(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "a.zip", {f"NCT{n:08d}.json": json.dumps(study(f"NCT{n:08d}")) for n in range(40)})
    config = RunConfig(backend="none")
    whole = run([archive], tmp_path / "whole", config)
    assert (whole.documents, whole.resumed) == (40, 0)
    records = (tmp_path / "whole" / "records.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["source"]["path"] for line in records] == [
        f"{archive}!/NCT{n:08d}.json" for n in range(40)]
    again = run([archive], tmp_path / "whole", config)
    assert (again.documents, again.resumed) == (40, 40)
    assert (tmp_path / "whole" / "records.jsonl").read_text(encoding="utf-8").splitlines() == records
    shards = [run([archive], tmp_path / f"shard{index}", config, shard=Shard(index, 2)) for index in (1, 2)]
    assert sum(shard.documents for shard in shards) == 40
    ids = [json.loads(line)["doc_id"] for index in (1, 2)
           for line in (tmp_path / f"shard{index}" / "records.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted(ids) == [f"NCT{n:08d}" for n in range(40)]
