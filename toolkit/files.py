"""Safe output files: atomic writes that keep links, modes and special files, and never touch an input.

Every writer goes through `atomic_write` (or hands it a finished file), and every output
path is checked with `check_output_path` before any work.  What stands at the path decides
how the bytes get there:

* nothing, or a regular file: the data goes to a temporary file beside it that is renamed
  over the target only when complete, so a failure or an interrupt leaves no partial file
  and an existing file intact.  An existing file keeps its permissions (and, for root, its
  owner); a new one gets the usual ``0666 & ~umask``.
* a symbolic link: the same, beside the file the link points to; the link stays a link.
* ``-``, a character device (``/dev/stdout``, ``/dev/null``, a terminal) or a FIFO: the
  bytes are streamed into it (``-`` is standard output); nothing is renamed or replaced.
* a folder, a block device or socket, a missing or read-only folder, a read-only file, an
  input file: refused with `OutputError`, naming the user's path.

Example
-------
>>> import tempfile, os
>>> d = tempfile.mkdtemp()
>>> atomic_write(os.path.join(d, "a.txt"), "hello")
>>> open(os.path.join(d, "a.txt")).read()
'hello'
>>> os.symlink("a.txt", os.path.join(d, "link.txt"))
>>> atomic_write(os.path.join(d, "link.txt"), "through the link")
>>> os.path.islink(os.path.join(d, "link.txt")), open(os.path.join(d, "a.txt")).read()
(True, 'through the link')
"""
from __future__ import annotations

import errno
import os
import shutil
import stat
import sys
import threading
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from toolkit import cleanup

STDOUT = "-"  # the output path that means standard output


class OutputError(ValueError):
    """An output path that cannot or must not be written."""


@dataclass(frozen=True)
class Target:
    """Where an output's bytes go: ``path`` as the user gave it; ``real`` the file a rename
    replaces (symbolic links followed; None for streams); ``stream`` True for standard output,
    character devices and FIFOs, which get the bytes written into them; ``stdout`` when
    that stream is this process's standard output."""

    path: Path
    real: Path | None
    stream: bool = False
    stdout: bool = False

    @property
    def label(self) -> str:
        """The user's path, and where it leads when that is somewhere else (a symbolic link)."""
        if self.real is not None and os.path.abspath(self.path) != str(self.real):
            return f"{self.path} (-> {self.real})"
        return "standard output" if str(self.path) == STDOUT else str(self.path)


def _is_stdout(st: os.stat_result) -> bool:
    try:
        return os.path.samestat(st, os.fstat(sys.stdout.fileno()))
    except (OSError, ValueError, AttributeError):  # no real stdout (a test's capture, a closed one)
        return False


def output_target(path: str | Path) -> Target:
    """What stands at an output path and how it will be written (see the module docstring).

    Raises `OutputError` naming ``path`` for a folder, a block device or socket, a symbolic
    link loop, a missing or read-only folder, or a read-only file."""
    p = Path(path)
    if str(path) == STDOUT:
        return Target(p, None, stream=True, stdout=True)
    try:
        st = os.stat(p)  # follows links, /proc's /dev/stdout -> pipe:[...] included
    except FileNotFoundError:
        st = None
    except OSError as e:
        why = "a symbolic link loop" if e.errno == errno.ELOOP else e.strerror
        raise OutputError(f"{path}: cannot be written ({why})") from None
    if st is not None and (stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode) or _is_stdout(st)):
        if not _is_stdout(st) and not os.access(p, os.W_OK):
            raise OutputError(f"{path}: is not writable")
        return Target(p, None, stream=True, stdout=_is_stdout(st))
    real = Path(os.path.realpath(p))
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise OutputError(f"{path}: is a folder; give a file name (for example {Path(path) / 'out.json'})")
        if not stat.S_ISREG(st.st_mode):
            kind = "a block device" if stat.S_ISBLK(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) \
                else "not a regular file"
            raise OutputError(f"{path}: is {kind}; refusing to write over it")
        # no write bit for anyone is the owner's "keep this", which root's access check ignores
        if not os.access(real, os.W_OK) or not st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
            raise OutputError(f"{Target(p, real).label}: is read-only; refusing to replace it")
    folder = real.parent
    if not folder.is_dir():
        raise OutputError(f"{path}: folder {_shown(path, folder)} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: folder {_shown(path, folder)} is not writable")
    return Target(p, real)


def _shown(path, folder: Path) -> str:
    """The folder as the user wrote it when the path is not a link, else where the link leads."""
    given = Path(path).parent
    return str(given if os.path.realpath(given) == str(folder) and str(given) else folder)


def check_output_path(path: str | Path, inputs: tuple[str | Path | None, ...] = ()) -> Path:
    """Refuse an output that cannot be written (see `output_target`) or that is one of ``inputs``
    (after following links; hard links count too).  Returns ``Path(path)``."""
    t = output_target(path)
    if t.real is not None:
        for src in inputs:
            if src is None or str(src) == STDOUT:
                continue
            same = os.path.realpath(src) == str(t.real)
            if not same and t.real.exists() and Path(src).exists():
                same = os.path.samefile(t.real, src)
            if same:
                raise OutputError(f"{t.label}: output path is the same as the input {src}; choose another name")
    return Path(path)


def is_stream(path: str | Path) -> bool:
    """Whether ``path`` is ``-``, a character device or a FIFO (written by streaming, no file ending needed)."""
    try:
        return output_target(path).stream
    except OutputError:
        return False


