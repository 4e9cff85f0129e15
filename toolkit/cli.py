"""The `viseme` command: parses arguments, calls pipeline / export / render, nothing else.

    viseme animate speech.wav --text "Bob made a map of Paris." -o out.json
    viseme align speech.wav --transcript speech.txt -o speech.TextGrid
    viseme say "Guten Morgen" --lang de -o hello
    viseme render out.json --audio speech.wav -o out.mp4
    viseme rig inspect avatar.glb
    viseme train
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from toolkit.files import check_output_path

FPS_CHOICES = (24, 25, 30, 48, 50, 60)


# -- output dispatch: one place that knows which extension goes where -----------------------------

def _output_kind(path: Path, fmt: str | None, png: str = "png") -> str:
    if fmt:
        return fmt
    name = path.name.lower()
    if name.endswith("rhubarb.json"):
        return "rhubarb-json"
    return {
        ".json": "json", ".csv": "livelink", ".tsv": "rhubarb-tsv", ".png": png, ".textgrid": "textgrid",
        ".glb": "gltf", ".gltf": "gltf", ".vrm": "gltf", ".vrma": "vrma", ".mp4": "mp4",
        ".blend": "blend", ".fbx": "fbx", ".wav": "wav",
    }.get(path.suffix.lower(), "unknown")


OUTPUT_KINDS = ("json", "livelink", "rhubarb-tsv", "rhubarb-json", "png", "textgrid", "gltf", "vrma", "mp4",
                "blend", "fbx")
MODEL_KINDS = ("gltf", "mp4", "sheet", "blend", "fbx")  # outputs that show --model ("sheet": render's stills)
BLENDER_MODELS = (".blend", ".fbx")  # only Blender outputs read these


@dataclass
class OutputPlan:
    """Outputs checked before any work: (path, kind) pairs, the model and rig they use, and every
    input file (the model's own .bin and textures included) that no output may overwrite."""

    items: list[tuple[Path, str]]
    model: str | None = None
    rig: str | None = None
    inputs: tuple[Path, ...] = ()


def plan_outputs(outputs, *, fmt: str | None = None, model=None, rig=None, inputs=(), png: str = "png") -> OutputPlan:
    """Check every output, and the model it needs, before anything is computed or written.

    Refuses unknown types, missing folders, an output that is one of the input files, and a
    model the outputs cannot use (broken buffers, broken VRM binds, no mouth target, .vrm
    from a model that is not a VRM), so a failure leaves nothing half written."""
    items = [(Path(o), _output_kind(Path(o), fmt, png)) for o in outputs]
    for path, kind in items:
        if kind not in OUTPUT_KINDS + ("sheet",):  # (.wav: only `say` writes speech, before this)
            raise ValueError(f"{path}: unknown output type {path.suffix!r}; use one of "
                             ".json .csv .tsv rhubarb.json .png .TextGrid .glb .gltf .vrm .vrma .mp4 .blend .fbx")
    files = [Path(x) for x in inputs if x]
    if rig and Path(rig).is_file():
        files.append(Path(rig))
    if model:
        files += _check_model(Path(model), rig, [(p, k) for p, k in items if k in MODEL_KINDS])
    else:
        from toolkit.export.gltf import check_output

        for path, kind in items:
            if kind == "gltf":
                check_output(path)
    for path, _ in items:
        check_output_path(path, inputs=tuple(files))
    return OutputPlan(items, model, rig, tuple(files))


def _check_model(src: Path, rig, used: list[tuple[Path, str]]) -> list[Path]:
    """The model file and the files it refers to, once the outputs in ``used`` are known to work with it."""
    if src.suffix.lower() in BLENDER_MODELS:
        others = [str(p) for p, k in used if k not in ("blend", "fbx")]
        if others:
            raise ValueError(f"{src}: a {src.suffix} model can only be written to .blend/.fbx, not to "
                             f"{', '.join(others)}; use a .glb/.gltf/.vrm model for those")
        if not src.is_file():
            raise ValueError(f"{src}: model file not found")
        return [src]
    from toolkit.export.gltf import check_output
    from toolkit.gltf_io import check_model, load_model

    # a model no output shows is still read: its .bin and textures must not be overwritten either
    model = check_model(src, rig) if used else load_model(src)
    for path, kind in used:
        if kind == "gltf":
            check_output(path, model)
    return [src] + model.external_files()


def write_outputs(anim, outputs, *, fmt: str | None = None, samples=None, audio_path=None, model=None, rig=None,
                  inputs=(), size: int = 512, compare=None) -> list[str]:
    """Write `anim` to every output (a list of paths, chosen by extension or `fmt`, or an
    `OutputPlan`); every output is checked before the first is written."""
    plan = outputs if isinstance(outputs, OutputPlan) else plan_outputs(outputs, fmt=fmt, model=model, rig=rig,
                                                                         inputs=inputs)
    written = []
    for path, kind in plan.items:
        check_output_path(path, inputs=plan.inputs)  # again: files may have appeared during the work
        report = _write_one(anim, path, kind, plan, samples=samples, audio_path=audio_path, size=size,
                            compare=compare)
        for line in getattr(report, "brief", lambda: [])():
            print(line, file=sys.stderr)
        written.append(str(path))
    return written


def _is_raw(path) -> bool:
    """A headerless PCM file: only `toolkit.audio` (told its rate) can read it, so writers get its samples."""
    from toolkit.audio import RAW_SUFFIXES

    return path is not None and Path(path).suffix.lower() in RAW_SUFFIXES


def _write_one(anim, path: Path, kind: str, plan: OutputPlan, *, samples, audio_path, size, compare):
    """Write one output; returns the writer's report (glTF writers) or None."""
    from toolkit.export import tracks

    model, rig = plan.model, plan.rig
    if kind == "json":
        tracks.write_json(anim, path)
    elif kind == "livelink":
        tracks.write_livelink_csv(anim, path)
    elif kind == "rhubarb-tsv":
        tracks.write_rhubarb_tsv(anim, path)
    elif kind == "rhubarb-json":
        tracks.write_rhubarb_json(anim, path, sound_file=str(audio_path or ""))
    elif kind == "png":
        tracks.write_plot_png(anim, path, samples=samples)
    elif kind == "sheet":
        from toolkit.render.preview import contact_sheet

        contact_sheet(anim, path, model=model, profile=rig, size=max(64, size // 2))  # tiles: half the video size
    elif kind == "textgrid":
        from toolkit.align import Alignment
        from toolkit.align.textgrid import write_textgrid

        al = Alignment(phonemes=anim.phonemes, words=anim.words, confidence=anim.meta.get("confidence", 1.0),
                       method=anim.meta.get("alignment", ""), warnings=[])
        write_textgrid(al, path, duration_s=anim.duration_s)
    elif kind == "gltf":
        from toolkit.export import gltf

        if model:
            return gltf.write_animated_model(anim, model, path, profile=rig)
        return gltf.write_standalone_head(anim, path)
    elif kind == "vrma":
        from toolkit.export import gltf

        return gltf.write_vrma(anim, path)
    elif kind == "mp4":
        from toolkit.render.preview import render_video

        render_video(anim, path, model=model, size=size, compare=compare, profile=rig,
                     audio=samples if samples is not None and _is_raw(audio_path) else audio_path)
    elif kind == "blend":
        from toolkit.export import blend

        blend.write_blend(anim, path, model=model, audio=audio_path, profile=rig)
    elif kind == "fbx":
        from toolkit.export import blend

        blend.write_fbx(anim, path, model=model, profile=rig)
    else:
        raise ValueError(f"{path}: cannot write output type {kind!r}")
    return None


# -- subcommands -------------------------------------------------------------------------------------

def _transcript(args) -> str | None:
    if getattr(args, "transcript", None):
        p = Path(args.transcript)
        try:
            return p.read_text(encoding="utf-8-sig").strip()
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"{p}: cannot read transcript ({e})") from None
    return getattr(args, "text", None)


def _check_transcript(args):
    """Bad transcript input fails before any work: --ipa with --text, an empty --ipa, an IPA symbol the
    toolkit cannot place, a language espeak-ng does not know."""
    from toolkit.phonemes import espeak
    from toolkit.phonemes.g2p import _is_english
    from toolkit.pipeline import transcript_words

    if args.ipa is not None and (args.text is not None or args.transcript):
        raise ValueError("--ipa gives the transcript already: leave out --text/--transcript")
    if not _is_english(args.lang):
        espeak.espeak_voice(args.lang)  # ValueError naming the language
    transcript_words(_transcript(args), args.ipa, args.lang)


def _params(args):
    from dataclasses import replace

    from toolkit.visemes.coarticulation import DEFAULT_PARAMS

    p = DEFAULT_PARAMS
    if args.anticipation_ms is not None:
        p = replace(p, anticipation_s=args.anticipation_ms / 1000.0)
    if args.jaw is not None:
        lo, hi = p.jaw_gain_range
        p = replace(p, jaw_gain_range=(lo * args.jaw, hi * args.jaw))
    return p


def _load_audio(args):
    """The command's audio, read once (16 kHz mono) for the pipeline and the writers; None without one."""
    from toolkit.audio import load_audio

    if not args.audio:
        return None
    return load_audio(args.audio, raw_rate=args.raw_rate, allow_truncated=args.allow_truncated)


def cmd_animate(args) -> int:
    from toolkit import pipeline

    text = _transcript(args)
    _check_transcript(args)
    # outputs and model checked before the pipeline runs: a bad model fails now, not after the wait
    plan = plan_outputs(args.output, fmt=args.format, model=args.model, rig=args.rig,
                        inputs=(args.audio, args.transcript, args.textgrid))
    samples = _load_audio(args)
    anim = pipeline.animate(
        samples, text, sample_rate=16000, source=args.audio, lang=args.lang, fps=args.fps, engine=args.engine,
        textgrid=args.textgrid, offset_ms=args.offset_ms, intensity=args.intensity, params=_params(args),
        seed=args.seed, blinks=not args.no_blinks, head_motion=not args.no_head, ipa=args.ipa,
    )
    for w in anim.meta.get("warnings", []):
        print(f"warning: {w}", file=sys.stderr)
    written = write_outputs(anim, plan, samples=samples, audio_path=args.audio, size=args.size)
    m = anim.meta
    print(f"{args.audio}: {anim.n_frames} frames at {anim.fps:g} fps, engine {m.get('engine')}, "
          f"alignment {m.get('alignment')} (confidence {m.get('confidence')}), {m.get('compute_s')} s -> "
          + ", ".join(written))
    return 0


def cmd_align(args) -> int:
    from toolkit import pipeline
    from toolkit.align.textgrid import write_textgrid
    from toolkit.files import atomic_write

    text = _transcript(args)
    _check_transcript(args)
    for o in args.output:
        check_output_path(Path(o), inputs=(args.audio, args.transcript))
    samples = _load_audio(args)
    al = pipeline.align(samples, text, lang=args.lang, sample_rate=16000, source=args.audio, ipa=args.ipa)
    for w in al.warnings:
        print(f"warning: {args.audio}: {w}", file=sys.stderr)
    doc = {
        "method": al.method, "confidence": round(float(al.confidence), 3),
        "words": [s.to_dict() for s in al.words], "phonemes": [s.to_dict() for s in al.phonemes],
    }
    if not args.output:
        json.dump(doc, sys.stdout, indent=1, ensure_ascii=False)
        print()
    for o in args.output:
        if o.lower().endswith(".textgrid"):
            duration = len(samples) / 16000
            write_textgrid(al, o, duration_s=duration)
        else:
            atomic_write(o, json.dumps(doc, indent=1, ensure_ascii=False))
    return 0


def cmd_say(args) -> int:
    from toolkit import pipeline
    from toolkit.audio import write_wav

    outs = list(args.output)
    if len(outs) == 1 and not Path(outs[0]).suffix:  # a prefix: wav + json
        outs = [outs[0] + ".wav", outs[0] + ".json"]
    wavs = [o for o in outs if o.lower().endswith(".wav")]
    for o in wavs:
        check_output_path(Path(o))
    plan = plan_outputs([o for o in outs if o not in wavs])
    speech, anim = pipeline.say(args.text, lang=args.lang, voice=args.voice, fps=args.fps,
                                intensity=args.intensity, seed=args.seed)
    duration = len(speech.samples) / speech.sample_rate
    for w in wavs:
        write_wav(w, speech.samples, speech.sample_rate)
    written = write_outputs(anim, plan, samples=speech.samples, audio_path=wavs[0] if wavs else None, size=args.size)
    print(f"said {args.text!r} in {args.lang}: {duration:.2f} s, {len(speech.phonemes)} phonemes -> "
          + ", ".join(wavs + written))
    return 0


def cmd_render(args) -> int:
    from toolkit.animation import Animation

    # `render` makes stills of the model from .png, not plots; everything is checked before the first write
    plan = plan_outputs(args.output, model=args.model, rig=args.rig,
                        inputs=(args.animation, args.audio, args.compare), png="sheet")
    anim = Animation.load(args.animation)
    compare = Animation.load(args.compare) if args.compare else None
    write_outputs(anim, plan, audio_path=args.audio, size=args.size, compare=compare)
    return 0


def cmd_rig(args) -> int:
    from toolkit.gltf_io import inspect_model

    print(inspect_model(args.model, profile=args.rig))
    return 0


def cmd_train(args) -> int:
    from toolkit.motion import train

    return train.main(args.rest) or 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="viseme", description="Speech in, 3D lip-sync curves out.")
    ap.add_argument("-v", "--verbose", action="store_true")
    sub = ap.add_subparsers(dest="command", required=True)

    def text_args(p):
        g = p.add_mutually_exclusive_group()
        g.add_argument("--text", help="transcript as a string")
        g.add_argument("--transcript", help="transcript file (UTF-8 text; `word=IPA` gives a word its pronunciation)")
        # (not in the group: giving it with --text gets the toolkit's own one-line message)
        p.add_argument("--ipa", help="transcript in IPA, words separated by spaces (any language, e.g. \"ˈt͡ʃao ˈbɛl.la\")")
        p.add_argument("--lang", default="en", help="language (espeak-ng code: en, de, fr, es, ...)")
        p.add_argument("--raw-rate", type=int, help="sample rate of headerless .raw/.pcm audio (s16le mono)")
        p.add_argument("--allow-truncated", action="store_true",
                       help="animate what a truncated WAV file holds instead of refusing it")

    p = sub.add_parser("animate", help="audio (+ transcript) -> animation files")
    p.add_argument("audio", help="speech audio: wav, flac, ogg, opus, mp3, raw")
    text_args(p)
    p.add_argument("--textgrid", help="use this Praat/Montreal Forced Aligner TextGrid for timing")
    p.add_argument("-o", "--output", action="append", required=True, help="output file; repeat for several")
    p.add_argument("--format", choices=OUTPUT_KINDS, help="output format (default: from the extension)")
    p.add_argument("--fps", type=float, default=30, help="frames per second (24, 25, 30, 60, ...)")
    p.add_argument("--engine", choices=("auto", "align", "neural", "hybrid"), default="auto")
    p.add_argument("--offset-ms", type=float, default=0.0, help="shift the animation later (ms; negative: earlier)")
    p.add_argument("--intensity", type=float, default=1.0, help="mouth motion scale (1 natural, 0.5 subtle, 1.5 big)")
    p.add_argument("--jaw", type=float, help="jaw opening scale (default 1)")
    p.add_argument("--anticipation-ms", type=float, help="how early visemes start (default 120)")
    p.add_argument("--model", help="character to animate (.glb/.gltf/.vrm) for model outputs")
    p.add_argument("--rig", help="rig profile name (see rigs/) or a rig .json file; default: detected")
    p.add_argument("--size", type=int, default=512, help="video size in pixels (.mp4; contact sheet tiles are half)")
    p.add_argument("--seed", type=int, default=0, help="seed for blinks and head motion")
    p.add_argument("--no-blinks", action="store_true")
    p.add_argument("--no-head", action="store_true", help="no head motion")
    p.set_defaults(func=cmd_animate)

    p = sub.add_parser("align", help="timed words and phonemes (JSON or TextGrid)")
    p.add_argument("audio")
    text_args(p)
    p.add_argument("-o", "--output", action="append", default=[], help=".json or .TextGrid (default: print JSON)")
    p.set_defaults(func=cmd_align)

    p = sub.add_parser("say", help="speak text with espeak-ng: wav + exactly timed animation")
    p.add_argument("text")
    p.add_argument("--lang", default="en")
    p.add_argument("--voice", help="espeak-ng voice or variant, e.g. en+f3")
    p.add_argument("-o", "--output", action="append", required=True,
                   help="a prefix (writes PREFIX.wav and PREFIX.json) or files by extension")
    p.add_argument("--fps", type=float, default=30)
    p.add_argument("--intensity", type=float, default=1.0)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_say)

    p = sub.add_parser("render", help="animation JSON -> preview video")
    p.add_argument("animation")
    p.add_argument("-o", "--output", action="append", required=True)
    p.add_argument("--model")
    p.add_argument("--audio")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--rig", help="rig profile name or .json file for --model (default: detected)")
    p.add_argument("--compare", help="a second animation JSON shown side by side")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("rig", help="rig tools")
    rs = p.add_subparsers(dest="rig_command", required=True)
    pi = rs.add_parser("inspect", help="list morph targets and the matching rig profile")
    pi.add_argument("model")
    pi.add_argument("--rig", help="show how this rig profile (name or .json file) maps the model, "
                                  "instead of the automatic match")
    pi.set_defaults(func=cmd_rig)

    p = sub.add_parser("train", help="train the neural audio-to-face model", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_train)
    return ap


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["train"]:  # its own options (argparse's REMAINDER would not pass `--help` on)
        from toolkit.motion import train

        return train.main(argv[1:]) or 0
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.ERROR, format="%(levelname)s: %(message)s")
    try:
        with warnings.catch_warnings():
            # the toolkit's warnings (a truncated file, a texture left out) as plain lines, not source locations
            warnings.showwarning = _show_warning
            return args.func(args)
    except (ValueError, OSError, RuntimeError, KeyError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"viseme: error: {msg}", file=sys.stderr)
        if args.verbose:
            raise
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
