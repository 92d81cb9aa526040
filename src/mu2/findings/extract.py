"""Reading structured findings back out of chest / abdomen / pelvis CT report prose.

Used by the offline GREEN judge (``mu2.metrics.green.rules``) and to check the synthetic
benchmark's prose against its ground truth. Works on general report text, not only on
``mu2.findings.writer`` output: synonyms, NegEx-style negation scope, laterality,
severity words, sizes with units, counts and comparison phrases.

Written by hand (see ``mu2.findings.lexicon`` for why no library is used): a sentence
split, one pass of a few compiled regular expressions over the report, then per sentence
(1) resolve trigger phrases to finding kinds (generic head nouns such as "cyst" take the
nearest organ named), (2) decide negation, (3) give each modifier (side, site, size,
severity, count) to the nearest mention that carries that attribute, (4) merge repeated
mentions. Besides the catalogue's findings it reads where in an organ a focal finding is
(lobe, liver segment, kidney pole), abnormalities outside the catalogue by organ ("a
hypodense lesion in the spleen") and whole-study normal statements ("no acute
abnormality"), which the offline GREEN judge needs.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field

import mu2.findings.lexicon as lx
from mu2.errors import Mu2Error
from mu2.findings.catalogue import FINDING_KINDS, REGIONS, Finding

# "multiple", "several", plural nouns: at least two, number not stated.
MULTIPLE_COUNT = 2
# Furthest a modifier may sit from the finding it describes, in characters.
MAX_GAP: dict[str, int] = {
    "side": 80, "site": 80, "size": 80, "sev": 40, "count": 40, "largest": 60,
}  # fmt: skip
# Furthest a negation reaches forward without a terminator, in characters (NegEx counts
# words; lists such as "no ascites, splenomegaly or hydronephrosis" need a little more).
NEGATION_REACH = 80


def _alternation(named: dict[str, tuple[str, ...] | str]) -> str:
    parts = []
    for name, alts in named.items():
        body = alts if isinstance(alts, str) else "|".join(alts)
        parts.append(f"(?P<{name}>{body})")
    # "(?<!\w)(?=\w)" is "\b at a word start", written so that the regex engine rejects
    # other positions quickly (about twice as fast as a leading "\b").
    return r"(?<!\w)(?=\w)(?:" + "|".join(parts) + r")\b"


_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=\S)|\n+")
_ORGAN_RE = re.compile(_alternation(lx.ORGAN_TERMS))
_TRIGGER_RE = re.compile(
    _alternation(
        {f"s_{k}": v for k, v in lx.SPECIFIC_TERMS.items()}
        | {f"g_{i}": t.pattern for i, t in enumerate(lx.GENERIC_TERMS)}
    )
)
_ATTR_RE = re.compile(
    _alternation(
        {"size": lx.SIZE_PATTERN}
        # sites before sides: "right lobe of the liver" is a site, not a side
        | {f"site_{k}": v for k, (_, v) in lx.SITE_TERMS.items()}
        | {f"side_{k}": v for k, v in lx.SIDE_TERMS.items()}
        | {f"sev_{k}": v for k, v in lx.SEVERITY_TERMS.items()}
        | {"count": "|".join([*lx.NUMBER_VALUES, lx.VAGUE_COUNT_TERMS])}
        | {"largest": lx.LARGEST_TERM}
    )
)
_NEG_RE = re.compile(
    r"(?P<punct>"
    + "|".join(lx.SCOPE_PUNCTUATION)
    + ")|"
    + _alternation(
        {
            "term": lx.SCOPE_TERMINATORS,
            "pseudo": lx.PSEUDO_NEGATIONS,
            "post": lx.POST_NEGATIONS,
            "pre": lx.PRE_NEGATIONS,
        }
    )
)
_CMP_RE = re.compile(
    _alternation(
        {"pseudo": lx.PSEUDO_COMPARISONS} | {f"c_{k}": v for k, v in lx.COMPARISON_TERMS.items()}
    )
)
_NORMAL_RE = re.compile(_alternation({"normal": lx.NORMAL_TERMS}))
_GLOBAL_NORMAL_RE = re.compile(_alternation({"normal": lx.GLOBAL_NORMAL_TERMS}))
_ABNORMAL_RE = re.compile(_alternation({"abnormal": lx.ABNORMAL_TERMS}))
_PLURAL_RE = re.compile(lx.PLURAL_HEADS)
_BREAK_RE = re.compile(lx.PHRASE_BREAKS)


@dataclass(frozen=True)
class Comparison:
    """A reference to a prior study: its label and the finding kind it is said of."""

    label: str  # one of lexicon.COMPARISON_TERMS: new, stable, increased, ..., prior
    finding: str | None = None
    negated: bool = False  # "no new nodules"


@dataclass
class Extraction:
    """Everything the judge needs from one report."""

    findings: list[Finding] = field(default_factory=list)
    negated: list[tuple[str, str]] = field(default_factory=list)  # (organ, kind) denied
    normal_organs: list[str] = field(default_factory=list)  # stated normal, no finding
    comparisons: list[Comparison] = field(default_factory=list)
    sites: dict[tuple[str, str, str | None], frozenset[str]] = field(default_factory=dict)
    """Finding key -> parts of the organ it is placed in ("upper_lobe", "segment 7")."""
    abnormal: list[tuple[str, str]] = field(default_factory=list)
    """(organ, phrase) of abnormalities that name no catalogue finding."""
    global_normal: bool = False
    """The report states the whole study normal ("no acute abnormality")."""


@dataclass
class _Mention:
    start: int
    end: int
    kind: str
    plural: bool
    negated: bool = False
    attrs: dict[str, tuple[int, object]] = field(default_factory=dict)  # type -> (gap, value)
    sides: set[str] = field(default_factory=set)
    sites: set[str] = field(default_factory=set)
    comparison: str | None = None


@dataclass
class _Sentence:
    start: int
    end: int
    organs: list[tuple[int, int, str]] = field(default_factory=list)
    triggers: list[re.Match[str]] = field(default_factory=list)
    attrs: list[re.Match[str]] = field(default_factory=list)
    negs: list[re.Match[str]] = field(default_factory=list)
    cmps: list[re.Match[str]] = field(default_factory=list)
    abnormal: list[re.Match[str]] = field(default_factory=list)
    has_normal: bool = False
    text: str = ""


def _gap(a0: int, a1: int, b0: int, b1: int) -> int:
    return max(0, b0 - a1, a0 - b1)


def _sentences(low: str) -> list[_Sentence]:
    out, pos = [], 0
    for m in _SENTENCE_BREAK.finditer(low):
        out.append(_Sentence(pos, m.start()))
        pos = m.end()
    out.append(_Sentence(pos, len(low)))
    return out


def _bucket(low: str) -> list[_Sentence]:
    sents = _sentences(low)
    starts = [s.start for s in sents]

    def at(pos: int) -> _Sentence:
        return sents[bisect_right(starts, pos) - 1]

    for m in _ORGAN_RE.finditer(low):
        at(m.start()).organs.append((m.start(), m.end(), m.lastgroup or ""))
    for m in _TRIGGER_RE.finditer(low):
        at(m.start()).triggers.append(m)
    for m in _ATTR_RE.finditer(low):
        at(m.start()).attrs.append(m)
    for m in _NEG_RE.finditer(low):
        at(m.start()).negs.append(m)
    for m in _CMP_RE.finditer(low):
        at(m.start()).cmps.append(m)
    for m in _NORMAL_RE.finditer(low):
        at(m.start()).has_normal = True
    for m in _ABNORMAL_RE.finditer(low):
        at(m.start()).abnormal.append(m)
    return sents


def _resolve_generic(
    term: lx.GenericTerm,
    m: re.Match[str],
    sent: _Sentence,
    resolved: list[_Mention],
    context_organ: str | None,
    region: str | None,
) -> str | None:
    """Finding kind of a generic head noun, from the organ it is said of."""
    # The nearest organ named decides ("the gallbladder is not enlarged": not the liver).
    by_gap = sorted(sent.organs, key=lambda o: _gap(m.start(), m.end(), o[0], o[1]))
    if by_gap:
        return term.kinds.get(by_gap[0][2])
    kinds = set(term.kinds.values())
    for other in resolved:  # "cholelithiasis with two calculi"
        if other.kind in kinds:
            return other.kind
    if context_organ in term.kinds:  # organ of the previous sentence
        return term.kinds[context_organ]
    organ = term.default_organ or (term.region_organ.get(region) if region else None)
    return term.kinds.get(organ) if organ else None


def _mentions(sent: _Sentence, context_organ: str | None, region: str | None) -> list[_Mention]:
    out: list[_Mention] = []
    generic = []
    for m in sent.triggers:
        name = m.lastgroup or ""
        if name.startswith("s_"):
            out.append(_Mention(m.start(), m.end(), name[2:], bool(_PLURAL_RE.search(m.group()))))
        else:
            generic.append(m)
    for m in generic:
        term = lx.GENERIC_TERMS[int((m.lastgroup or "g_0")[2:])]
        kind = _resolve_generic(term, m, sent, out, context_organ, region)
        if kind:
            out.append(_Mention(m.start(), m.end(), kind, bool(_PLURAL_RE.search(m.group()))))
    out.sort(key=lambda x: x.start)
    _negate(sent, out)
    return out


def _negation_scopes(sent: _Sentence) -> list[tuple[int, int]]:
    """Character spans that a forward negation ("no", "without", ...) covers."""
    terms = [n.start() for n in sent.negs if n.lastgroup in ("term", "punct")]
    scopes = []
    for n in sent.negs:
        if n.lastgroup == "pre":
            stop = min((t for t in terms if t >= n.end()), default=sent.end)
            scopes.append((n.end(), min(stop, n.end() + NEGATION_REACH)))
    return scopes


def _negate(sent: _Sentence, mentions: list[_Mention]) -> None:
    for begin, stop in _negation_scopes(sent):
        for x in mentions:
            if begin <= x.start < stop:
                x.negated = True
    terms = [n.start() for n in sent.negs if n.lastgroup in ("term", "punct")]
    for n in sent.negs:
        if n.lastgroup == "post":  # "... is not seen": back to the clause start
            begin = max((t for t in terms if t <= n.start()), default=sent.start)
            for x in mentions:
                if begin <= x.start and x.end <= n.start():
                    x.negated = True


def _accepts(kind: str, attr: str, value: object = None) -> bool:
    k = FINDING_KINDS[kind]
    if attr == "site":  # focal findings of the organ the site belongs to
        return k.countable and lx.SITE_TERMS[str(value).split()[0]][0] == k.organ
    return {
        "side": k.lateral, "size": k.sized, "sev": k.graded, "count": k.countable,
        "largest": k.countable,
    }[attr]  # fmt: skip


def _site(name: str, text: str) -> str:
    """Site name; a liver segment carries its number ("segment 7" from "segment VII")."""
    if name != "segment":
        return name
    number = text.split()[-1]
    return f"segment {lx.ROMAN.get(number, number)}"


def _size_mm(m: re.Match[str]) -> float | None:
    units = [m.group(u) for u in ("u1", "u2", "u3")]
    last = next((u for u in reversed(units) if u), None)
    if last is None:
        return None
    sizes = []
    for n, u in zip(("n1", "n2", "n3"), units, strict=True):
        if m.group(n) is not None:
            sizes.append(float(m.group(n)) * lx.UNIT_MM[u or last])
    return round(max(sizes), 1)


def _attr_value(m: re.Match[str]) -> tuple[str, object] | None:
    name = m.lastgroup or ""
    text = m.group(name)
    if name == "size":
        size = _size_mm(m)
        return ("size", size) if size is not None else None
    if name.startswith("site_"):
        return "site", _site(name[5:], text)
    if name.startswith("side_"):
        return "side", name[5:]
    if name.startswith("sev_"):
        return "sev", name[4:]
    if name == "count":
        return "count", lx.NUMBER_VALUES.get(text, MULTIPLE_COUNT)
    return "largest", MULTIPLE_COUNT


def _assign_attributes(sent: _Sentence, low: str, mentions: list[_Mention]) -> None:
    for m in sent.attrs:
        got = _attr_value(m)
        if got is None:
            continue
        attr, value = got
        best: tuple[int, _Mention] | None = None
        for x in mentions:
            if not _accepts(x.kind, attr, value):
                continue
            if attr == "count" and m.end() > x.start:  # counts precede their noun
                continue
            if attr == "largest" and m.start() < x.end:  # "..., the largest 2 cm"
                continue
            gap = _gap(x.start, x.end, m.start(), m.end())
            if gap > MAX_GAP[attr]:
                continue
            between = low[min(x.end, m.end()) : max(x.start, m.start())]
            rank = (bool(_BREAK_RE.search(between)), gap)
            if best is None or rank < best[0]:
                best = (rank, x)
        if best is None:
            continue
        (_, gap), x = best
        if attr == "side":
            x.sides.add(str(value))
        elif attr == "site":
            x.sites.add(str(value))
        elif attr not in x.attrs or gap < x.attrs[attr][0]:
            x.attrs[attr] = (gap, value)


def _share_sides(mentions: list[_Mention]) -> None:
    """ "Right nephrolithiasis with a stone": the side said of one mention holds for both."""
    for x in mentions:
        if not x.sides:
            sided = [y for y in mentions if y.kind == x.kind and y.sides]
            if len({frozenset(y.sides) for y in sided}) == 1:
                x.sides = set(sided[0].sides)


def _side(x: _Mention) -> str | None:
    if not x.sides:
        return None
    if "bilateral" in x.sides or {"left", "right"} <= x.sides:
        return "bilateral"
    return next(iter(x.sides))


def _count(x: _Mention, side: str | None) -> int:
    if not FINDING_KINDS[x.kind].countable:
        return 1
    if "count" in x.attrs:
        return int(x.attrs["count"][1])  # type: ignore[call-overload]
    if "largest" in x.attrs:
        return MULTIPLE_COUNT
    # A plural noun means several, except "bilateral renal cysts" (one per side).
    return MULTIPLE_COUNT if x.plural and side != "bilateral" else 1


def _to_finding(x: _Mention) -> Finding:
    side = _side(x)
    size = x.attrs.get("size", (0, None))[1]
    sev = x.attrs.get("sev", (0, None))[1]
    return Finding(
        organ=FINDING_KINDS[x.kind].organ,
        finding=x.kind,
        side=side,
        size_mm=float(size) if size is not None else None,  # type: ignore[arg-type]
        severity=str(sev) if sev is not None else None,
        count=_count(x, side),
        extra={"comparison": x.comparison} if x.comparison else {},
    )


def _merge_into(a: Finding, b: Finding) -> None:
    """Fold a repeated mention ``b`` of the same finding into ``a``."""
    a.count = max(a.count, b.count)
    if b.size_mm is not None and (a.size_mm is None or b.size_mm > a.size_mm):
        a.size_mm = b.size_mm
    a.severity = a.severity or b.severity
    if b.extra.get("comparison") and not a.extra.get("comparison"):
        a.extra["comparison"] = b.extra["comparison"]


def _add(findings: list[Finding], f: Finding) -> Finding:
    """Add ``f`` or fold it into the finding it repeats; return the finding it ended in."""
    same = [g for g in findings if g.finding == f.finding]
    exact = [g for g in same if g.side == f.side]
    if exact:
        _merge_into(exact[0], f)
        return exact[0]
    if f.side is None and len(same) == 1:  # "the cyst" after "a left renal cyst"
        _merge_into(same[0], f)
        return same[0]
    if len(same) == 1 and same[0].side is None:
        same[0].side = f.side
        _merge_into(same[0], f)
        return same[0]
    findings.append(f)
    return f


def _abnormalities(
    sent: _Sentence, mentions: list[_Mention], context_organ: str | None
) -> list[tuple[str, str]]:
    """(organ, phrase) of asserted abnormalities that no catalogue finding of the sentence
    describes ("a hypodense lesion in the spleen"; not the "lesion" of "a liver lesion
    consistent with a cyst", which is the cyst)."""
    triggers = [(t.start(), t.end()) for t in sent.triggers]
    found = [
        _Mention(m.start(), m.end(), "", False)
        for m in sent.abnormal
        if not any(b <= m.start() < e or m.start() <= b < m.end() for b, e in triggers)
    ]
    _negate(sent, found)
    positive = [x for x in mentions if not x.negated]
    described = {FINDING_KINDS[x.kind].organ for x in positive}
    out = []
    for x in found:
        # "calcified gallstones": a word next to a finding (or in a sentence naming no
        # organ but a finding) describes that finding
        if x.negated or any(_gap(x.start, x.end, y.start, y.end) <= MAX_GAP["sev"]
                            for y in positive) or (positive and not sent.organs):  # fmt: skip
            continue
        near = sorted(sent.organs, key=lambda o: _gap(x.start, x.end, o[0], o[1]))
        organ = near[0][2] if near else context_organ
        if organ and organ != "other" and organ not in described:
            out.append((organ, sent_text(sent, x)))
    return out


def sent_text(sent: _Sentence, x: _Mention) -> str:
    return sent.text[x.start - sent.start : x.end - sent.start]


def _comparisons(sent: _Sentence, mentions: list[_Mention]) -> list[Comparison]:
    found = []
    for m in sent.cmps:
        if m.lastgroup == "pseudo":
            continue
        label = (m.lastgroup or "c_prior")[2:]
        near = min(mentions, key=lambda x: _gap(x.start, x.end, m.start(), m.end()), default=None)
        if near is not None and label != "prior" and not near.negated:
            near.comparison = near.comparison or label
        found.append(Comparison(label, near.kind if near else None, bool(near and near.negated)))
    if any(c.label in lx.CHANGE_LABELS for c in found):  # "new since the prior study"
        found = [c for c in found if c.label != "prior"]
    return found


def extract_report(text: str, region: str | None = None) -> Extraction:
    """Findings, denied findings, organs stated normal and comparisons of one report."""
    if region is not None and region not in REGIONS:
        raise Mu2Error(f"unknown region '{region}'", fix=f"use one of {', '.join(REGIONS)}")
    low = text.lower()
    result = Extraction()
    stated_normal: list[str] = []
    context_organ: str | None = None
    sites: dict[int, set[str]] = {}  # id(finding) -> sites (keys change as sides merge)
    for sent in _bucket(low):
        sent.text = low[sent.start : sent.end]
        mentions = _mentions(sent, context_organ, region)
        _assign_attributes(sent, low, mentions)
        _share_sides(mentions)
        result.comparisons += _comparisons(sent, mentions)
        result.abnormal += _abnormalities(sent, mentions, context_organ)
        for x in mentions:
            if x.negated:
                result.negated.append((FINDING_KINDS[x.kind].organ, x.kind))
                stated_normal.append(FINDING_KINDS[x.kind].organ)
            else:
                f = _add(result.findings, _to_finding(x))
                sites.setdefault(id(f), set()).update(x.sites)
        scopes = _negation_scopes(sent)
        for start, _, organ in sent.organs:
            denied = any(b <= start < e for b, e in scopes)  # "no bowel obstruction"
            if organ != "other" and (sent.has_normal or denied):
                stated_normal.append(organ)
        organs = [o for _, _, o in sent.organs if o != "other"]
        if organs:
            context_organ = organs[-1]
    result.sites = {f.key(): frozenset(sites[id(f)]) for f in result.findings if sites[id(f)]}
    result.global_normal = bool(_GLOBAL_NORMAL_RE.search(low))
    positive = {f.organ for f in result.findings} | {organ for organ, _ in result.abnormal}
    result.normal_organs = list(dict.fromkeys(o for o in stated_normal if o not in positive))
    return result


def extract_findings(text: str, region: str | None = None) -> list[Finding]:
    """The positive findings stated in ``text`` (negated mentions left out)."""
    return extract_report(text, region).findings


def extract_comparisons(text: str) -> list[str]:
    """Labels of the comparisons with a prior study that ``text`` makes, in order."""
    return [c.label for c in extract_report(text).comparisons]


# The short name some callers use; ``extract_report`` is the name exported by mu2.findings.
extract = extract_report
