"""Praat TextGrids: read word/phone tiers (Montreal Forced Aligner output) and write alignments.

Reads the long ("normal") and short text formats in UTF-8 or UTF-16 (with
BOM).  The words and phones tiers are found by name: ``words``/``phones``
as MFA writes them, ``<speaker> - words`` for multi-speaker output, or any tier
whose name contains "word"/"phon".  Phone labels may be ARPAbet with stress
digits (MFA's ``english_us_arpa`` models), IPA (MFA 2's ``english_mfa``) or
TIMIT-style; they come back as IPA.  ``sil``, ``sp``, ``spn``, ``<eps>`` and
empty intervals are silence ("").

Example
-------
>>> import tempfile, os
>>> from toolkit.alignment import Alignment
>>> from toolkit.animation import Segment
>>> al = Alignment([Segment("h", 0.0, 0.1), Segment("aɪ", 0.1, 0.3)], [Segment("hi", 0.0, 0.3)], 1.0, "test")
>>> path = os.path.join(tempfile.mkdtemp(), "hi.TextGrid")
>>> write_textgrid(al, path, duration_s=0.5)
>>> back = read_textgrid(path)
>>> [(p.label, p.start, p.end) for p in back.phonemes]
[('h', 0.0, 0.1), ('aɪ', 0.1, 0.3), ('', 0.3, 0.5)]
"""
from __future__ import annotations

import math
import re
from pathlib import Path

from toolkit.alignment.result import Alignment
from toolkit.animation import Segment
from toolkit.phonemes.inventory import ARPABET_TO_IPA, TIMIT_TO_IPA, arpabet_to_ipa, is_silence, split_ipa
from toolkit.phonemes.text import decode_text



class TextGridError(ValueError):
    """A file that is not a readable TextGrid; the message names the file."""


# Tokens of the Praat text format: strings ("" escapes a quote), numbers, and the
# <exists> flag; everything else (names such as "xmin =", "item [1]:") is layout.
_TOKEN = re.compile(r'"((?:[^"]|"")*)"|(?<![\w\[])([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)(?![\w\]])|(<exists>|<absent>)')


def _tokens(text: str) -> list[str | float]:
    """Strings, numbers and flags in file order.  Works on the whole text: labels may span lines,
    and the long format's "item [1]:" indices are skipped by the bracket look-arounds."""
    out: list[str | float] = []
    for m in _TOKEN.finditer(text):
        if m.group(1) is not None:
            out.append(m.group(1).replace('""', '"'))
        elif m.group(2) is not None:
            out.append(float(m.group(2)))
        else:
            out.append(m.group(3))
    return out


def read_tiers(path: str | Path) -> tuple[float, float, dict[str, list[Segment]]]:
    """(xmin, xmax, {tier name: intervals}) of a TextGrid (point tiers are skipped)."""
    path = Path(path)
    try:
        text = decode_text(path.read_bytes(), str(path), fallback="latin-1")  # old Praat files: Latin-1
    except OSError as e:
        raise TextGridError(f"{path}: cannot read ({e.strerror or e})") from None
    except ValueError as e:
        raise TextGridError(f"{e}; not a Praat TextGrid") from None
    if 'ooTextFile' not in text[:200] or "TextGrid" not in text[:200]:
        raise TextGridError(f"{path}: not a Praat TextGrid (no 'ooTextFile'/'TextGrid' header)")
    toks = _tokens(text)
    # everything up to the object class ("ooTextFile", "TextGrid") is header
    toks = toks[toks.index("TextGrid") + 1:] if "TextGrid" in toks[:3] else toks
    try:
        xmin, xmax = float(toks[0]), float(toks[1])
        i = 3  # after <exists> or <absent>
        n_tiers = 0 if toks[2] == "<absent>" else int(toks[i])
        i += 1
        tiers: dict[str, list[Segment]] = {}
        for _ in range(n_tiers):
            cls, name = str(toks[i]), str(toks[i + 1])
            i += 4  # class, name, xmin, xmax
            n = int(toks[i])
            i += 1
            if cls == "IntervalTier":
                segs = [Segment(str(toks[i + 3 * j + 2]).strip(), float(toks[i + 3 * j]), float(toks[i + 3 * j + 1]))
                        for j in range(n)]
                i += 3 * n
                key = name
                while key in tiers:
                    key += "'"
                tiers[key] = segs
            else:  # TextTier: time, mark
                i += 2 * n
    except (IndexError, ValueError, TypeError, OverflowError) as e:
        raise TextGridError(f"{path}: malformed TextGrid ({type(e).__name__}: {e})") from None
    _check_times(path, xmin, xmax, tiers)
    return xmin, xmax, tiers


# A TextGrid longer than this is broken, not a recording (a day of speech: far beyond any take).
MAX_TEXTGRID_S = 86_400.0


