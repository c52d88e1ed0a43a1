"""Tag one plain string: entities of the 8 Chia domain types with values, time windows and negation.

Steps, each a small function:
1. phrase lookup: greedy longest match of token n-grams against `Lexicon.phrases` (one dict hit per word);
2. heads: words that are usually inside an entity ("carcinoma", "inhibitor") extend or create spans, plus
   suffix morphology for words never seen in training ("-itis" Condition, "-ectomy" Procedure, "-mab" Drug);
   adjacent words join into one span unless two lexicon phrases of different types meet, and the last
   word (the head) decides the type: "renal biopsy" is a Procedure;
3. context rules: age/sex words are a Person (not in an eponym, 'Child-Pugh'); tobacco use and life
   expectancy are Observations; a Procedure/Observation name followed by a threshold, or a name beside a
   qualitative result ("HIV positive"), is a Measurement; an intervention head ("therapy", "surgery") makes
   a Procedure, a device head ("stent") a Device; a threshold right after unknown words makes them a
   Measurement ("IgG<4g/L"); an age phrase with no age word is itself the Person ("18 to 75 years old");
   phrases of a known shape name their type (language ability, care settings: `PATTERN_ENTITIES`);
   nothing inside a numeric time window is an entity;
4. attachments (evals/GUIDELINE.md sections 5-7): the nearest value in the clause goes to a Measurement,
   Person or Observation (qualitative results to Measurements only, doses to Drugs); a time window with a
   length anywhere in the clause, else the nearest bare cue ("History of"); negation scopes set `negated`.
Offsets are into the input string; `Backend` shifts them to `record.source_text`.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, replace
from functools import partial
from itertools import pairwise
from typing import Any

from pipeline.extract.rules.crf import CrfTagger, bio_labels, sequence_features
from pipeline.extract.rules.lexicon import STOPWORDS, Lexicon, PreparedText, Token, tokenize, word_set
from pipeline.extract.rules.negation import find_negations, is_negated
from pipeline.extract.rules.patterns import pattern_entities
from pipeline.extract.rules.spans import SpanIndex
from pipeline.extract.rules.temporal import TemporalMatch, find_temporals
from pipeline.extract.rules.values import DOSE_UNITS, ValueMatch, find_values

HEAD_RUN_MAX = 5
VALUE_GAP = 25
TEMPORAL_GAP = 150
WINDOW_GAP = 150
VALUE_TYPES = frozenset({"Measurement", "Person", "Observation", "Drug"})  # Drug: doses only
PERSON_WORDS = frozenset(
    """
    age aged ages old year female male females males woman women man men child
    children adult adults boy boys girl girls infant infants adolescent adolescents gender sex
    """.split()  # noqa: SIM905
)
PROCEDURE_HEADS = frozenset(
    """
    therapy therapie treatment surgery transplantation transplant resection procedure implantation
    intervention biopsy dialysis vaccination immunization radiotherapy chemotherapy irradiation
    """.split()  # noqa: SIM905
)
BEHAVIOUR_WORDS = word_set("smoking smoke smoked smoker smokers tobacco cigarette cigarettes cigar cigars expectancy")
USED_SUBSTANCES = word_set("nicotine alcohol")
USE_WORDS = word_set("use consumption intake drinking")
BEHAVIOUR_CUES = BEHAVIOUR_WORDS | USED_SUBSTANCES
NOT_BEHAVIOUR = word_set(
    "cessation replacement therapy treatment abuse abuser dependence disorder disorders withdrawal disease"
    " alcoholic related induced"
)
DEVICE_HEADS = word_set(  # GUIDELINE 3: implanted or used devices ('cardiac stent', 'joint prosthesis')
    "device devices stent stents catheter catheters pacemaker pacemakers defibrillator defibrillators prosthesis"
    " prostheses implant implants electrode electrodes iud iuds"
)
NOT_MEASUREMENT_AFTER = frozenset(["age", "aged", "old", "year", "years"])
SEX_WORDS = frozenset(["female", "females", "male", "males", "woman", "women", "man", "men", "gender", "sex"])
AGE_WORDS = frozenset(["age", "aged", "ages"])
AGE_WORD = re.compile(r"\b(?:" + "|".join(sorted(AGE_WORDS | NOT_MEASUREMENT_AFTER)) + r")\b", re.IGNORECASE)
OLD = re.compile(r"(?:years?\s+)?old", re.IGNORECASE)
LONE_QUALIFIERS = frozenset(
    """
    chronic acute severe active mild moderate uncontrolled significant serious recent congenital acquired
    hereditary historical unit units type types event events acting section sections
    """.split()  # noqa: SIM905
)  # severity, course and origin (Chia Qualifier): part of a name ('chronic kidney disease'), never one alone, nor
# coordinated ('acute or chronic hepatitis'); nor are 'unit' ('6 Wood units' and '2 units of alcohol' are no Visit),
# 'type' ('paranoid type'), 'event' ('in the event that'), 'acting' ('long-acting') and 'section' ('see section 6.2')
BODY_SITES = frozenset(
    """
    heart liver kidney kidneys lung lungs brain skin breast cervix prostate bladder colon pancreas chest uterus
    ovary ovaries stomach spleen thyroid eye eyes blood bone tract head neck scalp face trunk
    """.split()  # noqa: SIM905
) | {"bone marrow", "lymph node", "lymph nodes"}  # Chia has no anatomy type: of ~800 mentions, 4 are an entity alone
LONE_MODIFIERS = LONE_QUALIFIERS | BODY_SITES | frozenset(
    """
    neurological neurologic renal hepatic cardiac cardiovascular pulmonary gastrointestinal psychiatric endocrine
    metabolic hematologic hematological immunologic immunological respiratory toxic
    """.split()  # noqa: SIM905
)  # and body-system adjectives and body sites, kept only when coordinated ('renal or hepatic disease', 'liver or
# kidney disease': Chia's 'renal ... disease'), never when a site 'of (the)' the name before ('... of the breast, ...')
SITE_OF = re.compile(r"\bof\s+(?:the\s+)?$", re.IGNORECASE)
COORDINATION = re.compile(r"\s*(?:,\s*|/)?(?:(?:and/or|or|and)\s+)?")
CONJUNCT_BEFORE = re.compile(  # a word, then a joining comma, slash or conjunction, at the end of the text searched
    r"(?<![\w-])([^\W\d_][^\W\d_-]+(?:-[^\W\d_]+)*)(?:\s*,)?(?:\s*/\s*|\s+(?:and/or|or|and)\s+|\s*,\s*)$"
)
NAME_AND_ABBREVIATION = re.compile(r"(.*\S)\s*\(([A-Z][A-Za-z0-9-]*[A-Z][A-Za-z0-9-]*)\)")
SHARED_HEAD_TYPES = frozenset(["Condition", "Procedure", "Drug", "Device"])  # on Chia CV, the conjuncts of
# Measurement and Observation names were more often not entities than entities
QUALIFIERS = frozenset(
    """
    chronic acute severe active mild moderate uncontrolled significant serious recent known suspected confirmed
    documented stable unstable new other clinically major minor any previous prior current concurrent
    """.split()  # noqa: SIM905
)  # words that grade or place a name in time, never a conjunct of one ('moderate or severe renal impairment')
DRUG_CODE = re.compile(  # a development code ('BIBF 1120', 'OSI-774', 'AMN107'); not 'CA 125' nor 'GOLD 2010'
    r"(?!CA[- ])[A-Z]{2,5}(?:-?\d{3,7}|[- ](?!(?:19|20)\d\d\b)\d{3,7})[A-Z]?"
)  # in HINT the tagger typed 400 of them Drug, 106 otherwise, nearly all drugs in fact
SURVIVAL = "survival"  # the values an Observation of how long a patient will live may carry (`_usable_values`)
SURVIVAL_NAME = re.compile(r"surviv|expectancy", re.IGNORECASE)
WILLINGNESS = re.compile(r"(?:un)?willing(?:ness)?\b", re.IGNORECASE)  # GUIDELINE 2: no entity ('willing to use')
PROTOCOL = re.compile(  # GUIDELINE 2: consent, compliance and taking part in a study are no entity
    r"\b(?:consent|assent|participat\w*|complian\w*|comply|enrol\w*|candidates?|preclud\w*)\b"
    r"|\b(?:(?:clinical|investigational|research|another|other) (?:trials?|stud(?:y|ies))|this (?:study|trial))\b"
    r"(?!\s+(?:drugs?|medications?|agents?|products?|treatments?|therap\w*|devices?))",  # 'this study drug' is one
    re.IGNORECASE,
)
NOT_CONJUNCTS = STOPWORDS | QUALIFIERS | LONE_QUALIFIERS
ADVERB = re.compile(r"[a-z]{4,}ally", re.IGNORECASE)  # 'Histologically', 'surgically': how, not what
AGE_PHRASE = re.compile(r"(?:old|of age|older|younger)$", re.IGNORECASE)
SHARE_GAP = 30
DIGIT = re.compile(r"\d")
CLAUSE_BREAK = re.compile(r";|\.\s|\n(?!\s*[a-z([<>=≤≥])")  # before lower case or a comparator: a wrapped line
LINE_WRAP = re.compile(r"\s*\n\s*")
BRACKET = re.compile(r"[()\[\]]")
BRACKET_CLOSE = re.compile(r"[^()\[\]\n;]{0,40}?[)\]]")  # the rest of a bracket, on its line


def _same_clause(text: str, start: int, end: int) -> bool:
    """No clause break in text[start:end]. The search may look one character past `end`, at what
    follows the gap: a line break right before 'positive' is a wrapped line, not a new item."""
    found = CLAUSE_BREAK.search(text, start, end + 1)
    return found is None or found.start() >= end


@dataclass(slots=True)
class Tagged:
    """One entity found in a plain string (offsets into that string)."""

    start: int
    end: int
    type: str
    text: str
    negated: bool = False
    value: ValueMatch | None = None
    temporal: TemporalMatch | None = None


def _phrase_matches(text: str, tokens: list[Token], lexicon: Lexicon) -> list[tuple[int, int, str]]:
    """(first token, last token + 1, type) of greedy longest phrase matches; an abbreviation not where it is
    written in lower case (`Lexicon.upper`: 'MET' in 'MET amplification', not 'met' in 'who met the criteria')."""
    return [
        (a, b, typ)
        for a, b, typ in _longest_matches(tokens, lexicon)
        if not (b == a + 1 and tokens[a][2] in lexicon.upper and text[tokens[a][0] : tokens[a][1]].islower())
    ]


def _longest_matches(tokens: list[Token], lexicon: Lexicon) -> list[tuple[int, int, str]]:
    trie, count = lexicon.trie(), len(tokens)
    found = []
    i = 0
    while i < count:
        node, longest, j = trie.get(tokens[i][2]), None, i + 1
        while node is not None:
            if node[0] is not None:
                longest = (j, node[0])
            if not node[1] or j >= count:
                break
            node, j = node[1].get(tokens[j][2]), j + 1
        if longest:
            found.append((i, *longest))
            i = longest[0]
        else:
            i += 1
    return found


def _head_matches(
    tokens: list[Token], phrases: list[tuple[int, int, str]], lexicon: Lexicon
) -> list[tuple[int, int, str]]:
    """Merge phrase matches with adjacent head tokens of the same type; add runs of head tokens."""
    word_types = lexicon.word_types()
    typed: list[str | None] = [word_types[token[2]] for token in tokens]
    group = [-1] * len(tokens)
    for g, (a, b, typ) in enumerate(phrases):
        typed[a:b] = [typ] * (b - a)
        group[a:b] = [g] * (b - a)
    spans: list[tuple[int, int, str]] = []
    k = 0
    while k < len(tokens):
        if typed[k] is None:
            k += 1
            continue
        end, typ = k + 1, typed[k] or ""
        while end < len(tokens) and typed[end] is not None and end - k < HEAD_RUN_MAX + 3 and _joinable(
            tokens, end, group
        ):
            if typed[end] != typ and group[end - 1] != -1 and group[end] != -1:
                break
            typ = typed[end] or typ  # a lone modifier word takes the type of the head after it: 'renal biopsy'
            end += 1
        spans.append((k, end, typ))
        k = end
    return spans


def _joinable(tokens: list[Token], k: int, group: list[int]) -> bool:
    """Token k continues the previous span: same phrase, or adjacent words separated by space/hyphen."""
    if group[k] != -1 and group[k] == group[k - 1]:
        return True
    gap = tokens[k][0] - tokens[k - 1][1]
    return gap <= 1 and tokens[k - 1][2] not in ",;()" and tokens[k][2] not in ",;()"


def _value_after(end: int, text: str, values: SpanIndex[ValueMatch]) -> ValueMatch | None:
    """The first value starting shortly after `end` with no clause break in between."""
    for value in values.near(end, end + VALUE_GAP):
        if value.start >= end and _same_clause(text, end, value.start):
            return value
    return None


def _qualifies(value: ValueMatch) -> bool:
    """A threshold that can qualify a measurement: not a duration, not a count like 'at least one'."""
    if value.is_duration:
        return False
    if value.unit is None:
        return value.comparator != "=" and value.text[-1].isdigit()
    return True


def _score_bound(value: ValueMatch) -> bool:
    """A bound on a score written with the comparator after the number ('MMSE score of 20 or less'):
    good enough to attach, too weak to make a Measurement of the words before it ('2 or more episodes')."""
    return value.comparator in (">=", "<=") and value.text[0].isdigit() and not value.is_duration


def _names_a_person(words: list[Token]) -> bool:
    """An age or sex word names the population, unless it is part of an eponym ('Child-Pugh', 'child-bearing')
    or a modifier makes it a measure of something else ('gestational age', 'postnatal age')."""
    for k, (_, end, norm) in enumerate(words):
        if norm not in PERSON_WORDS:
            continue
        if k + 1 < len(words) and words[k + 1][2] == "-" and words[k + 1][0] == end:
            continue
        if norm in AGE_WORDS and k > 0 and words[k - 1][2] not in PERSON_WORDS:
            continue
        return True
    return False


def _behaviour(words: list[Token]) -> bool:
    """Tobacco or alcohol use and life expectancy are Observations (GUIDELINE 3: 'smoking history',
    'ex-smokers', alcohol use as behaviour, 'life expectancy'); its treatment or disorder is not
    ('smoking cessation', 'alcohol abuse')."""
    if not any(w[2] in BEHAVIOUR_CUES for w in words):
        return False
    norms = {w[2] for w in words}
    return not norms & NOT_BEHAVIOUR and bool(norms & BEHAVIOUR_WORDS or norms & USE_WORDS)


def _context_type(words: list[Token], typ: str, value: ValueMatch | None) -> str:
    """Retype by context: age/sex words are Person; tobacco use and life expectancy are Observations; a test
    name followed by a threshold is a Measurement; a span whose head (last word) names an intervention is a
    Procedure ('hormone therapy'), one whose head names a device a Device ('cardiac stent')."""
    if words[-1][2] in PROCEDURE_HEADS and typ in ("Drug", "Condition"):
        return "Procedure"
    if words[-1][2] in DEVICE_HEADS and typ in ("Drug", "Condition", "Procedure"):
        return "Device"
    if typ in ("Person", "Measurement", "Observation") and _names_a_person(words):
        return "Person"
    if typ != "Person" and _behaviour(words):
        return "Observation"
    if value is not None and _qualifies(value) and typ in ("Procedure", "Observation"):
        return "Measurement"
    return typ


def _a_sign(word: str) -> bool:
    """A lone lower-case character names nothing: '3.5 x 109/ml' ('T', 'N' may be TNM stages)."""
    return len(word) == 1 and not word.isupper()


def _orphan_measurements(
    text: str, tokens: list[Token], spans: list[tuple[int, int, str]], values: list[ValueMatch]
) -> list[tuple[int, int, str]]:
    """A threshold right after unrecognised words ('IgG<4g/L'): up to 3 content words before it."""
    added = []
    span_ends = {end for _, end, _ in spans}
    token_ends = [token[1] for token in tokens]
    for value in values:
        if not _qualifies(value) or any(value.start - gap in span_ends for gap in range(4)):
            continue
        words: list[Token] = []
        for k in range(bisect_right(token_ends, value.start) - 1, -1, -1):
            token = tokens[k]
            _, end, norm = token
            if (words and words[0][0] - end > 1) or (not words and value.start - end > 3):
                break
            if not norm.isalnum() or norm in STOPWORDS or norm.isdigit() or _a_sign(text[token[0] : end]):
                break
            words.insert(0, token)
            if len(words) == 3:
                break
        if words and not {w[2] for w in words} & NOT_MEASUREMENT_AFTER:
            added.append((words[0][0], words[-1][1], "Measurement"))
    return added


WRAP = 40  # the most white space a wrapped line puts between two words (HINT indents by 13)


def _distance(text: str, start: int, end: int) -> int:
    """Characters from `start` to `end`, a line break with the indentation around it counting as one:
    'performance status of\n             =< 2' is as near as on one line."""
    if text.find("\n", start, end) == -1:
        return end - start
    return len(LINE_WRAP.sub(" ", text[start:end]))


def _nearest(start: int, end: int, items: SpanIndex, text: str, gap: int) -> Any:
    """The item closest to the span start:end in the same clause, within `gap` characters (a wrapped line's
    break counting as one; the first in order of start when two are as close)."""
    best, best_gap = None, gap + 1
    for item in items.near(start - gap - WRAP, end + gap + WRAP):
        if item.start >= end:
            between = (end, item.start)
        elif item.end <= start:
            between = (item.end, start)
        else:
            continue
        distance = _distance(text, *between)
        if distance < best_gap and _same_clause(text, *between):
            best, best_gap = item, distance
    return best


def _following(end: int, values: SpanIndex[ValueMatch], text: str) -> ValueMatch | None:
    """The first value after `end` in the same clause, within VALUE_GAP characters."""
    after = [v for v in values.near(end, end + VALUE_GAP) if v.start >= end and v.start - end <= VALUE_GAP]
    return next((v for v in after if _same_clause(text, end, v.start)), None)


def _usable_values(values: list[ValueMatch], windows: SpanIndex[TemporalMatch]) -> dict[str, SpanIndex[ValueMatch]]:
    """Values each entity type may carry: results ('positive') go to Measurements only, doses to Drugs. The length
    of a time window ('T1DM for at least 1 year') is the window's, not a value, except for a survival, which is a
    length ('expected to survive for at least 12 weeks', GUIDELINE 5 as for life expectancy)."""
    values = [v for v in values if v.unit is not None or v.comparator is None or _qualifies(v) or _score_bound(v)]
    free = [v for v in values if not windows.containing(v.start, v.end)] if windows else values
    thresholds = _thresholds(free)
    return {
        "Measurement": SpanIndex(free),
        "Person": thresholds,
        "Observation": thresholds,
        SURVIVAL: thresholds if free is values else _thresholds(values),
        "Drug": SpanIndex([v for v in free if v.unit in DOSE_UNITS]),
    }


def _thresholds(values: list[ValueMatch]) -> SpanIndex[ValueMatch]:
    return SpanIndex([v for v in values if v.comparator is not None])


def _balanced(text: str, span: tuple[int, int, str]) -> tuple[int, int, str]:
    """The span with its brackets paired. It ends before a bracket it closes without opening ('WBC) count'
    -> 'WBC', from 'white blood cell (WBC) count'); a bracket it opens is closed when the closing one
    follows soon on the same line ('HbA1c (glycosylated haemoglobin' -> '... haemoglobin)'), else the span
    ends before it ('HbA1c (as measured by the central laboratory on the day of screening)' -> 'HbA1c')."""
    start, end, typ = span
    if not BRACKET.search(text, start, end):
        return span
    opened = []
    for i in range(start, end):
        if text[i] in "([":
            opened.append(i)
        elif text[i] in ")]":
            if not opened:
                end = i
                break
            opened.pop()
    if opened:
        closing = BRACKET_CLOSE.match(text, end)
        end = closing.end() if closing and len(opened) == 1 else opened[0]
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end, typ


def _drop_non_entities(text: str, spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Leave out what names no entity on its own: a lone qualifier or body-system adjective ('Chronic',
    'renal'; kept when coordinated with the next name, 'renal or hepatic disease', where Chia annotates a
    discontinuous entity per conjunct), an adverb ('Histologically'), a lone lower-case character or stop
    word, a willingness ('willing to use') or a name for consent, compliance or taking part in a study, and
    'old' after an age word ('Age 18 years old': one Person)."""
    kept: list[tuple[int, int, str]] = []
    for n, (start, end, typ) in enumerate(spans):
        words = text[start:end]
        lone = words.lower()
        site_of = lone in BODY_SITES and SITE_OF.search(text, max(0, start - 9), start)
        coordinated = not site_of and n + 1 < len(spans) and COORDINATION.fullmatch(text, end, spans[n + 1][0])
        if (lone in LONE_MODIFIERS and not coordinated) or lone in LONE_QUALIFIERS or ADVERB.fullmatch(words):
            continue
        if WILLINGNESS.match(words) or PROTOCOL.search(words):  # what the patient agrees to is named on its own
            continue
        if _a_sign(words) or lone in STOPWORDS:  # 'NOT requiring steroids', 'patients': no name alone
            continue
        if typ == "Person" and OLD.fullmatch(words) and _after_age_word(text, kept, start):
            continue
        kept.append((start, end, typ))
    return kept


