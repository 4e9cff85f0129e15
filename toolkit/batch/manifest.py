"""The lines of a batch: a localisation table (CSV/TSV) or a folder of recordings with transcripts.

A table has one row per line; its columns are found by forgiving names (`COLUMNS`: case,
spaces, dashes and underscores do not matter, and the usual names of game-localisation
tools are known): ``audio`` is required; ``id`` (else the audio path without its ending),
``text`` or ``transcript`` (a file path ending in .txt/.lab is read), ``lang``, ``model`` or
``rig``, ``fps`` are optional.  Relative paths are relative to the table's folder.

A folder is searched recursively for audio files; a ``.txt`` or ``.lab`` file beside one
(same name) is its transcript, and the id is its path inside the folder without the ending.

Everything that would make the whole batch wrong is refused here, before any work, with one
line naming the file, the row and the problem (`ManifestError`): no audio column, an empty
table, duplicate or unusable ids, audio paths outside the table's folder that do not exist
(a wrong base folder, not one bad line), unknown ids asked for with ``only``.  A missing or
broken file inside the folder is a bad *line*: the runner reports it and goes on.

Example
-------
>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "lines.tsv").write_text("Line ID\\tAudio File\\tDialogue\\nintro/001\\ta.wav\\tHello there.\\n")
>>> [(line.id, line.audio.name, line.text) for line in read_manifest(d / "lines.tsv")]
[('intro/001', 'a.wav', 'Hello there.')]
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

AUDIO_SUFFIXES = (".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".aif", ".aiff",
                  ".webm", ".wma", ".raw", ".pcm")
TRANSCRIPT_SUFFIXES = (".txt", ".lab")
MODEL_SUFFIXES = (".glb", ".gltf", ".vrm", ".fbx", ".blend")

# One table of column names: the field, then every name it goes by (compared without case,
# spaces, dashes or underscores), as localisation tools and studios write them.
COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("id", "line id", "line", "key", "string id", "dialogue id", "vo id", "name", "line name", "cue"),
    "audio": ("audio", "audio file", "audio path", "file", "filename", "path", "wav", "sound", "voice file",
              "recording", "asset"),
    "text": ("text", "transcript", "line text", "dialogue", "dialog", "subtitle", "sentence", "string",
             "source text", "translation", "content", "words"),
    "lang": ("lang", "language", "locale", "language code", "lang code", "culture"),
    "model": ("model", "rig", "character", "avatar", "rig profile", "profile", "face"),
    "fps": ("fps", "frame rate", "framerate", "frames per second"),
}
_ID_BAD = re.compile(r"[\x00-\x1f<>:\"|?*\\]")


class ManifestError(ValueError):
    """A manifest the batch cannot run; the message names the file (and row) and the problem."""


@dataclass(frozen=True)
class Line:
    """One line to animate: its id (the output name under OUTDIR, may contain folders), its audio,
    its transcript (None: audio only; "": an empty transcript, a bad line), language, character (a model file or rig profile), fps,
    and where it came from (``source``: file and row, for messages)."""

    id: str
    audio: Path
    text: str | None = None
    lang: str | None = None
    model: str | None = None
    rig: str | None = None
    fps: float | None = None
    source: str = ""


def read_manifest(path: str | Path, *, only: list[str] | None = None, exclude: Path | None = None) -> list[Line]:
    """The lines of a table or a folder (see the module notes), checked; ``only``: just these ids.

    ``exclude``: a folder whose files are never lines (the batch's output folder, when it lies
    inside the folder read)."""
    path = Path(path)
    if path.is_dir():
        lines = _read_folder(path, exclude)
    elif path.is_file():
        lines = _read_table(path)
    else:
        raise ManifestError(f"{path}: manifest not found (give a CSV/TSV table or a folder of recordings)")
    _check_ids(lines, path)
    return select(lines, only, path) if only else lines


def select(lines: list[Line], only: list[str], path: str | Path) -> list[Line]:
    """Just the lines ``only`` names (in the manifest's order); an id the manifest ``path`` lacks is refused."""
    known = {line.id for line in lines}
    unknown = [i for i in only if i not in known]
    if unknown:
        raise ManifestError(f"{path}: unknown id(s) {', '.join(map(repr, unknown[:5]))}"
                            f"{' ...' if len(unknown) > 5 else ''} (not in the manifest)")
    return [line for line in lines if line.id in set(only)]


# -- tables -------------------------------------------------------------------------------------------

def _norm(name: str) -> str:
    return re.sub(r"[\s_\-.]+", " ", name.strip().lower().lstrip("\ufeff")).strip()


def _columns(header: list[str], path: Path) -> dict[str, int]:
    """field -> column index, from the header row's names."""
    names = [_norm(h) for h in header]
    found: dict[str, int] = {}
    for field, aliases in COLUMNS.items():
        for alias in aliases:  # the table's order of preference: the first alias that is there
            if alias in names:
                found[field] = names.index(alias)
                break
    if "audio" not in found:
        raise ManifestError(f"{path}: no audio column (found {', '.join(repr(h) for h in header) or 'no header'}; "
                            f"name one of: {', '.join(COLUMNS['audio'])})")
    return found


def _read_table(path: Path) -> list[Line]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise ManifestError(f"{path}: cannot read the manifest ({e})") from None
    first = text.splitlines()[0] if text.strip() else ""
    delimiter = "\t" if "\t" in first or path.suffix.lower() == ".tsv" else (";" if first.count(";") > first.count(",") else ",")
    rows = [r for r in csv.reader(text.splitlines(), delimiter=delimiter)]
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise ManifestError(f"{path}: the manifest is empty")
    cols = _columns(rows[0], path)
    if len(rows) == 1:
        raise ManifestError(f"{path}: the manifest has a header but no lines")
    base = path.parent
    lines = []
    for n, row in enumerate(rows[1:], start=2):
        get = lambda f: (row[cols[f]].strip() if f in cols and cols[f] < len(row) else "")  # noqa: E731
        where = f"{path}:{n}"
        audio_s = get("audio")
        if not audio_s:
            raise ManifestError(f"{where}: the audio column is empty")
        audio = _resolve(audio_s, base, where)
        ident = get("id") or PurePosixPath(_relative(audio, base)).with_suffix("").as_posix()
        text_v = _transcript(get("text"), base, where)
        model, rig = _character(get("model"), base, where)
        # a table with a text column gives every line a transcript: an empty one is a bad line, not "audio only"
        lines.append(Line(ident, audio, text_v if "text" in cols else None, get("lang") or None, model, rig,
                          _fps(get("fps"), where), where))
    return lines


def _transcript(value: str, base: Path, where: str) -> str:
    """The text cell: the words, or the content of the .txt/.lab file it names.  A file name with no
    file there is refused (spoken, it would animate the words of its path, with status ok)."""
    if not value.lower().endswith(TRANSCRIPT_SUFFIXES) or "\n" in value:
        return value
    if (base / value).is_file():
        return _read_text(base / value, where)
    if " " not in value or "/" in value:  # a path, not a sentence that happens to end in ".txt"
        raise ManifestError(f"{where}: transcript {value}: no such file")
    return value


def _resolve(value: str, base: Path, where: str) -> Path:
    """An audio path from the table; a path outside the table's folder must exist (else the table
    is read against the wrong folder, and every line would fail)."""
    p = Path(value).expanduser()
    full = p if p.is_absolute() else base / p
    inside = _is_inside(full, base)
    if not inside and not full.exists():
        raise ManifestError(f"{where}: {value}: no such file, outside the manifest's folder {base} "
                            "(are the paths relative to another folder?)")
    return full


def _is_inside(p: Path, base: Path) -> bool:
    try:
        p.resolve().relative_to(base.resolve())
        return True
    except ValueError:
        return False


def _relative(p: Path, base: Path) -> str:
    try:
        return p.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return p.name


def _character(value: str, base: Path, where: str) -> tuple[str | None, str | None]:
    """A model file (.glb/.gltf/.vrm/.fbx/.blend) or a rig profile (a name or a .json file)."""
    if not value:
        return None, None
    if value.lower().endswith(MODEL_SUFFIXES):
        p = Path(value) if Path(value).is_absolute() else base / value
        if not p.is_file():
            raise ManifestError(f"{where}: model {value}: no such file")
        return str(p), None
    if value.lower().endswith(".json"):
        p = Path(value) if Path(value).is_absolute() else base / value
        if not p.is_file():
            raise ManifestError(f"{where}: rig {value}: no such file")
        return None, str(p)
    return None, value


def _fps(value: str, where: str) -> float | None:
    if not value:
        return None
    try:
        fps = float(value)
    except ValueError:
        raise ManifestError(f"{where}: fps {value!r} is not a number") from None
    if not 1 <= fps <= 240:
        raise ManifestError(f"{where}: fps {value} is outside 1-240")
    return fps


def _read_text(path: Path, where: str) -> str:
    try:
        return path.read_text(encoding="utf-8-sig").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise ManifestError(f"{where}: cannot read transcript {path} ({e})") from None


# -- folders ------------------------------------------------------------------------------------------

def _read_folder(folder: Path, exclude: Path | None) -> list[Line]:
    skip = exclude.resolve() if exclude is not None else None
    lines = []
    for audio in sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()):
        if skip is not None and _is_inside(audio, skip):
            continue
        rel = audio.relative_to(folder)
        text = None
        for suffix in TRANSCRIPT_SUFFIXES:
            t = audio.with_suffix(suffix)
            if t.is_file():
                text = _read_text(t, str(t)) or ""  # an empty transcript is a bad line, not "audio only"
                break
        lines.append(Line(PurePosixPath(rel.with_suffix("").as_posix()).as_posix(), audio, text,
                          source=str(audio)))
    if not lines:
        raise ManifestError(f"{folder}: no audio files found (looked for {' '.join(AUDIO_SUFFIXES)})")
    return lines


# -- ids ----------------------------------------------------------------------------------------------

def _check_ids(lines: list[Line], path: Path) -> None:
    """Ids name files under OUTDIR: unique (ignoring case: not every file system tells them apart),
    relative, without ``..`` or characters file systems refuse."""
    seen: dict[str, Line] = {}
    for line in lines:
        i = line.id
        if not i or i.startswith("/") or any(part in ("", ".", "..") for part in i.split("/")) or _ID_BAD.search(i):
            raise ManifestError(f"{line.source or path}: unusable id {i!r} (ids name output files: relative "
                                "paths without '..', ':', '\\\\' or control characters)")
        key = i.lower()
        if key in seen:
            raise ManifestError(f"{line.source or path}: duplicate id {i!r} (also {seen[key].source or 'above'})")
        seen[key] = line
