"""Safe output files: atomic writes and checks that never touch the user's input.

Every exporter writes through `atomic_write`: the data goes to a temporary file
in the destination folder and is renamed over the target only when complete,
so a failure leaves no partial file and an existing file intact.

Example
-------
>>> import tempfile, os
>>> d = tempfile.mkdtemp()
>>> atomic_write(os.path.join(d, "a.txt"), "hello")
>>> open(os.path.join(d, "a.txt")).read()
'hello'
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


class OutputError(ValueError):
    """An output path that cannot or must not be written."""


def check_output_path(path: str | Path, inputs: tuple[str | Path | None, ...] = ()) -> Path:
    """Refuse outputs that would overwrite an input or land in a missing/unwritable folder."""
    path = Path(path)
    for src in inputs:
        if src is not None and Path(src).exists() and path.exists() and path.resolve() == Path(src).resolve():
            raise OutputError(f"{path}: output path is the same as the input; choose another name")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"{path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise OutputError(f"{path}: folder {folder} is not writable")
    if path.is_dir():
        raise OutputError(f"{path}: is a folder, not a file name")
    return path


def atomic_write(path: str | Path, data: str | bytes | Callable[[Path], None]) -> None:
    """Write text, bytes, or whatever `data(tmp_path)` writes, atomically to `path`."""
    path = check_output_path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        if callable(data):
            data(tmp_path)
        elif isinstance(data, bytes):
            tmp_path.write_bytes(data)
        else:
            tmp_path.write_text(data, encoding="utf-8")
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