def _without_abbreviations(text: str, spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """A name followed by its abbreviation is the name only ('body mass index (BMI)' -> 'body mass index',
    GUIDELINE 4; on the gold set strict F1 0.614 -> 0.625, on Chia CV relaxed unchanged, where giving the
    abbreviation an entity of its own as well scored lower). One inside the name stays: 'Eastern Cooperative
    Oncology Group (ECOG) performance status' is one entity."""
    out = []
    for start, end, typ in spans:
        found = NAME_AND_ABBREVIATION.fullmatch(text, start, end)
        out.append((start, end if found is None else found.end(1), typ))
    return out


def _elliptical_conjuncts(
    text: str, spans: list[tuple[int, int, str]], taken: list[tuple[int, int]]
) -> list[tuple[int, int, str]]:
    """The first words of names that share the head of the next one ('kidney or | liver failure',
    'renal, hepatic or | cardiac disease'): Chia annotates each conjunct as a discontinuous entity ending
    in the shared head, which starts at that word. A word already in an entity, a value or a time
    expression (`taken`), a stop word or a qualifier is none."""
    added: list[tuple[int, int, str]] = []
    covered: bytearray | None = None
    for start, end, typ in spans:
        if typ not in SHARED_HEAD_TYPES or " " not in text[start:end]:
            continue  # one word: there is no shared head
        left = start
        while (found := CONJUNCT_BEFORE.search(text, max(0, left - 40), left)) is not None:
            if covered is None:
                covered = bytearray(len(text))
                for s, e in [(s, e) for s, e, _ in spans] + taken:
                    covered[s:e] = b"\x01" * (e - s)
            word_start, word_end = found.span(1)
            word = found.group(1)
            if word.isupper() or word.lower() in NOT_CONJUNCTS or any(covered[word_start:word_end]):
                break  # an abbreviation ('HIV or HCV infection') names a thing of its own
            if SITE_OF.search(text, max(0, word_start - 9), word_start):
                break  # the end of a name before ('carcinoma in situ of the breast, ductal carcinoma')
            added.append((word_start, word_end, typ))
            left = word_start
    return added


def _after_age_word(text: str, kept: list[tuple[int, int, str]], start: int) -> bool:
    return any(
        typ == "Person" and text[s:e].lower() in AGE_WORDS and 0 <= start - e <= VALUE_GAP + 15
        and _same_clause(text, e, start)
        for s, e, typ in kept[-3:]
    )


def _value_for(
    start: int, end: int, typ: str, text: str, usable: dict[str, SpanIndex[ValueMatch]]
) -> ValueMatch | None:
    value = _nearest(start, end, usable[typ], text, VALUE_GAP)
    if typ == "Person":  # '≥ 18 years of age': the age word inside its own value (Chia: Person 'age' + Value)
        value = next(iter(usable[typ].containing(start, end)), value)
    if value is not None and typ == "Person" and value.unit is None:
        return replace(value, unit="years")  # ages are in years unless the text says otherwise
    return value


def _attach(
    prepared: PreparedText,
    spans: list[tuple[int, int, str]],
    values: list[ValueMatch],
    temporals: list[TemporalMatch],
) -> list[Tagged]:
    """Each entity takes the nearest value it may carry and a time window in its clause.

    A window with a length anywhere in the clause wins over a nearer bare cue ('History of'), even one right
    before the entity: on Chia cross-validation that attaches more windows right (0.779 against 0.770).
    """
    text = prepared.text
    negations = SpanIndex(sorted(find_negations(prepared), key=lambda scope: scope.start))
    windows = SpanIndex([t for t in temporals if t.min_days is not None or t.max_days is not None])
    usable = _usable_values(values, windows) if values else None
    cues = SpanIndex(temporals)
    out = []
    aged = any(typ == "Person" and text[start:end].lower() in AGE_WORDS for start, end, typ in spans)
    claimed: set[int] = set()  # starts of values taken by the entity right before them
    for start, end, typ in spans:
        value = None
        if usable and typ in VALUE_TYPES and not (aged and text[start:end].lower() in SEX_WORDS):
            kind = SURVIVAL if typ == "Observation" and SURVIVAL_NAME.search(text, start, end) else typ
            value = _value_for(start, end, kind, text, usable)  # with an age word the age is its value, not the sex's
            if value is not None and value.end <= start and value.start in claimed:  # 'ECOG 0-1, Life expectancy
                value = _following(end, usable[kind], text) or value  # of more than 3 months': the later one
            if value is not None and value.start >= end:
                claimed.add(value.start)
        temporal = None
        if temporals and not _timeless(typ, text[start:end]):
            temporal = _nearest(start, end, windows, text, WINDOW_GAP) or _nearest(start, end, cues, text, TEMPORAL_GAP)
        negated = bool(negations) and is_negated(start, end, negations.near(start, start))
        out.append(Tagged(start, end, typ, text[start:end], negated, value, temporal))
    _share_values(text, out)
    return out


def _timeless(typ: str, name: str) -> bool:
    """A sex or population word ('women', 'children') takes no time window: the window beside it places what
    is asked of them ('women ... must use contraception during the study'). An age keeps its window ('age at
    screening'). Of the 23 windows chia-dev links to a Person, 4 are on a sex word; the gold set has none."""
    return typ == "Person" and not (AGE_WORD.search(name) or DIGIT.search(name))


def _share_values(text: str, tagged: list[Tagged]) -> None:
    """A Measurement with no value shares the value of its neighbour Measurement when only a few joining
    words and no number stand between them: the next one's value after the pair ('ALT (ALT) and AST
    (AST) <= 2.5 x ULN'; a name that comes out in pieces, 'Eastern Cooperative Oncology | Group (ECOG)
    performance status of 0-1'), or the previous one's value before the pair ('positive for HBsAg or
    HCV antibody')."""
    pairs = list(pairwise(tagged))
    for first, second in reversed(pairs):
        if _may_share(text, first, second) and second.value is not None and second.value.start >= second.end:
            first.value = second.value
    for first, second in pairs:
        if _may_share(text, second, first) and first.value is not None and first.value.end <= first.start:
            second.value = first.value


def _may_share(text: str, taker: Tagged, giver: Tagged) -> bool:
    if taker.type != "Measurement" or giver.type != "Measurement" or taker.value is not None:
        return False
    start, end = min(taker.end, giver.end), max(taker.start, giver.start)
    near = _distance(text, start, end) <= SHARE_GAP
    return near and not DIGIT.search(text, start, end) and _same_clause(text, start, end)


def _age_phrases(spans: list[tuple[int, int, str]], values: list[ValueMatch]) -> list[tuple[int, int, str]]:
    """'18 to 75 years old' with no age word near it: the phrase itself is the Person (GUIDELINE 5)."""
    added = []
    person_ends = sorted(e for _, e, typ in spans if typ == "Person")
    for value in values:
        if value.unit != "years" or not AGE_PHRASE.search(value.text):
            continue
        first = bisect_left(person_ends, value.start - VALUE_GAP)
        if first == len(person_ends) or person_ends[first] > value.start + VALUE_GAP:
            added.append((value.start, value.end, "Person"))
    return added


def gazetteer_matches(text: str, lexicon: Lexicon) -> list[Tagged]:
    """Phrase lookup alone (the naive baseline of evals/chia_cv.py): no heads, context or attachments."""
    tokens = tokenize(text)
    found = []
    for a, b, typ in _phrase_matches(text, tokens, lexicon):
        start, end = tokens[a][0], tokens[b - 1][1]
        found.append(Tagged(start, end, typ, text[start:end]))
    return found


def _typed_spans(
    text: str,
    tokens: list[Token],
    candidates: list[tuple[int, int, str]],
    values: list[ValueMatch],
    temporals: list[TemporalMatch],
) -> list[tuple[int, int, str]]:
    """Candidate spans (token ranges) as character spans with their type decided in context; none inside a
    numeric time window. Time and status words before a name are not part of it (GUIDELINE 4, 6): 'history
    of | seizures', 'active | hepatitis B' (Chia: 'active' a Qualifier or Temporal of its own 97 times, the
    start of a name 26)."""
    timed = _covered(tokens, temporals) if temporals else [False] * len(tokens)
    in_window = SpanIndex([t for t in temporals if t.min_days is not None or t.max_days is not None])
    after = SpanIndex(values)
    spans = []
    for a, b, typ in candidates:
        a = next((k for k in range(a, b) if not timed[k] and tokens[k][2] != "active"), a)
        start, end = tokens[a][0], tokens[b - 1][1]
        if in_window and in_window.containing(start, end):
            continue
        value = _value_after(end, text, after) if values else None
        typ = "Drug" if DRUG_CODE.fullmatch(text, start, end) else _context_type(tokens[a:b], typ, value)
        if typ != "Person" and values and _in_unit(start, end, text, after):
            continue
        if typ in ("Condition", "Procedure") and values and (tested := _tested(start, end, text, after)):
            typ, (start, end) = "Measurement", tested
        spans.append((start, end, typ))
    return spans


def _in_unit(start: int, end: int, text: str, values: SpanIndex) -> bool:
    """The span lies in a value after its number: the unit ('8.0 gm/dL': 'gm' is no Drug). An age word
    there is the Person its value belongs to ('18 years of age'), so callers leave Persons alone."""
    return any(DIGIT.search(text, value.start, start) for value in values.containing(start, end))


RESULT_BEFORE_NAME = re.compile(r"\s+(?:for|to)\s+")
RESULT_AFTER_NAME = re.compile(r"[\s(-]{0,3}")


def _tested(start: int, end: int, text: str, values: SpanIndex[ValueMatch]) -> tuple[int, int] | None:
    """The name's span when a qualitative result stands right beside it ('HIV positive', 'positive for HBsAg'),
    else None: the name is then the test, a Measurement (GUIDELINE 3: 'positive for PPD' -> Measurement
    'PPD'; Chia types 38 of 46 names so placed Measurement), and a result the span swallowed is its value,
    not part of the name."""
    for value in values.near(start - 12, end + 4):
        if value.comparator is not None or value.unit is not None or not value.text[-1].isalpha():
            continue
        before = RESULT_BEFORE_NAME.match(text, value.end, end)
        if value.start >= end and RESULT_AFTER_NAME.fullmatch(text, end, value.start):
            return start, end
        if value.end <= start and RESULT_BEFORE_NAME.fullmatch(text, value.end, start):
            return start, end
        if start < value.start and value.end == end and (name := text[start : value.start].rstrip(" (-")):
            return start, start + len(name)  # 'HIV positive'
        if value.start == start and before is not None and before.end() < end:
            return before.end(), end  # 'positive for HIV'
    return None


def _covered(tokens: list[Token], spans: list[ValueMatch] | list[TemporalMatch]) -> list[bool]:
    """Whether each token lies inside one of `spans` (sorted by start, non-overlapping)."""
    flags = [False] * len(tokens)
    k = 0
    for span in spans:
        while k < len(tokens) and tokens[k][1] <= span.start:
            k += 1
        j = k
        while j < len(tokens) and tokens[j][0] < span.end:
            flags[j] = True
            j += 1
    return flags


def _tagger_columns(
    tokens: list[Token],
    phrases: list[tuple[int, int, str]],
    candidates: list[tuple[int, int, str]],
    values: list[ValueMatch],
    temporals: list[TemporalMatch],
) -> dict[str, list[str]]:
    """Per-token labels the sequence tagger reads: lexicon phrases, rules spans, value and time-window cover."""
    return {
        "L": bio_labels(len(tokens), phrases),
        "R": bio_labels(len(tokens), candidates),
        "V": ["1" if flag else "0" for flag in _covered(tokens, values)],
        "T": ["1" if flag else "0" for flag in _covered(tokens, temporals)],
    }


@dataclass(slots=True)
class _Reading:
    """What the lexicon and patterns find in one text before the sequence tagger looks at it."""

    prepared: PreparedText
    values: list[ValueMatch]
    temporals: list[TemporalMatch]
    phrases: list[tuple[int, int, str]]
    candidates: list[tuple[int, int, str]]

    @classmethod
    def of(cls, text: str, lexicon: Lexicon) -> _Reading:
        prepared = PreparedText.of(text)
        phrases = _phrase_matches(prepared.text, prepared.tokens, lexicon)
        candidates = _head_matches(prepared.tokens, phrases, lexicon)
        return cls(prepared, find_values(prepared), find_temporals(prepared), phrases, candidates)

    def tagger_input(self) -> tuple[str, list[Token], dict[str, list[str]]]:
        tokens = self.prepared.tokens
        return self.prepared.text, tokens, _tagger_columns(tokens, self.phrases, self.candidates, self.values,
                                                           self.temporals)  # fmt: skip


def tagger_features(text: str, lexicon: Lexicon) -> tuple[list[Token], list[list[str]]]:
    """The tokens of `text` and the sequence tagger's features for each (what train_tagger.py learns from)."""
    text, tokens, columns = _Reading.of(text, lexicon).tagger_input()
    return tokens, sequence_features(text, tokens, columns, lexicon.word_type)


FUNCTION_WORDS = frozenset(["of", "with", "and", "or", "to", "for", "in", "on", "at", "by", "from", "the", "a", "an"])


def _without_trailing_function_words(tokens: list[Token], span: tuple[int, int, str]) -> tuple[int, int, str]:
    """A tagger span less the function words it ends in: no name ends in "of" ("body mass index (BMI) of")."""
    a, b, typ = span
    while b > a and tokens[b - 1][2] in FUNCTION_WORDS:
        b -= 1
    return a, b, typ


def _merge_tagger(
    found: list[tuple[int, int, str]], candidates: list[tuple[int, int, str]], tokens: list[Token]
) -> list[tuple[int, int, str]]:
    """The sequence tagger's spans, plus the lexicon's where the tagger found nothing. Not its Measurement
    phrases: the tagger reads them as features, and on Chia cross-validation the ones it left out were more
    often no Measurement (relaxed F1 of the type 0.730 with them, 0.747 without)."""
    found = [(a, b, typ) for a, b, typ in map(partial(_without_trailing_function_words, tokens), found) if a < b]
    taken = [False] * len(tokens)
    for a, b, _ in found:
        taken[a:b] = [True] * (b - a)
    filled = [span for span in candidates if span[2] != "Measurement" and not any(taken[span[0] : span[1]])]
    return sorted(found + filled)


def tag_text(text: str, lexicon: Lexicon, tagger: CrfTagger | None = None) -> list[Tagged]:
    """All domain entities in `text`, sorted by offset, with value/temporal/negation attached.

    With a sequence `tagger` (crf.py), names are found by it and the lexicon fills what it leaves."""
    return tag_texts([text], lexicon, tagger)[0]


def tag_texts(texts: list[str], lexicon: Lexicon, tagger: CrfTagger | None = None) -> list[list[Tagged]]:
    """`tag_text` of each text, the sequence tagger decoding them all side by side (faster than one by one)."""
    readings = [_Reading.of(text, lexicon) for text in texts]
    if tagger is not None:
        found = tagger.spans_many([reading.tagger_input() for reading in readings])
        for reading, names in zip(readings, found, strict=True):
            reading.candidates = _merge_tagger(names, reading.candidates, reading.prepared.tokens)
    return [_entities_of(reading) for reading in readings]


def _entities_of(reading: _Reading) -> list[Tagged]:
    """The entities of a reading's candidate names, typed in context, with what else the rules add."""
    prepared, values, temporals = reading.prepared, reading.values, reading.temporals
    text, tokens = prepared.text, prepared.tokens
    spans = [_balanced(text, span) for span in _typed_spans(text, tokens, reading.candidates, values, temporals)]
    spans = _drop_non_entities(text, [span for span in spans if span[0] < span[1]])
    spans = pattern_entities(prepared, _without_abbreviations(text, spans))
    taken = [(t.start, t.end) for t in temporals] + [(v.start, v.end) for v in values]
    spans += _elliptical_conjuncts(text, spans, taken)
    if values:
        spans += _orphan_measurements(text, tokens, spans, values)
        spans += _age_phrases(spans, values)
    spans.sort()
    return _attach(prepared, spans, values, temporals)
