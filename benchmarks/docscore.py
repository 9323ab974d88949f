"""Scoring OCR output of a document page against its ground truth (pure Python, no dependency).

Every measure compares *normalised* text (`normalise`, `normalise_lines`):

- Unicode NFKC (the ligatures U+FB00..U+FB06 become ``ff fi fl ffi ffl ft st``, full-width and
  compatibility forms become their plain letters, ``…`` becomes ``...``);
- quotes unified: ``‘ ’ ‚ ‛ ′ ‹ ›`` and the backtick become ``'``; ``“ ” „ ‟ ″ « »`` become ``"``;
- dashes and minus signs (U+2010..U+2015, U+2212, U+FE58, U+FE63, U+FF0D) become ``-``;
- soft hyphens and zero-width characters (U+00AD, U+200B..U+200D, U+2060, U+FEFF) are removed;
- whitespace (any run of Unicode spaces, tabs, line breaks) becomes one space; ends stripped.
  `normalise_lines` keeps the line breaks (one normalised string per non-empty line).

Case, punctuation and accents are kept: ``l`` read as ``1`` or a dropped comma is an error.

Measures (``ref`` is the ground truth, ``hyp`` the system's text, both raw strings):

- `cer`: Levenshtein distance (insertions, deletions, substitutions, each 1) between the
  normalised strings over the number of characters of the normalised reference. The text is
  compared in the order given, so it is *order-sensitive*: reading two columns line by line
  across the gutter costs about as much as the lines that end up away from their place.
  `order_cer` is the same function under the name the reading-order measure uses.
- `wer`: the same over words (the normalised text split at spaces) over reference words.
- `bag_of_words_f1`: words as a multiset, order ignored; precision = common words / hypothesis
  words, recall = common words / reference words, F1 their harmonic mean.
- `order_free_cer`: CER after putting the hypothesis's lines into the reference's order.
  Each hypothesis line (from `normalise_lines`) is placed where it matches the reference best:
  the end offset of its best approximate occurrence in the normalised reference (semi-global
  Levenshtein: the line must be matched whole, the reference part may start and end anywhere;
  ties go to the earliest end). The lines are sorted stably by that offset, joined with spaces,
  and scored by `cer`; the result is the smaller of that and the plain `cer`, so order can only
  be forgiven, never charged. A hypothesis that is a permutation of the reference's lines scores
  0; a line that merges text from two columns is placed as a whole and still costs.
  The reading-order cost of a page is ``order_cer - order_free_cer``. `order_free_wer` is the
  same for words. Where a page's reading order is not defined (tables, reference cards, slides
  whose ground truth follows poppler's blocks: labels, then values), the order-free numbers are
  the fairer measure of what was read; both are reported.

With an empty reference, `cer` and `wer` are 0 for an empty hypothesis and 1 otherwise.

Edit distances use Hyyrö's bit-parallel form of Myers' algorithm on Python integers (one
integer holds a bit per symbol of the first sequence), so a 5,000-character page takes a few
milliseconds; any hashable symbols work (characters for CER, words for WER).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Hashable, Sequence

__all__ = [
    "bag_of_words_f1",
    "best_match_end",
    "cer",
    "levenshtein",
    "normalise",
    "normalise_lines",
    "order_cer",
    "order_free_cer",
    "order_free_wer",
    "reorder_lines",
    "score_page",
    "wer",
]

_QUOTES = {c: "'" for c in "\u2018\u2019\u201a\u201b\u2032\u2039\u203a`"}
_QUOTES.update({c: '"' for c in "\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb"})
_DASHES = {c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"}
_REMOVED = {c: None for c in "\u00ad\u200b\u200c\u200d\u2060\ufeff"}
_TABLE = str.maketrans({**_QUOTES, **_DASHES, **_REMOVED})
_SPACES = re.compile(r"\s+")


def _unify(text: str) -> str:
    return unicodedata.normalize("NFKC", text).translate(_TABLE)


def normalise(text: str) -> str:
    """``text`` after the module's normalisation, on one line."""
    return _SPACES.sub(" ", _unify(text)).strip()


def normalise_lines(text: str) -> list[str]:
    """The non-empty lines of ``text``, each normalised."""
    lines = (_SPACES.sub(" ", line).strip() for line in _unify(text).splitlines())
    return [line for line in lines if line]


def _masks(a: Sequence[Hashable]) -> dict[Hashable, int]:
    peq: dict[Hashable, int] = {}
    for i, symbol in enumerate(a):
        peq[symbol] = peq.get(symbol, 0) | (1 << i)
    return peq


