"""What a batch has done, so a re-run does only what changed.

The ledger is ``OUTDIR/.viseme-batch/ledger.jsonl``: one JSON record per finished line (its id,
its `line_key`, its status, its outputs and its report row).  A line is skipped on a re-run when
its last record says it succeeded with the same key and every output it wrote is still there;
a changed audio file, transcript, option, character or toolkit version changes the key, so the
line is done again.

Records are appended one line at a time (flushed at once, synced every `SYNC_S`), so a batch
killed half-way keeps what it finished; a record cut off by the kill is ignored.  At the end of a run the ledger is
rewritten compactly (one record per id) through `toolkit.files.atomic_write`.

Example
-------
>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> led = Ledger(d)
>>> led.record({"id": "a", "key": "k1", "status": "ok", "outputs": []}); led.close()
>>> Ledger(d).is_done("a", "k1", []), Ledger(d).is_done("a", "k2", [])
(True, False)
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

FOLDER = ".viseme-batch"
NAME = "ledger.jsonl"
_CHUNK = 1 << 20
# Records are flushed one by one (a killed batch keeps them) and synced to disk this often: a power
# cut costs at most the lines of the last seconds, which the next run does again.
SYNC_S = 2.0


def toolkit_version() -> str:
    """The installed toolkit's version (part of every key: a new toolkit redoes every line)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("viseme-toolkit")
    except PackageNotFoundError:
        return "0+unknown"


def file_digest(path: str | Path | None) -> str:
    """SHA-256 of a file's bytes ("missing" when it cannot be read: the line will fail and be retried)."""
    if path is None:
        return "none"
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while block := f.read(_CHUNK):
                h.update(block)
    except OSError:
        return "missing"
    return h.hexdigest()


def line_key(line, options: dict, formats: list[str], version: str | None = None) -> str:
    """What a line's outputs depend on, hashed: the audio's bytes, the transcript, the line's and the
    batch's options, the output formats, the character file (or rig name) and the toolkit version."""
    character = file_digest(line.model) if line.model else (
        file_digest(line.rig) if line.rig and Path(line.rig).is_file() else line.rig)
    doc = {"audio": file_digest(line.audio), "text": line.text, "lang": line.lang, "fps": line.fps,
           "character": character, "options": options, "formats": sorted(formats),
           "version": version or toolkit_version()}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode("utf-8")).hexdigest()


class Ledger:
    """The records of a batch's output folder (see the module notes)."""

    def __init__(self, outdir: str | Path):
        self.path = Path(outdir) / FOLDER / NAME
        self.records: dict[str, dict] = {}
        self._file = None
        self._synced = time.monotonic()
        if self.path.is_file():
            for text in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    rec = json.loads(text)
                except json.JSONDecodeError:  # the last record of a killed run, cut off
                    continue
                if isinstance(rec, dict) and "id" in rec:
                    self.records[rec["id"]] = rec

    def is_done(self, line_id: str, key: str, outputs: list[str]) -> bool:
        """The line succeeded with this key before and its outputs are all there."""
        rec = self.records.get(line_id)
        return bool(rec and rec.get("status") == "ok" and rec.get("key") == key
                    and all(Path(o).is_file() for o in outputs))

    def record(self, rec: dict) -> None:
        """Add a finished line's record (appended and flushed at once; synced to disk every SYNC_S)."""
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")
        self._file.write(json.dumps(rec, default=str) + "\n")
        self._file.flush()
        if time.monotonic() - self._synced > SYNC_S:
            os.fsync(self._file.fileno())
            self._synced = time.monotonic()
        self.records[rec["id"]] = rec

    def close(self) -> None:
        if self._file is not None:
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None

    def compact(self) -> None:
        """Rewrite the ledger with one record per line (atomically)."""
        from toolkit.files import atomic_write

        self.close()
        if self.records:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, "".join(json.dumps(r, default=str) + "\n" for r in self.records.values()))
