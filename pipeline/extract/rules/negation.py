"""Negation cues and their scope, NegEx-style but kept small (evals/GUIDELINE.md section 7).

A cue ('no', 'not', 'without', 'free of', 'absence of', 'no history of', 'never', 'cannot', 'unable to',
'lack of', 'except (for)', 'excluding', 'with the exception of', 'other than', 'unless', 'non-' on a
state: 'non-pregnant') negates what follows it up to the end of its scope: the next ';', '.', ':', a
closing bracket, a line break that starts a new item, or a scope-breaking word ('but', 'however',
'although', 'which', 'who', 'if', 'with', 'whereas'), and at most `MAX_SCOPE` characters.
A post-cue ('is absent', 'was excluded', 'ruled out') negates the few words before it.
'not only', 'no longer', 'not necessarily', 'not limited to' and 'no change' are not negations.
'negative' is a test result (a Value, GUIDELINE section 5; Chia does the same), never a negation cue,
so 'negative for HIV' leaves HIV un-negated with the value 'negative'.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.extract.rules.lexicon import PreparedText, matches_at, starts_word, word_set

MAX_SCOPE = 80
PRE_CUES = re.compile(
    r"(?:no\s+(?:known\s+|prior\s+|previous\s+|current\s+|active\s+|evidence\s+of\s+|history\s+of\s+|signs?\s+of\s+)*"
    r"(?!longer\b|change\b|more\s+than\b|less\s+than\b|greater\s+than\b)"
    r"|not(?!\s+(?:only|necessarily|limited|restricted|more\s+than|less\s+than|greater\s+than|exceed))"
    r"(?:\s+have|\s+be|\s+been|\s+had)?"
    r"|n't|cannot|unable\s+to|without|free\s+(?:of|from)|absence\s+of|lack\s+of|never|denies|denied|"
    r"rule[sd]?\s+out|none\s+of|neither|nor|except(?:\s+for)?|excluding|with\s+the\s+exception\s+of|"
    r"other\s+than|unless|non-?(?=pregnant|nursing|lactating|breast|smok))\b"
)  # patterns run on lower_ascii() text
POST_CUES = re.compile(r"(?:\s+(?:is|was|are|were|be|been)\s+)?(?:absent|excluded|ruled\s+out)\b")
POST_WORDS = re.compile(r"absent|excluded|ruled\s+out")
NEXT_WORD = re.compile(r"[a-z-]*")
SCOPE_END = re.compile(r"[;.:)\]]|\n(?!\s*[a-z(])|\b(?:but|however|although|which|who|if|with|whereas)\b")


@dataclass(slots=True)
class NegationScope:
    cue_start: int
    cue_end: int
    start: int
    end: int

    def covers(self, start: int, end: int) -> bool:
        return self.start <= start and end <= self.end


def _forward_scope(low: str, cue_end: int) -> int:
    limit = min(len(low), cue_end + MAX_SCOPE)
    stop = SCOPE_END.search(low, cue_end, limit)
    return stop.start() if stop else limit


CUE_WORDS = word_set(
    """
    no not cannot unable without free absence lack never denies denied rule rules ruled none neither nor
    except excluding with other unless non
    """
)  # the first word of every pre-cue but "n't"


def starts_cue(low: str, start: int) -> bool:
    """A pre-cue counts where it starts a word, or is "n't" ('isn't'); the scan also finds cues inside words."""
    return starts_word(low, start) or low.startswith("n't", start)


def _pre_cues(text: PreparedText) -> list[re.Match]:
    """`PRE_CUES.finditer`, with shortcuts tried only where a cue word or "n't" starts: every cue but
    "n't" starts a word and its first word is a whole token ('non-pregnant' too: the cue needs the
    hyphen), and what the scan finds inside words is thrown away below anyway."""
    low = text.lowered
    if not text.shortcuts:
        return list(PRE_CUES.finditer(low))
    starts = text.starts_of(CUE_WORDS)
    if "n't" in low:
        starts = sorted(starts + [m.start() for m in re.finditer("n't", low)])
    return matches_at(PRE_CUES, low, starts)


def find_negations(text: str | PreparedText) -> list[NegationScope]:
    """Cue spans with the text range each one negates (offsets into `text`)."""
    prepared = PreparedText.of(text)
    source, low = prepared.text, prepared.lowered
    scopes = []
    for cue in _pre_cues(prepared):
        if not starts_cue(low, cue.start()):
            continue
        if low.startswith("non", cue.start()):  # 'non-pregnant': the state word only
            word = NEXT_WORD.match(low, cue.end())
            end = word.end() if word else cue.end()
        else:
            end = _forward_scope(low, cue.end())
        scopes.append(NegationScope(cue.start(), cue.end(), cue.end(), end))
    if not POST_WORDS.search(low):
        return scopes
    for cue in POST_CUES.finditer(low):
        back = max(0, cue.start() - 40)
        breaks = [m.end() for m in re.finditer(r"[;,.(\n]|\band\b|\bor\b", source[back : cue.start()])]
        start = back + breaks[-1] if breaks else back
        scopes.append(NegationScope(cue.start(), cue.end(), start, cue.start()))
    return scopes


def is_negated(start: int, end: int, scopes: list[NegationScope]) -> bool:
    """True if the span lies inside a negation scope or is itself a negated phrase."""
    return any(scope.covers(start, end) for scope in scopes)
