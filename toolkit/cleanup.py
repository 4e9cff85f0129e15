"""Stopping cleanly: nothing left behind when a command is interrupted.

Every temporary file or folder the toolkit makes comes from `temp_file` or `temp_dir`,
which remove it when their block ends, normally, on an error or on an interrupt.  The
command line runs inside `handle_signals`: SIGINT (Ctrl-C), SIGTERM (what ``timeout``,
``docker stop`` and systemd send) and SIGHUP (a closed terminal) then stop the programs the
toolkit started (ffmpeg, Blender's Python, mfa: every descendant process) and raise
`Interrupted` in the main thread, so every ``finally`` and ``with`` block on the way out
removes what it made; `remove_temporaries` sweeps up whatever is still registered.  The
command exits with 128 + the signal number (130, 143, 129), as shells do.

Example
-------
>>> with temp_file(suffix=".wav") as p:
...     p.exists()
True
>>> p.exists()
False
"""
from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

SIGNALS = tuple(s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP")) if s is not None)
# How long stopped programs get to exit after SIGTERM before they are killed.  ffmpeg and
# Blender quit in well under a second; a hung one must not keep the command alive.
CHILD_GRACE_S = 3.0

_temporaries: dict[str, bool] = {}   # path -> is a folder
_lock = threading.Lock()


class Interrupted(KeyboardInterrupt):
    """The command was stopped by a signal; ``exit_code`` is 128 + its number."""

    def __init__(self, signum: int):
        self.signum = signum
        self.exit_code = 128 + int(signum)
        super().__init__(f"stopped by {signal.Signals(signum).name}")


# -- temporary files and folders --------------------------------------------------------------------
def _register(path: str, is_dir: bool) -> None:
    with _lock:
        _temporaries[path] = is_dir


def _remove(path: str) -> None:
    with _lock:
        is_dir = _temporaries.pop(path, False)
    try:
        if is_dir:
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass


def is_temporary(path: str | Path) -> bool:
    """Whether ``path`` is, or lies in, a temporary file or folder made here (a working file, not an output)."""
    p = os.path.realpath(path)
    with _lock:
        return any(p == t or p.startswith(t.rstrip(os.sep) + os.sep) for t in map(os.path.realpath, _temporaries))


@contextmanager
def temp_file(dir: str | Path | None = None, prefix: str = ".viseme-", suffix: str = "") -> Iterator[Path]:
    """A new empty file (``dir``: default the system's temp folder), removed when the block ends
    unless it was renamed away by then."""
    fd, path = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=dir)
    _register(path, False)
    os.close(fd)
    try:
        yield Path(path)
    finally:
        _remove(path)


@contextmanager
def temp_dir(prefix: str = "viseme-") -> Iterator[Path]:
    """A new temporary folder, removed with everything in it when the block ends."""
    path = tempfile.mkdtemp(prefix=prefix)
    _register(path, True)
    try:
        yield Path(path)
    finally:
        _remove(path)


def remove_temporaries() -> list[str]:
    """Remove every temporary file and folder still registered; returns their paths."""
    with _lock:
        paths = list(_temporaries)
    for p in paths:
        _remove(p)
    return paths


# -- child processes ---------------------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc; empty elsewhere)."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            continue
    return out


def descendants(pid: int | None = None) -> list[int]:
    """Every process started by ``pid`` (default: this one), children before grandchildren."""
    todo, seen = _children(os.getpid() if pid is None else pid), []
    while todo:
        p = todo.pop(0)
        if p not in seen:
            seen.append(p)
            todo += _children(p)
    return seen


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def stop_children(grace_s: float = CHILD_GRACE_S) -> list[int]:
    """SIGTERM every descendant process, SIGKILL those still running after ``grace_s``; returns their ids.

    Processes started with ``subprocess`` are reaped by their owners (``Popen.wait``);
    this only makes sure none of them outlives the command."""
    pids = descendants()
    for p in pids:
        try:
            os.kill(p, signal.SIGTERM)
        except OSError:
            pass
    end = time.monotonic() + grace_s
    while time.monotonic() < end and any(_running(p) for p in pids):
        time.sleep(0.02)
    for p in pids:
        if _running(p):
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
    return pids


# -- signals -------------------------------------------------------------------------------------------
# After a signal the command gets this long to unwind through its `finally` blocks; a signal that
# arrives where Python cannot raise (inside a fork hook or a finalizer, which swallow exceptions), or
# a hung clean-up, must still end the command: a watchdog then removes what is left and exits.
UNWIND_GRACE_S = 5.0


@contextmanager
def handle_signals() -> Iterator[None]:
    """Within this block SIGINT, SIGTERM and SIGHUP stop the child processes and raise `Interrupted`
    (a second signal, or an interrupt that cannot unwind within `UNWIND_GRACE_S`, ends the process
    at once after removing the temporary files).  The previous handlers come back afterwards.
    Only the main thread can do this; elsewhere the block runs without handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    got: list[int] = []
    watchdog: list[threading.Timer] = []

    def on_signal(signum, frame):
        if got:  # a second signal: no more waiting
            _force_exit(signum)
        got.append(signum)
        watchdog.append(threading.Timer(UNWIND_GRACE_S, _force_exit, (signum,)))
        watchdog[0].daemon = True
        watchdog[0].start()
        stop_children()
        raise Interrupted(signum)

    for s in SIGNALS:
        signal.signal(s, on_signal)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
        for t in watchdog:
            t.cancel()
    if got:  # the Interrupted raised in the handler was swallowed on the way: the command still stops
        raise Interrupted(got[0])


def _force_exit(signum: int) -> None:
    stop_children(grace_s=1.0)
    remove_temporaries()
    try:
        os.write(2, f"viseme: stopped by {signal.Signals(signum).name}\n".encode())
    except OSError:
        pass
    os._exit(128 + int(signum))
