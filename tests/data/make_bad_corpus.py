"""Write the malformed-input corpus `tests/data/bad/` and what each file must give.

Every file holds good rows beside the bad ones, so a test can check both halves of the promise:
the good documents still come through, and each bad row or file gives one error naming the file,
the row and the problem. Expectations are written here by hand, next to the input they describe,
never taken from pipeline output. Inputs a git checkout cannot hold (FIFOs, symlink cycles, empty
directories) and large ones (a cell over the csv module's 131,072-character limit) are made in the
tests themselves.

    python tests/data/make_bad_corpus.py     # rewrites tests/data/bad/ and tests/data/bad_expected.json
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

BAD = Path(__file__).resolve().parent / "bad"
EXPECTED = BAD.parent / "bad_expected.json"
CRITERIA = "Inclusion Criteria:\n- adults aged 18 to 75\n\nExclusion Criteria:\n- pregnancy"


def study(nct_id: str, **modules: Any) -> dict[str, Any]:
    section: dict[str, Any] = {"identificationModule": {"nctId": nct_id, "briefTitle": f"Study {nct_id}"},
                               "eligibilityModule": {"eligibilityCriteria": CRITERIA}}
    section.update(modules)
    return {"protocolSection": section}


def expect(documents: list[str], errors: list[tuple[int | None, str]] | None = None,
           warnings: dict[str, str] | None = None, kinds: dict[str, str] | None = None) -> dict[str, Any]:
    """What a file must give: its documents in order, its errors as (row, words in the message),
    a warning text per document, and optionally each document's criterion kinds in order
    (`I` inclusion, `E` exclusion)."""
    return {"documents": documents, "errors": [list(error) for error in errors or []],
            "warnings": warnings or {}, "kinds": kinds or {}}


def jsonl(*rows: str) -> str:
    return "".join(row + "\n" for row in rows)


def corpus() -> dict[str, tuple[str, dict[str, Any]]]:
    """file name -> (content, expectation)."""
    good = '{"nct_id": "%s", "criteria": "- adults"}'
    files: dict[str, tuple[str, dict[str, Any]]] = {
        # A JSON escape of half a surrogate pair decodes to a string that cannot be written as UTF-8.
        "lone_surrogate.jsonl": (
            jsonl(good % "NCT10000001", '{"nct_id": "NCT10000002", "criteria": "- adults \\ud800"}',
                  good % "NCT10000003"),
            expect(["NCT10000001", "NCT10000003"], [(2, "criteria column 'criteria' holds a lone surrogate \\ud800")]),
        ),
        "lone_surrogate_ctgov.json": (
            json.dumps([study("NCT10000011"),
                        study("NCT10000012", eligibilityModule={"eligibilityCriteria": "- adults \udc00"})]),
            expect(["NCT10000011"], [(2, "eligibilityCriteria holds a lone surrogate \\udc00")]),
        ),
        # CT.gov studies of the wrong shape: the study's own fields are errors, metadata is warned about.
        "wrong_shapes_ctgov.json": (
            json.dumps([
                study("NCT10000021", eligibilityModule=None),
                {"protocolSection": {"identificationModule": "NCT10000022"}},
                study("NCT10000023", statusModule=["RECRUITING"]),
                study("NCT10000024", sponsorCollaboratorsModule={"collaborators": "Acme"}),
                study("NCT10000025", contactsLocationsModule={"locations": "Paris"}),
                study("NCT10000026", identificationModule={"nctId": "NCT10000026", "briefTitle": 42}),
                study("NCT10000027", designModule={"phases": "PHASE2"}),
                study("NCT10000028", eligibilityModule={"eligibilityCriteria": ["- adults"]}),
            ]),
            expect(["NCT10000021", "NCT10000023", "NCT10000024", "NCT10000025", "NCT10000026", "NCT10000027"],
                   [(2, "protocolSection.identificationModule is text, expected an object"),
                    (8, "eligibilityCriteria is a list, expected text")],
                   {"NCT10000021": "study has no eligibilityCriteria text",
                    "NCT10000023": "protocolSection.statusModule is a list, expected an object",
                    "NCT10000024": "sponsorCollaboratorsModule.collaborators is text, expected a list",
                    "NCT10000025": "contactsLocationsModule.locations is text, expected a list",
                    "NCT10000026": "identificationModule.briefTitle is a number, expected text",
                    "NCT10000027": "designModule.phases is text, expected a list"}),
        ),
        "wrong_types.jsonl": (
            jsonl('{"nct_id": "NCT10000031", "criteria": 7}',
                  '{"nct_id": ["NCT10000032"], "criteria": "- adults"}',
                  '{"nct_id": "NCT10000033", "criteria": "- adults", "phase": {"name": "2"}}',
                  '{"nct_id": "NCT10000034", "criteria": "- adults", "diseases": [{"name": "asthma"}]}',
                  "[1, 2]"),
            expect(["NCT10000033", "NCT10000034"],
                   [(1, "criteria column 'criteria' is a number, expected text"),
                    (2, "id column 'nct_id' is a list, expected text or a number"),
                    (5, "row is a list, expected a JSON object")],
                   {"NCT10000033": "column 'phase' is an object", "NCT10000034": "column 'diseases' is a list"}),
        ),
        # U+2028, U+2029 and U+0085 are legal inside JSON strings: they are not line breaks.
        "line_separators.jsonl": (
            jsonl('{"nct_id": "NCT10000041", "criteria": "- adults\u2028aged 18"}',
                  '{"nct_id": "NCT10000042", "criteria": "- adults\u2029- children\u0085"}',
                  "{broken",
                  good % "NCT10000044"),
            expect(["NCT10000041", "NCT10000042", "NCT10000044"], [(3, "invalid JSON")]),
        ),
        "extra_fields.csv": (
            "nct_id,criteria\nNCT10000051,- adults\nNCT10000052,- adults, aged 18,extra\nNCT10000053,- adults\n",
            expect(["NCT10000051", "NCT10000053"], [(2, "4 fields but the header has 2 (an unquoted comma in a cell?) "
                                                        "(line 3)")]),
        ),
        # The quote opened in row 2 never closes: rows 3 and 4 must still be read.
        "unterminated_quote.csv": (
            'nct_id,criteria\nNCT10000061,"- adults"\nNCT10000062,"- adults\nNCT10000063,- adults\n'
            "NCT10000064,- adults\n",
            expect(["NCT10000061", "NCT10000063", "NCT10000064"],
                   [(2, "unterminated quote: the quoted cell opened here never closes (line 3)")]),
        ),
        # An unterminated quote in a multi-line cell: its other lines are part of the one error.
        "unterminated_multiline.csv": (
            'nct_id,criteria\nNCT10000065,"- adults"\nNCT10000066,"- adults\n- children\n- teens\n'
            "NCT10000067,- adults\n",
            expect(["NCT10000065", "NCT10000067"],
                   [(2, "unterminated quote: the quoted cell opened here never closes (line 3); the 2 record(s) after "
                        "it, to line 5, did not parse either; reading resumed at line 6")]),
        ),
        # A cell's line breaks without quotes: the lines that cannot be rows are one error.
        "unquoted_line_break.csv": (
            "nct_id,criteria\nNCT10000068,- adults\nNCT10000069,- adults\n- children\n- teens\nNCT10000070,- adults\n",
            expect(["NCT10000068", "NCT10000069", "NCT10000070"],
                   [(3, "1 field(s), too few to reach the criteria column 'criteria' (column 2 of 2; an unquoted line "
                        "break in a cell?) (line 4); the 1 record(s) after it, to line 5, did not parse either; "
                        "reading resumed at line 6")]),
        ),
        # A stray quote pairs with a later row's: that row is read after the broken one.
        "stray_quote.csv": (
            'nct_id,criteria\nNCT10000071,"- adults\nNCT10000072,"- children"\nNCT10000073,- adults\n',
            expect(["NCT10000072", "NCT10000073"], [(1, "malformed CSV")]),
        ),
        "semicolons.csv": (
            "nct_id;criteria\nNCT10000081;- adults\nNCT10000082;- children\n",
            expect([], [(None, "among the 1 column(s) found: 'nct_id;criteria'; the header looks ';'-separated")]),
        ),
        "no_criteria_column.csv": (
            "nct_id,title,phase\nNCT10000091,A study,Phase 2\nNCT10000092,Another,Phase 3\n",
            expect([], [(None, "among the 3 column(s) found: 'nct_id', 'title', 'phase'; name the column with "
                               "--text-field")]),
        ),
        # Old Mac line endings: each criterion is its own line, and exclusions stay exclusions.
        "bare_cr.txt": (
            "A bare CR page\rCriteria\rInclusion Criteria:\r1. Adults\r2. Children\rExclusion Criteria:\r"
            "1. Pregnancy\r",
            expect(["bare_cr"], kinds={"bare_cr": "IIE"}),
        ),
        # A label word ending a wrapped line ("(Phase") inside the criteria does not end them.
        "wrapped_label.txt": (
            "Wrapped label page\nCriteria\nInclusion Criteria:\n1. Adults in the expansion cohort (Phase\n2 only)\n"
            "2. Measurable disease\nExclusion Criteria:\n1. Pregnancy\n",
            expect(["wrapped_label"], kinds={"wrapped_label": "IIE"}),
        ),
        # Markdown numbers every item "1.": siblings, never a 1,500-deep tree.
        "markdown_ones.txt": (
            "Inclusion Criteria:\n" + "".join(f"1. item {i}\n" for i in range(1500)),
            expect(["markdown_ones"], kinds={"markdown_ones": "I" * 1500}),
        ),
        "long_list.txt": (
            "Exclusion Criteria:\n" + "".join(f"{i}. item {i}\n" for i in range(1, 1201)),
            expect(["long_list"], kinds={"long_list": "E" * 1200}),
        ),
        # A download cut inside the third study: the two before it are read, the cut is said.
        "truncated_ctgov.json": (
            json.dumps({"studies": [study("NCT10000101"), study("NCT10000102"), study("NCT10000103")]})[:-60],
            expect(["NCT10000101", "NCT10000102"], [(3, "the file ends inside this study (truncated?)")]),
        ),
        # An opening bracket too many in the second study: the third is still found and read.
        "garbage_ctgov.json": (
            json.dumps([study("NCT10000111"), study("NCT10000112"), study("NCT10000113")]).replace(
                '"identificationModule": {"nctId": "NCT10000112"', '"identificationModule": [{"nctId": "NCT10000112"'),
            expect(["NCT10000111", "NCT10000113"], [(2, "Expecting ',' delimiter; reading resumed at the next study")]),
        ),
        # A byte that is not UTF-8 (written as the bytes of an encoded surrogate) costs its row only.
        "not_utf8.csv": (
            "nct_id,criteria\nNCT10000121,- adults\nNCT10000122,- caf\udce9\nNCT10000123,- teens\n",
            expect(["NCT10000121", "NCT10000123"], [(2, "not valid UTF-8: byte 0xed (line 3)")]),
        ),
        "not_a_study.json": ('{"hello": "world"}', expect([], [(1, "study has no protocolSection object")])),
    }
    return files


def main() -> None:
    if BAD.exists():
        shutil.rmtree(BAD)
    BAD.mkdir(parents=True)
    expectations = {}
    for name, (content, expectation) in corpus().items():
        (BAD / name).write_bytes(content.encode("utf-8", "surrogatepass"))
        expectations[name] = expectation
    EXPECTED.write_text(json.dumps(expectations, indent=1, ensure_ascii=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
