"""Split an eligibility-criteria section into criteria with exact offsets.

Registry text is messy, so the splitter works line by line with a few explicit rules:

- Lines break at `\\n`, `\\r\\n` or a bare `\\r`, and nowhere else.
- Headers (`Inclusion Criteria:`, `Key Exclusion Criteria:`, `Subjects will be included if:`, a lone
  `Inclusion`, ...; see `headers.py`) set the kind; text glued after a header's colon
  (`Inclusion Criteria:1. Age ...`) is read as its own line. ALL-CAPS sub-headings ending in a colon
  (`DISEASE CHARACTERISTICS:`) are headings, not criteria.
- A line starting with a list marker (`1.` `1)` `(1)` `-` `*` `•` `a)` `ii.` `- 1.`) opens an item.
  Its level comes from the marker's style and indentation: a style already open at that indent is a
  sibling, anything else nests under the current item (at most `MAX_DEPTH` levels deep). A `1.`
  after a `1.` of the same list is a sibling (markdown numbers every item `1.`). Numbers must
  continue their list (or restart at 1) unless the previous line ended a sentence, so a wrapped
  `4 weeks ...` or `E. coli` at a line start stays inside its item; a number over 999 must always
  continue its list.
- A line without a marker continues the current item, except (a) after a blank line when it is
  indented less than the item's text, (b) in lists with no markers at all, where a new line is a new
  item unless it reads as a wrapped line (starts with a lowercase word, or the text is hard-wrapped
  at a fixed width and the previous line did not end a sentence).
- A criterion's span runs from its first character after the marker to the end of its last line,
  trailing blanks excluded; children have their own spans, so no text is counted twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pipeline.schema import Criterion, CriterionKind
from pipeline.segment.headers import match_header

_SUBHEADING = re.compile(r"^[A-Z][A-Z0-9 ,/&()'\-]{2,60}:\s*$")
_BULLETS = "-*•●○◦▪■‣·–—"
_MARKER = re.compile(
    rf"""^(?:
        (?P<bullet>[{_BULLETS}])(?:[ \t]*(?P<bnum>\d{{1,6}})[.)])?
      | \((?P<pnum>\d{{1,6}})\)\.?
      | (?P<num>\d{{1,6}})(?P<nsep>[.)])(?!\d)
      | \((?P<palpha>[a-zA-Z])\)
      | (?P<roman>(?:i{{1,3}}|iv|vi{{0,3}}|ix|x))(?P<rsep>[.)])
      | (?P<alpha>[a-zA-Z])(?P<asep>[.)])
    )(?:[ \t]+|$)""",
    re.VERBOSE,
)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# Deeper than this, a marker is a sibling of the deepest item: real lists nest three or four levels,
# and a machine-made list must not build a tree deep enough to exhaust the stack.
MAX_DEPTH = 8
# Numbers this large (years, doses) open an item only where they continue a list.
_LARGEST_FREE_ORDINAL = 999
_SENTENCE_END = re.compile(r"[.;:!?。；]\s*$")
_LOWER_WORD = re.compile(r"^[a-z][a-z\-']*(?:[\s,;.)]|$)")


@dataclass
class Line:
    start: int
    end: int
    text: str
    indent: int


@dataclass
class _Item:
    kind: CriterionKind
    style: str
    indent: int
    text_indent: int
    ordinal: int | None
    start: int | None
    end: int
    parent: _Item | None
    children: list[_Item] = field(default_factory=list)


@dataclass
class Section:
    """What the splitter found: criteria plus the header spans it consumed (for diagnostics)."""

    criteria: list[Criterion]
    headers: list[tuple[int, int]]
    warnings: list[str]


def split_lines(text: str, start: int, end: int) -> list[Line]:
    """Lines of text[start:end] with absolute offsets, broken at `\\n`, `\\r\\n` or a bare `\\r`."""
    lines: list[Line] = []
    position = start
    while position < end:
        match = _LINE_BREAK.search(text, position, end)
        line_end = end if match is None else match.start()
        content_end = line_end
        while content_end > position and text[content_end - 1] in " \t\f\v":
            content_end -= 1
        raw = text[position:content_end]
        stripped = raw.lstrip(" \t\f\v\ufeff\u00a0")
        lines.append(Line(position + len(raw) - len(stripped), content_end, stripped, len(raw) - len(stripped)))
        position = end if match is None else match.end()
    return lines


def _marker_style(match: re.Match[str]) -> tuple[str, int | None]:
    """A marker's style key (what makes two items siblings) and its ordinal, if it has one."""
    g = match.groupdict()
    if g["bullet"]:
        return (f"bullet{g['bullet']}num", int(g["bnum"])) if g["bnum"] else (f"bullet{g['bullet']}", None)
    if g["pnum"]:
        return "(num)", int(g["pnum"])
    if g["num"]:
        return f"num{g['nsep']}", int(g["num"])
    if g["palpha"]:
        return "(alpha)", ord(g["palpha"].lower()) - 96
    if g["roman"]:
        return f"roman{g['rsep']}", _roman(g["roman"])
    return f"alpha{g['asep']}{'A' if g['alpha'].isupper() else 'a'}", ord(g["alpha"].lower()) - 96


