"""Numbers in range: the one check the Python API (`toolkit.pipeline.Options`,
`CoarticulationParams`) and the command line's argument types share, so both refuse the same
values with the same words.  NaN and infinity are never in range.

Example
-------
>>> check_number("fps", 30, 1, 240)
30
>>> check_number("fps", float("nan"), 1, 240)
Traceback (most recent call last):
...
ValueError: fps must be a number from 1 to 240, got nan
>>> check_number("seed", 2.5, 0, 10, whole=True)
Traceback (most recent call last):
...
ValueError: seed must be a whole number from 0 to 10, got 2.5
"""
from __future__ import annotations

import math
import numbers


def allowed(lo: float, hi: float, whole: bool = False) -> str:
    """The words for a range: ``a number from 1 to 240``."""
    return f"a {'whole ' if whole else ''}number from {_num(lo)} to {_num(hi)}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def in_range(value, lo: float, hi: float, whole: bool = False) -> bool:
    """Whether ``value`` is a real (not bool) number, finite, in [lo, hi], and whole when asked."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    if whole and not isinstance(value, numbers.Integral):
        return False
    return math.isfinite(value) and lo <= value <= hi


def check_number(name: str, value, lo: float, hi: float, whole: bool = False):
    """``value`` when it is in range, else ValueError naming ``name`` and the range."""
    if not in_range(value, lo, hi, whole):
        raise ValueError(f"{name} must be {allowed(lo, hi, whole)}, got {value!r}")
    return value
