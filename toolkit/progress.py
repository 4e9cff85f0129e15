"""How far a long job has got: the stages report, a progress bar (or nothing) shows it.

The stages of the pipeline call `advance(stage, seconds)` as they finish each stretch of
audio; the pipeline calls `plan(duration_s, stages)` first.  Both do nothing unless the
caller opened a bar with `showing` (the CLI does, on a terminal), so library users and
batch workers pay nothing.  The bar counts seconds of audio, each stage weighted by its
usual share of the work (`WEIGHTS`), so its rate and ETA hold across stages.

Example
-------
>>> with showing(enabled=False):                  # a bar that stays quiet (not a terminal)
...     plan(10.0, ["align", "mouth"])
...     advance("align", 10.0); advance("mouth", 10.0)
"""
from __future__ import annotations

import sys
from contextlib import contextmanager
from contextvars import ContextVar

# Share of the work of each stage per second of audio, measured on one core on an hour of speech
# (bench/bench_scale.py): forced alignment dominates.
WEIGHTS = {"align": 0.82, "coarticulation": 0.02, "neural": 0.07, "life": 0.03, "write": 0.06}
# Shorter jobs are done before a bar would help.
MIN_DURATION_S = 60.0


class _Bar:
    def __init__(self, enabled: bool, file):
        self.enabled, self.file = enabled, file
        self._tqdm = None
        self._weights: dict[str, float] = {}

    def plan(self, duration_s: float, stages: list[str]) -> None:
        if not self.enabled or duration_s < MIN_DURATION_S:
            return
        from tqdm import tqdm

        self._weights = {s: WEIGHTS.get(s, 0.05) for s in stages}
        total = duration_s * sum(self._weights.values())
        self.close()
        self._tqdm = tqdm(total=round(total, 1), file=self.file, unit="s", dynamic_ncols=True, leave=False,
                          bar_format="{desc:<7} {percentage:3.0f}%|{bar}| {elapsed}<{remaining}")

    def advance(self, stage: str, seconds: float) -> None:
        if self._tqdm is not None and stage in self._weights:
            if self._tqdm.desc != stage:
                self._tqdm.set_description_str(stage, refresh=False)
            self._tqdm.update(round(seconds * self._weights[stage], 3))

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None


_current: ContextVar[_Bar | None] = ContextVar("toolkit_progress", default=None)


def plan(duration_s: float, stages: list[str]) -> None:
    """Start the shown bar (if any) for ``duration_s`` seconds of audio going through ``stages``."""
    bar = _current.get()
    if bar is not None:
        bar.plan(duration_s, stages)


def advance(stage: str, seconds: float) -> None:
    """``seconds`` more of the audio are through ``stage``."""
    bar = _current.get()
    if bar is not None:
        bar.advance(stage, seconds)


@contextmanager
def showing(enabled: bool | None = None, file=None):
    """Show a progress bar with ETA on ``file`` (stderr) while the block runs.

    ``enabled=None``: only when ``file`` is a terminal (a log file or a pipe gets nothing)."""
    file = file or sys.stderr
    if enabled is None:
        enabled = bool(getattr(file, "isatty", lambda: False)())
    bar = _Bar(enabled, file)
    token = _current.set(bar)
    try:
        yield bar
    finally:
        bar.close()
        _current.reset(token)
