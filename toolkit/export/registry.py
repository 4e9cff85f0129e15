"""Output formats in one table: a file's extension -> the writer that makes it.

`plan_outputs` checks every requested output (its type, its folder, that it overwrites
no input, and the model the model outputs need) before any work, so a bad request
fails at once and leaves nothing half written; `write_outputs` then writes each one
(every writer writes atomically, see `toolkit.files.atomic_write`).  The command line
and the batch runner call these two and nothing else.

Example
-------
>>> format_for("out/take1.csv").name, format_for("mouth_rhubarb.json").name, format_for("face.vrm").name
('livelink', 'rhubarb-json', 'gltf')
>>> plan = plan_outputs(["/tmp/a.json"])                       # doctest: +SKIP
>>> write_outputs(anim, plan, WriteJob(audio_path="speech.wav"))   # doctest: +SKIP
['/tmp/a.json']
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from toolkit import cleanup, files
from toolkit.animation import Animation
from toolkit.files import check_output_path

BLENDER_MODELS = (".blend", ".fbx")  # models only the Blender outputs can read


@dataclass
class WriteJob:
    """What writers may need besides the animation: the character (``model``, ``rig``), the speech
    (``samples`` at 16 kHz and ``audio_path``), the video size and a second animation to compare."""

    model: str | None = None
    rig: str | None = None
    samples: np.ndarray | None = None  # or a `toolkit.recording.Recording` (long audio, read when a writer needs it)
    audio_path: str | None = None
    size: int = 512
    compare: Animation | None = None
    text: str | None = None  # the transcript as typed: captions keep its spelling and punctuation


@dataclass(frozen=True)
class Format:
    """One output format: its name (``--format``), the file endings it owns, its writer
    ``write(anim, path, job)`` (returns a report with ``brief()`` lines, or None), and whether it
    shows the character (``--model``)."""

    name: str
    suffixes: tuple[str, ...]
    write: Callable[[Animation, Path, WriteJob], object]
    shows_model: bool = False
    help: str = ""
    needs: tuple[str, ...] = ()  # Python modules the writer needs (from an extra), checked before any work
    extra: str = ""              # the extra that installs them
    binary: bool = False  # bytes a terminal must not print (`-o -` on a terminal is refused for these)


# -- the writers (imported when used: `import toolkit` stays quick) ---------------------------------
def _samples(job: WriteJob) -> np.ndarray | None:
    """The speech as one array (``job.samples`` may be a `toolkit.recording.Recording`, read block by block)."""
    return job.samples.samples() if hasattr(job.samples, "samples") else job.samples


def _json(anim, path, job):
    from toolkit.export import tracks

    tracks.write_json(anim, path)


def _livelink(anim, path, job):
    from toolkit.export import tracks

    tracks.write_livelink_csv(anim, path)


def _rhubarb_tsv(anim, path, job):
    from toolkit.export import tracks

    tracks.write_rhubarb_tsv(anim, path)


def _rhubarb_json(anim, path, job):
    from toolkit.export import tracks

    tracks.write_rhubarb_json(anim, path, sound_file=str(job.audio_path or ""))


def _plot(anim, path, job):
    from toolkit.export import tracks

    tracks.write_plot_png(anim, path, samples=_samples(job))


def _sheet(anim, path, job):
    from toolkit.render.preview import contact_sheet

    contact_sheet(anim, path, model=job.model, profile=job.rig, size=max(64, job.size // 2))  # tiles: half the video


def _textgrid(anim, path, job):
    from toolkit.alignment import Alignment
    from toolkit.alignment.textgrid import write_textgrid

    al = Alignment(phonemes=anim.phonemes, words=anim.words, confidence=anim.meta.get("confidence", 1.0),
                   method=anim.meta.get("alignment", ""), warnings=[])
    write_textgrid(al, path, duration_s=anim.duration_s)


def _gltf(anim, path, job):
    from toolkit.export import gltf

    if job.model:
        return gltf.write_animated_model(anim, job.model, path, profile=job.rig)
    return gltf.write_standalone_head(anim, path)


def _vrma(anim, path, job):
    from toolkit.export import gltf

    return gltf.write_vrma(anim, path)


def _mp4(anim, path, job):
    from toolkit.audio import RAW_SUFFIXES
    from toolkit.render.preview import render_video

    # a headerless PCM file only `toolkit.audio` can read (told its rate), or speech with no file at all
    # (`viseme say` without a .wav): the renderer gets the samples
    raw = job.audio_path is not None and Path(job.audio_path).suffix.lower() in RAW_SUFFIXES
    render_video(anim, path, model=job.model, size=job.size, compare=job.compare, profile=job.rig,
                 audio=_samples(job) if (raw or job.audio_path is None) and job.samples is not None
                 else job.audio_path)


def _html(anim, path, job):
    from toolkit.view.page import write_page

    return write_page(anim, path, model=job.model, audio_path=job.audio_path, samples=_samples(job), profile=job.rig)


def _unity(anim, path, job):
    from toolkit.export import unity

    return unity.write_unity_anim(anim, path, model=job.model, profile=job.rig)


def _godot(anim, path, job):
    from toolkit.export import godot

    return godot.write_godot_animation(anim, path, model=job.model, profile=job.rig)


def _srt(anim, path, job):
    from toolkit.export import captions

    captions.write_srt(anim, path, text=job.text)


def _vtt(anim, path, job):
    from toolkit.export import captions

    captions.write_vtt(anim, path, text=job.text)


def _blend(anim, path, job):
    from toolkit.audio import RAW_SUFFIXES, write_wav
    from toolkit.export import blend

    audio = job.audio_path
    with cleanup.temp_dir() as folder:
        # Blender reads (and packs) a sound file: speech with none (`viseme say` without a .wav) or a
        # headerless .raw/.pcm goes to it as a temporary WAV of the samples
        if job.samples is not None and (audio is None or Path(audio).suffix.lower() in RAW_SUFFIXES):
            audio = str(write_wav(folder / "speech.wav", _samples(job)))
        blend.write_blend(anim, path, model=job.model, audio=audio, profile=job.rig)


def _fbx(anim, path, job):
    from toolkit.export import blend

    blend.write_fbx(anim, path, model=job.model, profile=job.rig)


FORMATS: list[Format] = [
    Format("rhubarb-json", ("rhubarb.json",), _rhubarb_json, help="Rhubarb Lip Sync JSON mouth cues"),
    Format("json", (".json",), _json, help="animation JSON (every channel, phonemes, words)"),
    Format("livelink", (".csv",), _livelink, help="Live Link Face / ARKit CSV (Unreal)"),
    Format("rhubarb-tsv", (".tsv",), _rhubarb_tsv, help="Rhubarb Lip Sync TSV mouth cues"),
    Format("png", (".png",), _plot, help="curves over the waveform", needs=("matplotlib",), binary=True),
    Format("sheet", (), _sheet, shows_model=True, help="contact sheet of key frames (viseme render -o x.png)",
           needs=("pyrender", "OpenGL"), extra="render", binary=True),
    Format("textgrid", (".textgrid",), _textgrid, help="Praat TextGrid of words and phonemes"),
    Format("gltf", (".glb", ".gltf", ".vrm"), _gltf, shows_model=True, help="the character (or default head), talking",
           binary=True),
    Format("vrma", (".vrma",), _vrma, help="VRM Animation: expression tracks + head", binary=True),
    Format("mp4", (".mp4",), _mp4, shows_model=True, help="preview video with sound",
           needs=("pyrender", "OpenGL", "imageio_ffmpeg"), extra="render", binary=True),
    Format("blend", (".blend",), _blend, shows_model=True, help="Blender scene with the sound", extra="blender",
           binary=True),
    Format("fbx", (".fbx",), _fbx, shows_model=True, help="FBX with the shape-key animation baked",
           extra="blender", binary=True),
    Format("html", (".html", ".htm"), _html, shows_model=True,
           help="web page: the character talking with its sound (three.js, works offline)"),
    Format("unity", (".anim",), _unity, shows_model=True, help="Unity AnimationClip: blend shapes + head rotation"),
    Format("godot", (".tres",), _godot, shows_model=True, help="Godot 4 Animation: blend shapes + head rotation"),
    Format("srt", (".srt",), _srt, help="captions (SubRip) from the aligned words"),
    Format("vtt", (".vtt",), _vtt, help="captions (WebVTT) from the aligned words"),
]
BY_NAME = {f.name: f for f in FORMATS}


def format_for(path: str | Path, name: str | None = None, png: str = "png") -> Format:
    """The format of an output: ``name`` when given, else its ending (``png`` says what a .png is);
    standard output (``-``), a device or a FIFO without a known ending gets animation JSON."""
    path = Path(path)
    if name:
        if name not in BY_NAME:
            raise ValueError(f"unknown output format {name!r}; use one of {', '.join(BY_NAME)}")
        return BY_NAME[png] if name == "png" else BY_NAME[name]
    lower = path.name.lower()
    for f in FORMATS:  # in table order: "x_rhubarb.json" is Rhubarb's before it is any .json
        if any(lower.endswith(s) for s in f.suffixes):
            return BY_NAME[png] if f.name == "png" else f
    if files.is_stream(path):
        return BY_NAME["json"]
    files.output_target(path)  # a folder says so, not "unknown output type ''"
    known = " ".join(s for f in FORMATS for s in f.suffixes)
    what = repr(path.suffix) if path.suffix else "(the name has no file ending)"
    raise ValueError(f"{path}: unknown output type {what}; use one of {known}")


def _file_suffix(f: Format) -> str:
    """The file ending a format is written with (a streamed output is first written to a temporary
    file of that type; the contact sheet is a .png)."""
    return (f.suffixes or BY_NAME["png"].suffixes)[0]


@dataclass
class OutputPlan:
    """Outputs checked before any work: (path, format) pairs, the model and rig they use, and every
    input file (the model's own .bin and textures included) that no output may overwrite."""

    items: list[tuple[Path, Format]]
    model: str | None = None
    rig: str | None = None
    inputs: tuple[Path, ...] = field(default_factory=tuple)


def plan_outputs(outputs, *, fmt: str | None = None, model=None, rig=None, inputs=(), png: str = "png") -> OutputPlan:
    """Check every output, and the model it needs, before anything is computed or written.

    Refuses unknown types, missing folders, an output that is one of the input files, and a
    model the outputs cannot use (broken buffers, broken VRM binds, no mouth target, .vrm
    from a model that is not a VRM), so a failure leaves nothing half written."""
    targets = [files.output_target(o) for o in outputs]  # a folder, a read-only place: named first
    items = [(Path(o), format_for(o, fmt, png)) for o in outputs]
    _check_targets(targets, [f for _, f in items])
    for path, f in items:
        _check_installed(path, f)
    sources = [Path(x) for x in inputs if x]
    if rig:  # read now whatever the outputs: a misspelt profile must not be ignored (the default head, JSON)
        from toolkit.rigs import load_profile

        load_profile(rig)
    if rig and Path(rig).is_file():
        sources.append(Path(rig))
    if model:
        sources += _check_model(Path(model), rig, [(p, f) for p, f in items if f.shows_model])
    elif any(f.name == "gltf" for _, f in items):
        from toolkit.export.gltf import check_output

        for path, f in items:
            if f.name == "gltf" and not files.is_stream(path):
                check_output(path)
    for path, _ in items:
        check_output_path(path, inputs=tuple(sources))
    return OutputPlan(items, model, rig, tuple(sources))


def _check_targets(targets: list[files.Target], formats: list[Format]) -> None:
    """One output per file, at most one on standard output, and no binary data on a terminal."""
    check_distinct(targets)
    for t, f in zip(targets, formats):
        if f.binary and t.stream and files.is_terminal(t.path):
            raise ValueError(f"{t.label}: is a terminal and {f.name} is binary data; redirect it "
                             f"(-o - > out{_file_suffix(f)}) or pipe it into a program, or give a file name")


def check_distinct(targets: list[files.Target]) -> None:
    """Refuse two outputs that would write one file (or both standard output), naming both."""
    seen: dict[str, str] = {}
    for t in targets:
        key = str(t.real) if t.real is not None else "<stdout>" if t.stdout else os.path.realpath(t.path)
        if key in seen:
            what = "standard output" if key == "<stdout>" else key
            raise ValueError(f"{t.path}: two outputs would write {what} ({seen[key]} and {t.path}); "
                             "give each output its own file")
        seen[key] = str(t.path)


def _check_installed(path: Path, f: Format) -> None:
    """Refuse an output whose writer needs what this install lacks, naming the extra that adds it."""
    import importlib.util

    missing = [m for m in f.needs if importlib.util.find_spec(m) is None]
    if missing:
        how = f"pip install 'viseme-toolkit[{f.extra}]'" if f.extra else f"pip install {' '.join(missing)}"
        raise ValueError(f"{path}: writing {f.name} needs {', '.join(missing)}, which is not installed: {how}")
    if f.extra == "blender":
        from toolkit.export.blend import blender_python

        try:
            blender_python()
        except RuntimeError as e:
            raise ValueError(f"{path}: {e}") from None


def _check_model(src: Path, rig, used: list[tuple[Path, Format]]) -> list[Path]:
    """The model file and the files it refers to, once the outputs in ``used`` are known to work with it."""
    if src.suffix.lower() in BLENDER_MODELS:
        others = [str(p) for p, f in used if f.name not in ("blend", "fbx")]
        if others:
            raise ValueError(f"{src}: a {src.suffix} model can only be written to .blend/.fbx, not to "
                             f"{', '.join(others)}; use a .glb/.gltf/.vrm model for those")
        if not src.is_file():
            raise ValueError(f"{src}: model file not found")
        return [src]
    from toolkit.export.gltf import check_output
    from toolkit.gltf.drive import check_model
    from toolkit.gltf.read import load_model

    # a model no output shows is still read: its .bin and textures must not be overwritten either
    model = check_model(src, rig) if used else load_model(src)
    for path, f in used:
        if f.name == "gltf" and not files.is_stream(path):   # a stream gets GLB bytes: no file name to check
            check_output(path, model)
    return [src] + model.external_files()


def write_outputs(anim: Animation, plan: OutputPlan, job: WriteJob | None = None, report=print) -> list[str]:
    """Write ``anim`` to every output of ``plan`` (see `plan_outputs`); returns the paths written.

    Writers' reports (what a model output drives, its warnings) go to ``report`` line by line
    (stderr by default)."""
    job = job or WriteJob()
    job.model, job.rig = plan.model, plan.rig
    anim.check_finite()  # no output may hold a NaN or an infinity, whatever made the animation
    written = []
    from toolkit import progress

    with files.all_or_nothing():  # an interrupt between two outputs leaves the old ones, all of them
        for path, f in plan.items:
            check_output_path(path, inputs=plan.inputs)  # again: files may have appeared during the work
            if files.output_target(path).stream:
                rep = _write_stream(anim, path, f, job)
            else:
                rep = f.write(anim, path, job)
            progress.advance("write", anim.duration_s / len(plan.items))
            for line in getattr(rep, "brief", lambda: [])():
                report(line, file=sys.stderr)
            written.append(str(path))
    return written


def _write_stream(anim: Animation, path: Path, f: Format, job: WriteJob):
    """Standard output, a device or a FIFO: the writer makes a temporary file of its type, whose
    bytes are then streamed there (`toolkit.files.publish`)."""
    with cleanup.temp_dir() as folder:
        tmp = folder / ("out" + _file_suffix(f))
        rep = f.write(anim, tmp, job)
        files.publish(tmp, path)
    if hasattr(rep, "out_path"):
        rep.out_path = str(path)
    return rep
