"""Argument types for the command line: values checked by the parser itself, before any work.

`Number` is an argparse type that refuses NaN, infinity and anything outside its range with a
message naming the option and the range (argparse exits 2 before any work); `parse_args` also
lets number options take negative values without '=' (``--offset-ms -5e2``).  `ipa_transcript`
refuses an empty IPA transcription or one with a symbol the toolkit cannot place, naming it.

Example
-------
>>> import argparse
>>> p = argparse.ArgumentParser(prog="viseme")
>>> _ = p.add_argument("--offset-ms", type=Number(-10_000, 10_000, unit=" (ms)"))
>>> parse_args(p, ["--offset-ms", "-2.5e2"]).offset_ms
-250.0
"""
from __future__ import annotations

import argparse

from toolkit.checks import allowed, in_range


class Number:
    """An argparse type: a number in a range, refused with the option's name and the range (exit 2)."""

    def __init__(self, lo: float, hi: float, whole: bool = False, unit: str = ""):
        self.lo, self.hi, self.whole, self.unit = lo, hi, whole, unit
        self.__name__ = "whole number" if whole else "number"   # argparse names the type in messages

    def __call__(self, text: str):
        try:
            value = int(text) if self.whole else float(text)
        except ValueError:
            value = None
        if value is None or not in_range(value, self.lo, self.hi, self.whole):
            raise argparse.ArgumentTypeError(f"must be {allowed(self.lo, self.hi, self.whole)}{self.unit}, "
                                             f"got {text!r}")
        return value


def ipa_transcript(text: str) -> str:
    """An argparse type: an IPA transcription `toolkit.phonemes.ipa.parse_ipa` can cut into phones.

    >>> ipa_transcript("ˈt͡ʃao")
    'ˈt͡ʃao'
    >>> ipa_transcript("kaX")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: IPA 'kaX': unknown symbol 'X' (U+0058) in 'kaX'
    """
    from toolkit.phonemes.ipa import parse_ipa

    if not text.strip():
        raise argparse.ArgumentTypeError("is empty; give the IPA of the words spoken, e.g. --ipa \"ˈhɛ.loʊ\"")
    try:
        parse_ipa(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _negative_numbers(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """``--offset-ms -5e2`` as ``--offset-ms=-5e2``: argparse takes '-5' for a number but '-5e2', '-1e9',
    '-inf' for options; a number option's value is its value whatever it looks like."""
    numeric = {o for _, a in _all_actions(parser) if isinstance(a.type, Number) for o in a.option_strings}
    out: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            return out + argv[i:]
        if a in numeric and i + 1 < len(argv) and argv[i + 1].startswith("-") and _is_number(argv[i + 1]):
            out.append(f"{a}={argv[i + 1]}")
            i += 2
            continue
        out.append(a)
        i += 1
    return out


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line, ``viseme animate: error: ... (see viseme animate --help)``:
    the usage block argparse prints first (a dozen lines for `animate`) buried the line that says what is
    wrong, and a script reading the last line of stderr got the usage's tail.  Sub-commands made by
    ``add_subparsers`` are of the same class.

    >>> p = Parser(prog="viseme")
    >>> p.error("argument --fps: must be a number")
    Traceback (most recent call last):
    ...
    SystemExit: 2
    """

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parse_args(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """``parser.parse_args`` with number options' negative values (see `_negative_numbers`) and a last
    check of what argparse skips the type of ('--fps=--' reaches the namespace as [])."""
    args = parser.parse_args(_negative_numbers(argv, parser))
    for owner, a in _all_actions(parser):
        v = getattr(args, a.dest, None) if isinstance(a.type, Number) else None
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))) and \
                owner.prog.endswith(" " + str(getattr(args, "command", ""))):
            owner.error(f"argument {'/'.join(a.option_strings)}: must be {allowed(a.type.lo, a.type.hi, a.type.whole)}")
    return args


def _all_actions(parser: argparse.ArgumentParser) -> list[tuple[argparse.ArgumentParser, argparse.Action]]:
    """Every (parser, action) of ``parser`` and its subcommands."""
    out = [(parser, a) for a in parser._actions]
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            for sub in a.choices.values():
                out += _all_actions(sub)
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