def levenshtein(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Edit distance between two sequences (unit costs), bit-parallel over ``a``."""
    if len(a) < len(b):
        a, b = b, a  # the longer one in the bit vector: fewer Python steps
    m = len(a)
    if not b:
        return m
    peq = _masks(a)
    mask = (1 << m) - 1
    last = 1 << (m - 1)
    pv, mv, score = mask, 0, m
    for symbol in b:
        eq = peq.get(symbol, 0)
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        ph = mv | ~(xh | pv)
        mh = pv & xh
        if ph & last:
            score += 1
        elif mh & last:
            score -= 1
        ph = (ph << 1) | 1  # the top row is 0, 1, 2, ...: both sequences are matched whole
        mh <<= 1
        pv = (mh | ~(xv | ph)) & mask
        mv = ph & xv & mask
    return score


def best_match_end(pattern: Sequence[Hashable], text: Sequence[Hashable]) -> tuple[int, int]:
    """(distance, end) of ``pattern``'s best approximate occurrence in ``text``: ``pattern``
    matched whole against ``text[start:end]`` for the best ``start``; the earliest best ``end``."""
    m = len(pattern)
    if m == 0:
        return 0, 0
    peq = _masks(pattern)
    mask = (1 << m) - 1
    last = 1 << (m - 1)
    pv, mv, score = mask, 0, m
    best, best_end = m, 0  # matching nothing: delete the whole pattern, before text[0]
    for j, symbol in enumerate(text):
        eq = peq.get(symbol, 0)
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        ph = mv | ~(xh | pv)
        mh = pv & xh
        if ph & last:
            score += 1
        elif mh & last:
            score -= 1
        ph <<= 1  # the top row is all 0: a match may start anywhere in ``text``
        mh <<= 1
        pv = (mh | ~(xv | ph)) & mask
        mv = ph & xv & mask
        if score < best:
            best, best_end = score, j + 1
    return best, best_end


def _rate(ref: Sequence[Hashable], hyp: Sequence[Hashable]) -> float:
    if not ref:
        return 0.0 if not hyp else 1.0
    return levenshtein(ref, hyp) / len(ref)


def cer(ref: str, hyp: str) -> float:
    """Character error rate of ``hyp`` against ``ref`` after `normalise`, in the given order."""
    return _rate(normalise(ref), normalise(hyp))


#: The order-sensitive CER: `cer` itself, named for the reading-order measure.
order_cer = cer


def wer(ref: str, hyp: str) -> float:
    """Word error rate: `levenshtein` over normalised words / reference words."""
    return _rate(normalise(ref).split(), normalise(hyp).split())


def bag_of_words_f1(ref: str, hyp: str) -> float:
    """F1 of the normalised words as multisets (1.0 when both are empty)."""
    r, h = Counter(normalise(ref).split()), Counter(normalise(hyp).split())
    if not r and not h:
        return 1.0
    common = sum((r & h).values())
    if common == 0:
        return 0.0
    precision, recall = common / sum(h.values()), common / sum(r.values())
    return 2 * precision * recall / (precision + recall)


def reorder_lines(ref: str, hyp: str) -> str:
    """``hyp``'s normalised lines sorted by where each best matches in the normalised ``ref``,
    joined with spaces (see `order_free_cer`)."""
    reference = normalise(ref)
    placed = []
    for index, line in enumerate(normalise_lines(hyp)):
        at = reference.find(line)
        end = at + len(line) if at >= 0 else best_match_end(line, reference)[1]
        placed.append((end, index, line))
    placed.sort()
    return " ".join(line for _, _, line in placed)


def order_free_cer(ref: str, hyp: str) -> float:
    """CER with the hypothesis's lines in the reference's order (see the module docstring)."""
    return min(cer(ref, hyp), cer(ref, reorder_lines(ref, hyp)))


def order_free_wer(ref: str, hyp: str) -> float:
    """WER with the hypothesis's lines in the reference's order, as `order_free_cer`."""
    return min(wer(ref, hyp), wer(ref, reorder_lines(ref, hyp)))


def score_page(ref: str, hyp: str) -> dict[str, float]:
    """Every measure of one page: ``cer`` and ``wer`` (in the hypothesis's order),
    ``order_free_cer`` and ``order_free_wer``, ``bow_f1``."""
    reordered = reorder_lines(ref, hyp)
    c, w = cer(ref, hyp), wer(ref, hyp)
    return {
        "cer": c,
        "wer": w,
        "order_free_cer": min(c, cer(ref, reordered)),
        "order_free_wer": min(w, wer(ref, reordered)),
        "bow_f1": bag_of_words_f1(ref, hyp),
    }