def _roman(numeral: str) -> int:
    values = {"i": 1, "v": 5, "x": 10}
    total = 0
    for current, following in zip(numeral, [*numeral[1:], ""], strict=True):
        value = values[current]
        total += -value if following and values[following] > value else value
    return total


def _hard_wrap_width(lines: list[Line]) -> int | None:
    """The column a text is hard-wrapped at, if it looks wrapped (several lines near one width)."""
    widths = sorted((line.indent + len(line.text) for line in lines if line.text), reverse=True)
    if len(widths) < 3 or not 50 <= widths[0] <= 140:
        return None
    near = [w for w in widths if w >= widths[0] * 0.85]
    return widths[0] if len(near) >= 2 else None


class _Splitter:
    def __init__(self, text: str, default_kind: CriterionKind, one_per_line: bool) -> None:
        self.text = text
        self.kind: CriterionKind = default_kind
        self.one_per_line = one_per_line
        self.roots: list[_Item] = []
        self.stack: list[_Item] = []
        self.headers: list[tuple[int, int]] = []
        self.saw_header = False
        self.previous: Line | None = None
        self.blank_before = False
        self.wrap_width: int | None = None

    def run(self, lines: list[Line]) -> None:
        self.wrap_width = None if self.one_per_line else _hard_wrap_width(lines)
        for line in lines:
            if not line.text:
                self.blank_before = True
                continue
            self.feed(line)
            self.previous = line
            self.blank_before = False

    def feed(self, line: Line) -> None:
        header = match_header(line.text)
        if header is not None:
            self.open_section(header.kind, line.start, line.start + header.end)
            rest = line.text[header.end:]
            if rest.strip():
                self.feed(Line(line.start + header.end, line.end, rest, line.indent))
            return
        if _SUBHEADING.match(line.text) and not _MARKER.match(line.text):
            self.headers.append((line.start, line.end))
            self.stack.clear()
            return
        marker = _MARKER.match(line.text)
        if marker and not self.one_per_line:
            style, ordinal = _marker_style(marker)
            if self.accepts_marker(style, ordinal, line.indent):
                self.open_item(style, ordinal, line, marker.end())
                return
        if self.one_per_line or self.starts_unmarked_item(line):
            self.open_item("none", None, line, marker.end() if marker else 0)
        else:
            self.extend(line)

    def open_section(self, kind: str, start: int, end: int) -> None:
        self.kind = "inclusion" if kind == "inclusion" else "exclusion"
        self.headers.append((start, end))
        self.saw_header = True
        self.stack.clear()

    def sibling_level(self, style: str, indent: int) -> int | None:
        for depth in range(len(self.stack) - 1, -1, -1):
            item = self.stack[depth]
            if item.style == style and abs(item.indent - indent) <= 1:
                return depth
        return None

    def accepts_marker(self, style: str, ordinal: int | None, indent: int) -> bool:
        """Reject markers that are really wrapped text: numbering must continue or restart."""
        if ordinal is not None and ordinal > _LARGEST_FREE_ORDINAL:
            depth = self.sibling_level(style, indent)
            return depth is not None and self.stack[depth].ordinal == ordinal - 1
        if ordinal is None or not self.stack:
            return ordinal in (None, 1) or not self.stack or self.previous_ended_sentence()
        depth = self.sibling_level(style, indent)
        previous = self.stack[depth].ordinal if depth is not None else None
        if previous is not None:
            if ordinal in (previous + 1, 1):
                return True
        elif ordinal == 1:
            return True
        return self.previous_ended_sentence() or self.blank_before

    def previous_ended_sentence(self) -> bool:
        return self.previous is None or bool(_SENTENCE_END.search(self.previous.text))

    def starts_unmarked_item(self, line: Line) -> bool:
        current = self.stack[-1] if self.stack else None
        if current is None or (current.start is None and current.style != "none"):
            return current is None
        if self.blank_before:
            return current.style == "none" or line.indent < current.text_indent
        if current.style != "none":
            return False
        return not self.reads_as_wrapped(line)

    def reads_as_wrapped(self, line: Line) -> bool:
        previous = self.previous
        if previous is None:
            return False
        if self.wrap_width is not None:
            previous_width = previous.indent + len(previous.text)
            return not _SENTENCE_END.search(previous.text) or previous_width >= 0.8 * self.wrap_width
        return bool(_LOWER_WORD.match(line.text)) and not _SENTENCE_END.search(previous.text)

    def open_item(self, style: str, ordinal: int | None, line: Line, marker_end: int) -> None:
        while self.stack and self.stack[-1].indent > line.indent + 1:
            self.stack.pop()
        depth = self.sibling_level(style, line.indent) if style != "none" else None
        if depth is not None and not (ordinal == 1 and self.stack[depth].ordinal not in (None, 0, 1)):
            del self.stack[depth:]
        elif style == "none" or (self.stack and self.stack[-1].style == "none"
                                 and line.indent <= self.stack[-1].indent):
            while self.stack and self.stack[-1].indent >= line.indent:
                self.stack.pop()
        if len(self.stack) >= MAX_DEPTH:
            del self.stack[MAX_DEPTH - 1:]
        parent = self.stack[-1] if self.stack else None
        content = line.text[marker_end:]
        start = line.start + marker_end + (len(content) - len(content.lstrip())) if content.strip() else None
        item = _Item(self.kind, style, line.indent, line.indent + marker_end, ordinal, start, line.end, parent)
        (parent.children if parent else self.roots).append(item)
        self.stack.append(item)

    def extend(self, line: Line) -> None:
        item = self.stack[-1]
        if item.start is None:
            item.start = line.start
            item.text_indent = line.indent
        item.end = line.end