def is_terminal(path: str | Path) -> bool:
    """Whether writing to ``path`` would print on a terminal (binary data must not)."""
    t = output_target(path)
    if t.stdout:
        try:
            return os.isatty(sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            return False
    if t.stream:
        real = os.path.realpath(t.path)
        return real.startswith(("/dev/tty", "/dev/pts/", "/dev/console"))
    return False


# -- writing -----------------------------------------------------------------------------------------
def atomic_write(path: str | Path, data: str | bytes | Callable[[Path], None]) -> None:
    """Write text (UTF-8), bytes, or whatever ``data(tmp_path)`` writes to a temporary path, to ``path``
    (see the module docstring for what each kind of path gets)."""
    t = output_target(path)
    if t.stream:
        if callable(data):
            with cleanup.temp_file(prefix=".viseme-stream.", suffix=Path(path).suffix) as tmp:
                data(tmp)
                _stream(t, tmp.read_bytes())
        else:
            _stream(t, data.encode("utf-8") if isinstance(data, str) else data)
        return
    real = t.real
    try:
        with _part_file(real) as tmp:
            if callable(data):
                data(tmp)
            elif isinstance(data, bytes):
                tmp.write_bytes(data)
            else:
                tmp.write_text(data, encoding="utf-8")
            _commit_or_hold(tmp, real)
    except OSError as e:  # a full disk, a quota: the user's path, not the temporary file's (already removed)
        raise OutputError(f"{path}: cannot be written ({e.strerror or e})") from e


def publish(done: Path, path: str | Path) -> None:
    """`atomic_write`'s last step for a file another program finished (ffmpeg's video, Blender's
    scene): ``done`` becomes ``path`` (renamed when it lies beside the target, else copied)."""
    t = output_target(path)
    if t.stream:
        _stream(t, Path(done).read_bytes())
        return
    if Path(done).parent.resolve() == t.real.parent:
        _commit_or_hold(Path(done), t.real)
        return
    atomic_write(path, lambda tmp: shutil.copyfile(done, tmp))


def temp_beside(path: str | Path, suffix: str | None = None):
    """A temporary file for a program to write ``path``'s content into, then `publish` it: beside the
    target (so the rename is atomic and relative paths inside it hold), or in the temp folder for a
    stream.  A context manager: the file is gone when the block ends unless published."""
    t = output_target(path)
    suffix = Path(path).suffix if suffix is None else suffix
    if t.stream:
        return cleanup.temp_file(prefix=".viseme-stream.", suffix=suffix)
    return _part_file(t.real, suffix)


def _part_file(real: Path, suffix: str | None = None):
    """A hidden temporary file beside ``real`` (``.NAME.XXXX.part.EXT``): the same folder, so the rename over
    it is atomic; removed when its block ends unless renamed away."""
    suffix = real.suffix if suffix is None else suffix
    return cleanup.temp_file(dir=real.parent, prefix=f".{real.name}.", suffix=".part" + suffix)


@contextmanager
def all_or_nothing() -> Iterator[None]:
    """The files written in this block are renamed into place together when it ends without an error:
    a failure or an interrupt between two outputs (a job's JSON done, its video still rendering) leaves
    every existing output as it was, not some new and some old.  Streams are written at once.

    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> with all_or_nothing():
    ...     atomic_write(os.path.join(d, "a.txt"), "hello")
    ...     os.path.exists(os.path.join(d, "a.txt"))
    False
    >>> open(os.path.join(d, "a.txt")).read()
    'hello'
    """
    with ExitStack() as stack:  # holds the finished files; removes those never renamed into place
        pending: list[tuple[Path, Path]] = []
        _holds.stack = getattr(_holds, "stack", []) + [(stack, pending)]
        try:
            yield
            for tmp, real in pending:
                _commit(tmp, real)
        finally:
            _holds.stack = _holds.stack[:-1]


_holds = threading.local()  # per thread (a Dask worker runs jobs in threads): the open `all_or_nothing` blocks


def _commit_or_hold(tmp: Path, real: Path) -> None:
    """`_commit` now, or, inside `all_or_nothing`, keep the finished file until the block ends (a working
    file in a temporary folder is committed now: a program reads it next, the WAV of headerless audio)."""
    if not getattr(_holds, "stack", None) or cleanup.is_temporary(real):
        _commit(tmp, real)
        return
    stack, pending = _holds.stack[-1]
    kept = stack.enter_context(_part_file(real))
    os.replace(tmp, kept)  # out of the writer's temporary file, which its own block removes
    pending.append((kept, real))


def _commit(tmp: Path, real: Path) -> None:
    """Give the finished temporary file the target's permissions (and owner), then rename it over it."""
    try:
        st = os.stat(real)
    except FileNotFoundError:
        os.chmod(tmp, 0o666 & ~_umask())
    else:
        os.chmod(tmp, stat.S_IMODE(st.st_mode))
        if hasattr(os, "geteuid") and os.geteuid() == 0 and (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
            try:
                os.chown(tmp, st.st_uid, st.st_gid)
            except OSError:  # a file system without owners (a mounted share): the content matters more
                pass
    os.replace(tmp, real)


def _umask() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: read it by setting it (and put it back at once)
    os.umask(mask)
    return mask


def _stream(t: Target, data: bytes) -> None:
    """Write ``data`` into standard output, a character device or a FIFO."""
    if t.stdout:
        sys.stdout.flush()
        out = getattr(sys.stdout, "buffer", None)
        if out is None:  # a text-only stdout (some embedding hosts): text formats only
            sys.stdout.write(data.decode("utf-8"))
        else:
            out.write(data)
            out.flush()
        return
    fd = os.open(t.path, os.O_WRONLY | os.O_NOCTTY)  # no O_CREAT: a device that vanished is not recreated
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