def _check_times(path: Path, xmin: float, xmax: float, tiers: dict[str, list[Segment]]) -> None:
    """Times must be finite, within a day, and intervals must not end before they start."""
    def bad(t: float) -> bool:
        return not math.isfinite(t) or abs(t) > MAX_TEXTGRID_S

    if bad(xmin) or bad(xmax) or xmax < xmin:
        raise TextGridError(f"{path}: malformed TextGrid: the grid runs from {xmin:g} to {xmax:g} s")
    for name, segs in tiers.items():
        for j, seg in enumerate(segs, 1):
            if bad(seg.start) or bad(seg.end) or seg.end < seg.start:
                raise TextGridError(f"{path}: malformed TextGrid: interval {j} of tier {name!r} runs from "
                                    f"{seg.start:g} to {seg.end:g} s")


def phone_to_ipa(label: str) -> str:
    """One aligner phone label (ARPAbet with stress, TIMIT, IPA, or a silence mark) -> an IPA label or ""."""
    lab = label.strip()
    if is_silence(lab):
        return ""
    up = lab.upper()
    if re.fullmatch(r"[A-Z]{1,2}[012]?", up) and (up.rstrip("012") in ARPABET_TO_IPA) and lab == up:
        return arpabet_to_ipa([up])[0]
    if lab in TIMIT_TO_IPA and lab.isascii() and len(lab) > 1:
        return TIMIT_TO_IPA[lab]
    parts = split_ipa(lab)
    return "".join(parts) if parts else lab


def _pick(tiers: dict[str, list[Segment]], kind: str) -> str | None:
    names = list(tiers)
    for n in names:
        if n.lower() == kind or n.lower().endswith(f" - {kind}"):
            return n
    stem = "word" if kind == "words" else "phon"
    for n in names:
        if stem in n.lower():
            return n
    return None


def read_textgrid(path: str | Path) -> Alignment:
    """An `Alignment` from a TextGrid's words and phones tiers (method "textgrid").

    A grid with only one tier is read as words; without a phones tier the
    phonemes list is empty and a warning says so (the caller can still derive
    phonemes from the words).  Raises `TextGridError` naming the file when it
    is not a TextGrid or has no interval tier.
    """
    path = Path(path)
    xmin, xmax, tiers = read_tiers(path)
    if not tiers:
        raise TextGridError(f"{path}: the TextGrid has no interval tier")
    warnings = []
    wname, pname = _pick(tiers, "words"), _pick(tiers, "phones")
    if wname is None and pname is None:
        wname = next(iter(tiers))
        warnings.append(f"{path}: no tier named words/phones; read tier {wname!r} as words")
    words = [s for s in tiers.get(wname, []) if not is_silence(s.label)] if wname else []
    phonemes = []
    if pname:
        for s in tiers[pname]:
            phonemes.append(Segment(phone_to_ipa(s.label), s.start, s.end))
    else:
        warnings.append(f"{path}: no phones tier")
    speakers = {n.split(" - ")[0] for n in tiers if " - " in n}
    if len(speakers) > 1:
        warnings.append(f"{path}: {len(speakers)} speakers; read {wname!r} and {pname!r}")
    return Alignment(phonemes, words, 1.0, "textgrid", warnings)


def _q(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'


def _tier_intervals(segs: list[Segment], end_s: float) -> list[Segment]:
    """Fill the gaps with empty intervals so the tier covers 0..end_s (as Praat requires)."""
    out, t = [], 0.0
    for s in sorted(segs, key=lambda x: x.start):
        a, b = max(t, float(s.start)), min(end_s, float(s.end))
        if b <= a:
            continue
        if a - t > 1e-6:
            out.append(Segment("", t, a))
        out.append(Segment(s.label, a, b))
        t = b
    if end_s - t > 1e-6 or not out:
        out.append(Segment("", t, end_s))
    return out


def textgrid_text(alignment: Alignment, duration_s: float | None = None) -> str:
    """The long-format TextGrid text of an alignment (tiers "words" and "phones")."""
    end = max([duration_s or 0.0, alignment.duration_s])
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0", f"xmax = {end:.6g}",
             "tiers? <exists>", "size = 2", "item []:"]
    for k, (name, segs) in enumerate((("words", alignment.words), ("phones", alignment.phonemes)), 1):
        ivs = _tier_intervals(segs, end)
        lines += [f"    item [{k}]:", '        class = "IntervalTier"', f"        name = {_q(name)}",
                  "        xmin = 0", f"        xmax = {end:.6g}", f"        intervals: size = {len(ivs)}"]
        for j, s in enumerate(ivs, 1):
            lines += [f"        intervals [{j}]:", f"            xmin = {s.start:.6g}", f"            xmax = {s.end:.6g}",
                      f"            text = {_q(s.label)}"]
    return "\n".join(lines) + "\n"


def write_textgrid(alignment: Alignment, path: str | Path, duration_s: float | None = None) -> None:
    """Write words and phones tiers as a UTF-8 long-format TextGrid, atomically.

    Praat, MFA and Gentle-style tools read it; silences are empty intervals.
    """
    from toolkit.files import atomic_write

    atomic_write(path, textgrid_text(alignment, duration_s))