def split_criteria(
    text: str, start: int, end: int, default_kind: CriterionKind = "inclusion", *, one_per_line: bool = False
) -> Section:
    """Criteria found in text[start:end]; ids are `inc-N` / `exc-N`, sub-items `inc-N.M`."""
    splitter = _Splitter(text, default_kind, one_per_line)
    splitter.run(split_lines(text, start, end))
    criteria = _number(splitter.roots, text)
    warnings: list[str] = []
    if criteria and not splitter.saw_header and not one_per_line:
        warnings.append(f"no inclusion/exclusion header: {len(criteria)} criteria read as {default_kind}")
    return Section(criteria, splitter.headers, warnings)


def _number(roots: list[_Item], text: str) -> list[Criterion]:
    """Criteria in document order with positional ids; an item without text of its own (a bare
    marker) passes its children up a level. Iterative, so no list is too deep to number."""
    out: list[Criterion] = []
    counters: dict[str, int] = {}
    pending: list[tuple[_Item, str | None]] = [(item, None) for item in reversed(roots)]
    while pending:
        item, parent_id = pending.pop()
        item_id = parent_id
        if item.start is not None:
            prefix = parent_id or ("inc" if item.kind == "inclusion" else "exc")
            counters[prefix] = counters.get(prefix, 0) + 1
            item_id = f"{prefix}{'.' if parent_id else '-'}{counters[prefix]}"
            out.append(Criterion(id=item_id, kind=item.kind, text=text[item.start:item.end], start=item.start,
                                 end=item.end, parent=parent_id))
        pending.extend((child, item_id) for child in reversed(item.children))
    return out
