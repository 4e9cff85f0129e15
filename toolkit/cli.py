"""The `viseme` command: parses arguments and calls one function per subcommand, nothing else.

    viseme animate speech.wav --text "Bob made a map of Paris." -o out.json
    viseme align speech.wav --transcript speech.txt -o speech.TextGrid
    viseme say "Guten Morgen" --lang de -o hello
    viseme render out.json --audio speech.wav -o out.mp4
    viseme view avatar.vrm --animation out.json --audio speech.wav -o talk.html
    viseme rig inspect avatar.glb
    viseme live --vmc
    viseme batch lines.csv -o out --format json,csv
    viseme train
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
import warnings
from pathlib import Path

# One core per job: numpy's BLAS threads only add CPU time on the toolkit's small matrices (measured:
# 2.5x the CPU for the same wall time); `viseme batch` runs jobs side by side instead.  A value the
# user set wins.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from toolkit import cleanup, progress  # noqa: E402
from toolkit.arguments import Number, Parser, ipa_transcript, parse_args  # noqa: E402
from toolkit.files import STDOUT, check_output_path, output_target  # noqa: E402

# -- subcommands -------------------------------------------------------------------------------------

def _transcript(args) -> str | None:
    """The transcript (--text or --transcript), None without one; an empty one is refused: an empty
    variable in a script (--text "$T") must not quietly turn into an audio-only animation."""
    if getattr(args, "transcript", None):
        from toolkit.phonemes.text import read_transcript

        text = read_transcript(args.transcript)
        if not text.strip():
            raise ValueError(f"{args.transcript}: the transcript file is empty; give the words spoken, or leave "
                             "--transcript out to animate from the audio alone")
        return text.strip()
    text = getattr(args, "text", None)
    if text is not None and not text.strip():
        raise ValueError("--text is empty; give the words spoken, or leave --text out to animate from the audio "
                         "alone (the neural engine)")
    return text


def _check_transcript(args, text: str | None) -> None:
    """The transcript's words worked out before any work, so that a language espeak-ng does not know
    (for --text/--transcript) or a transcript with no words fails first, in one line (an empty or
    unplaceable --ipa, and --ipa with --text, the parser refuses already)."""
    from toolkit.phonemes.g2p import transcript_words

    if getattr(args, "textgrid", None) is None:
        transcript_words(text, getattr(args, "ipa", None), args.lang)


def _summary_stream(outputs) -> object:
    """Where the one-line summary goes: stdout, unless an output is streamed there."""
    return sys.stderr if any(output_target(o).stdout for o in outputs) else sys.stdout


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
    """The command's audio, opened once (16 kHz mono, read block by block: any length) for the
    pipeline and the writers; None without one."""
    from toolkit.recording import open_recording

    if not args.audio:
        return None
    return open_recording(args.audio, raw_rate=args.raw_rate, allow_truncated=args.allow_truncated)


def cmd_animate(args) -> int:
    from toolkit import pipeline
    from toolkit.export.registry import WriteJob, plan_outputs, write_outputs

    text = _transcript(args)
    _check_transcript(args, text)
    # outputs and model checked before the pipeline runs: a bad model fails now, not after the wait
    plan = plan_outputs(args.output, fmt=args.format, model=args.model, rig=args.rig,
                        inputs=(args.audio, args.transcript, args.textgrid))
    samples = _load_audio(args)
    anim = pipeline.animate(
        samples, text, ipa=args.ipa, source=args.audio, lang=args.lang, fps=args.fps,
        engine=args.engine,
        textgrid=args.textgrid, offset_ms=args.offset_ms, intensity=args.intensity, params=_params(args),
        seed=args.seed, blinks=not args.no_blinks, head_motion=not args.no_head,
    )
    for w in anim.meta.get("warnings", []):
        print(f"warning: {w}", file=sys.stderr)
    written = write_outputs(anim, plan, WriteJob(samples=samples, audio_path=args.audio, size=args.size, text=text))
    m = anim.meta
    print(f"{args.audio}: {anim.n_frames} frames at {anim.fps:g} fps, engine {m.get('engine')}, "
          f"alignment {m.get('alignment')} (confidence {m.get('confidence')}), {m.get('compute_s')} s -> "
          + ", ".join(written), file=_summary_stream(args.output))
    return 0


def cmd_align(args) -> int:
    from toolkit import pipeline
    from toolkit.alignment.textgrid import write_textgrid
    from toolkit.files import all_or_nothing, atomic_write

    text = _transcript(args)
    _check_transcript(args, text)
    if sum(output_target(o).stdout for o in args.output) > 1:
        raise ValueError("only one output can go to standard output ('-')")
    for o in args.output:
        check_output_path(Path(o), inputs=(args.audio, args.transcript))
        # any other ending would get JSON under a name that promises a CSV or an image
        if Path(o).suffix.lower() not in (".json", ".textgrid") and not output_target(o).stream:
            raise ValueError(f"{o}: align writes .json or .TextGrid (or '-' for JSON on standard output), "
                             f"not {Path(o).suffix or 'a name with no file ending'}")
    samples = _load_audio(args)
    al = pipeline.align(samples, text, ipa=args.ipa, lang=args.lang, source=args.audio)
    for w in al.warnings:
        print(f"warning: {args.audio}: {w}", file=sys.stderr)
    doc = {
        "method": al.method, "confidence": round(float(al.confidence), 3),
        "words": [s.to_dict() for s in al.words], "phonemes": [s.to_dict() for s in al.phonemes],
    }
    if not args.output:
        json.dump(doc, sys.stdout, indent=1, ensure_ascii=False)
        print()
    with all_or_nothing():  # an interrupt between two outputs leaves the old ones, all of them
        for o in args.output:
            if o.lower().endswith(".textgrid") and o != STDOUT:
                duration = len(samples) / 16000
                write_textgrid(al, o, duration_s=duration)
            else:
                atomic_write(o, json.dumps(doc, indent=1, ensure_ascii=False))
    return 0


def cmd_say(args) -> int:
    from toolkit import pipeline
    from toolkit.audio import write_wav
    from toolkit.export.registry import WriteJob, check_distinct, plan_outputs, write_outputs

    outs = list(args.output)
    if len(outs) == 1 and not Path(outs[0]).suffix and not output_target(outs[0]).stream:  # a prefix: wav + json
        outs = [outs[0] + ".wav", outs[0] + ".json"]
    check_distinct([output_target(o) for o in outs])  # the .wav outputs too, which the plan does not hold
    wavs = [o for o in outs if o.lower().endswith(".wav")]
    for o in wavs:
        check_output_path(Path(o))
    plan = plan_outputs([o for o in outs if o not in wavs])
    speech, anim = pipeline.say(args.text, lang=args.lang, voice=args.voice, fps=args.fps,
                                intensity=args.intensity, seed=args.seed)
    duration = len(speech.samples) / speech.sample_rate
    for w in wavs:
        write_wav(w, speech.samples, speech.sample_rate)
    written = write_outputs(anim, plan, WriteJob(samples=speech.samples, audio_path=wavs[0] if wavs else None,
                                                 size=args.size, text=args.text))
    print(f"said {args.text!r} in {args.lang}: {duration:.2f} s, {len(speech.phonemes)} phonemes -> "
          + ", ".join(wavs + written), file=_summary_stream(outs))
    return 0


def cmd_render(args) -> int:
    from toolkit.animation import Animation
    from toolkit.export.registry import WriteJob, plan_outputs, write_outputs

    # `render` makes stills of the model from .png, not plots; everything is checked before the first write
    plan = plan_outputs(args.output, fmt=args.format, model=args.model, rig=args.rig,
                        inputs=(args.animation, args.audio, args.compare), png="sheet")
    anim = Animation.load(args.animation)
    compare = Animation.load(args.compare) if args.compare else None
    write_outputs(anim, plan, WriteJob(audio_path=args.audio, size=args.size, compare=compare))
    return 0


def cmd_view(args) -> int:
    from toolkit import pipeline
    from toolkit.animation import Animation
    from toolkit.export.registry import WriteJob, plan_outputs, write_outputs
    from toolkit.view import page, serve

    if not args.animation and not args.audio:
        raise ValueError("viseme view: give --animation anim.json, --audio speech.wav, or both")
    text = _transcript(args)
    _check_transcript(args, text)
    if args.output:
        _check_page_name(args.output)
    # the page, its model and the inputs checked before any work
    plan = plan_outputs([args.output] if args.output else [], fmt="html", model=args.model, rig=args.rig,
                        inputs=(args.animation, args.audio, args.transcript))
    if args.model and not args.output:
        from toolkit.gltf.drive import check_model

        check_model(args.model, args.rig)
    # the port is taken now (and held), so a busy one is refused before the audio is animated
    server = serve.make_server(port=args.serve) if not args.output else None
    samples = _load_audio(args)
    if args.animation:
        anim = Animation.load(args.animation)
    else:
        anim = pipeline.animate(samples, text, ipa=args.ipa, source=args.audio, lang=args.lang,
                                fps=args.fps)
    if args.output:
        write_outputs(anim, plan, WriteJob(samples=samples, audio_path=args.audio, text=text))
        print(f"wrote {args.output}: open it in a browser (works offline)", file=_summary_stream([args.output]))
        return 0
    server.page, _ = page.build_page(anim, args.model, audio_path=args.audio, samples=samples and samples.samples(),
                                     profile=args.rig)
    serve.serve(server, announce=lambda line: print(line, flush=True))
    return 0


def _check_page_name(out: str) -> None:
    """`view -o` writes HTML whatever the name, so a name another output format owns (talk.mp4,
    talk.json) is refused: it would hold a web page where a video or data is expected."""
    from toolkit.export.registry import FORMATS

    other = next((f for f in FORMATS if f.name != "html" and any(out.lower().endswith(s) for s in f.suffixes)), None)
    if other is not None:
        raise ValueError(f"{out}: viseme view writes a web page, not {other.name}; name it .html "
                         f"(`viseme render` and `viseme animate` write {other.name})")


def cmd_rig(args) -> int:
    from toolkit.gltf.inspect import inspect_report

    report, problem = inspect_report(args.model, profile=args.rig)
    print(report, flush=True)
    if problem is not None:  # the report says it too; the exit status (2) lets scripts gate their assets
        raise problem
    return 0


def cmd_live(args) -> int:
    from toolkit.live import run_live

    return run_live(args.input, realtime=args.realtime, fps=args.fps, vmc=args.vmc, livelink=args.livelink, ws=args.ws,
                    names=args.names, subject=args.subject, vmc_head=args.vmc_head, rate_hz=args.rate, seed=args.seed,
                    intensity=args.intensity, blinks=not args.no_blinks, head_motion=not args.no_head,
                    show_devices=args.list_devices)


def cmd_batch(args) -> int:
    from toolkit.batch.run import run_batch

    res = run_batch(args.manifest, args.output, formats=args.format.split(","), jobs=args.jobs,
                    scheduler=args.scheduler, force=args.force, only=args.only.split(",") if args.only else None,
                    lang=args.lang, fps=args.fps, quiet=args.quiet, engine=args.engine, seed=args.seed,
                    blinks=not args.no_blinks, head_motion=not args.no_head)
    # every line counted once (res.done counts the lines run, the failed ones among them)
    print(f"{args.manifest}: {res.total} lines: {res.done - res.failed} done, {res.skipped} unchanged, "
          f"{res.failed} failed, {res.wall_s:.1f} s -> {res.report_csv}")
    if res.failed:
        print(f"viseme batch: {res.failed} of {res.total} lines failed (worst first in {res.report_csv})", file=sys.stderr)
    return min(res.failed, 125)  # the exit status says how many lines failed


def cmd_train(args) -> int:
    from toolkit.train import audio2face

    return audio2face.main(args.rest) or 0


def build_parser() -> argparse.ArgumentParser:
    from toolkit.audio import RAW_RATE_LIMITS_HZ
    from toolkit.engines import ENGINES
    from toolkit.export.registry import FORMATS
    from toolkit.pipeline import LIMITS
    from toolkit.render import SIZE_LIMITS_PX

    OUTPUT_FORMATS = [f.name for f in FORMATS if f.suffixes]
    ap = Parser(prog="viseme", description="Speech in, 3D lip-sync curves out.",
                epilog="exit status: 0 done, 2 failed (bad input or usage, a missing program or "
                       "device: one line naming it), 1 internal error, 129/130/143 stopped by "
                       "SIGHUP/SIGINT/SIGTERM, 141 the reader of standard output closed the pipe; "
                       "viseme batch: the number of failed lines (at most 125)")
    ap.add_argument("-v", "--verbose", action="store_true", help="debug messages; tracebacks for errors")
    sub = ap.add_subparsers(dest="command", required=True)
    fps = Number(*LIMITS["fps"][:2], unit=" (frames per second)")
    intensity = Number(*LIMITS["intensity"][:2])
    seed = Number(*LIMITS["seed"][:2], whole=True)
    size = Number(*SIZE_LIMITS_PX, whole=True, unit=" (pixels)")

    def text_args(p):
        g = p.add_mutually_exclusive_group()
        g.add_argument("--text", help="transcript as a string")
        g.add_argument("--transcript", help="transcript file (UTF-8, or UTF-16/32 with a byte order mark; "
                                            "`word=IPA` gives a word its pronunciation)")
        g.add_argument("--ipa", type=ipa_transcript,
                       help="transcript in IPA, words separated by spaces (any language, e.g. \"ˈt͡ʃao ˈbɛl.la\")")
        p.add_argument("--lang", default="en", help="language (espeak-ng code: en, de, fr, es, ...; default en)")
        p.add_argument("--raw-rate", type=Number(*RAW_RATE_LIMITS_HZ, whole=True, unit=" (Hz)"),
                       help="sample rate of headerless .raw/.pcm audio (s16le mono)")
        p.add_argument("--allow-truncated", action="store_true",
                       help="use what a truncated (cut-off) WAV file holds instead of refusing it")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bar (shown on a terminal for long audio)")

    p = sub.add_parser("animate", help="audio (+ transcript) -> animation files")
    p.add_argument("audio", help="speech audio: wav, flac, ogg, opus, mp3, raw")
    text_args(p)
    p.add_argument("--textgrid", help="use this Praat/Montreal Forced Aligner TextGrid for timing")
    p.add_argument("-o", "--output", action="append", required=True,
                   help="output file; repeat for several; '-' writes to standard output (JSON, or --format)")
    p.add_argument("--format", choices=OUTPUT_FORMATS, help="output format (default: from the extension)")
    p.add_argument("--fps", type=fps, default=30, help="frames per second (24, 25, 30, 60, ...; default 30)")
    p.add_argument("--engine", choices=ENGINES, default="auto", help=ENGINE_HELP)
    p.add_argument("--offset-ms", type=Number(*LIMITS["offset_ms"][:2], unit=" (ms)"), default=0.0,
                   help="shift the animation later (ms; negative: earlier)")
    p.add_argument("--intensity", type=intensity, default=1.0,
                   help="mouth motion scale (1 natural, 0.5 subtle, 1.5 big)")
    p.add_argument("--jaw", type=Number(*JAW_SCALE), help="jaw opening scale (default 1)")
    p.add_argument("--anticipation-ms", type=Number(*ANTICIPATION_MS, unit=" (ms)"),
                   help="how early visemes start (default 120)")
    p.add_argument("--model", help="character to animate (.glb/.gltf/.vrm) for model outputs; .fbx/.blend for "
                                   ".blend/.fbx outputs; default: the toolkit's head")
    p.add_argument("--rig", help="rig profile name (see rigs/) or a rig .json file; default: detected")
    p.add_argument("--size", type=size, default=512, help=SIZE_HELP)
    p.add_argument("--seed", type=seed, default=0, help="seed for blinks and head motion")
    p.add_argument("--no-blinks", action="store_true", help="no blinks")
    p.add_argument("--no-head", action="store_true", help="no head motion")
    p.set_defaults(func=cmd_animate)

    p = sub.add_parser("align", help="timed words and phonemes (JSON or TextGrid)")
    p.add_argument("audio", help="speech audio: wav, flac, ogg, opus, mp3, raw")
    text_args(p)
    p.add_argument("-o", "--output", action="append", default=[],
                   help="output file, .json or .TextGrid; repeat for several (none, or '-': JSON on standard output)")
    p.set_defaults(func=cmd_align)

    p = sub.add_parser("say", help="speak text with espeak-ng: wav + exactly timed animation")
    p.add_argument("text", help="the words to speak")
    p.add_argument("--lang", default="en", help="language (espeak-ng code: en, de, fr, es, ...; default en)")
    p.add_argument("--voice", help="espeak-ng voice or variant, e.g. en+f3")
    p.add_argument("-o", "--output", action="append", required=True,
                   help="a prefix (writes PREFIX.wav and PREFIX.json) or files by extension; '-': JSON to stdout")
    p.add_argument("--fps", type=fps, default=30, help="frames per second (default 30)")
    p.add_argument("--intensity", type=intensity, default=1.0, help="mouth motion scale (1 natural)")
    p.add_argument("--size", type=size, default=512, help=SIZE_HELP)
    p.add_argument("--seed", type=seed, default=0, help="seed for blinks and head motion")
    p.set_defaults(func=cmd_say)

    p = sub.add_parser("render", help="animation JSON -> preview video, contact sheet or any other output")
    p.add_argument("animation", help="animation JSON (viseme animate ... -o anim.json)")
    p.add_argument("-o", "--output", action="append", required=True,
                   help="output file (.mp4, .png contact sheet, any animate format); '-': standard output")
    p.add_argument("--format", choices=OUTPUT_FORMATS, help="output format (default: from the extension)")
    p.add_argument("--model", help="character to show (.glb/.gltf/.vrm; .fbx/.blend for .blend/.fbx outputs); "
                                   "default: the toolkit's head")
    p.add_argument("--audio", help="the speech, for the video's sound (and the plot's waveform)")
    p.add_argument("--size", type=size, default=512, help=SIZE_HELP)
    p.add_argument("--rig", help="rig profile name or .json file for --model (default: detected)")
    p.add_argument("--compare", help="a second animation JSON shown side by side")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("view", help="the character talking in a web page (three.js; -o page.html or --serve PORT)")
    p.add_argument("model", nargs="?", help="character (.glb/.gltf/.vrm); default: the toolkit's head")
    p.add_argument("--animation", help="animation JSON to play (viseme animate ... -o anim.json)")
    p.add_argument("--audio", help="speech audio: the page's sound, and what is animated without --animation")
    text_args(p)
    p.add_argument("--fps", type=fps, default=30, help="frames per second when animating --audio")
    p.add_argument("--rig", help="rig profile name or .json file for the model (default: detected)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("-o", "--output", help="the page to write (.html), self-contained: open it from disk")
    where.add_argument("--serve", type=Number(0, 65535, whole=True, unit=" (a TCP port; 0: any free one)"),
                       metavar="PORT", help="serve the page on http://127.0.0.1:PORT/ instead")
    p.set_defaults(func=cmd_view)

    p = sub.add_parser("rig", help="rig tools")
    rs = p.add_subparsers(dest="rig_command", required=True)
    pi = rs.add_parser("inspect", help="list morph targets and the matching rig profile")
    pi.add_argument("model", help="character (.glb/.gltf/.vrm)")
    pi.add_argument("--rig", help="show how this rig profile (name or .json file) maps the model, "
                                  "instead of the automatic match")
    pi.set_defaults(func=cmd_rig)

    p = sub.add_parser("live", help="live lip sync: microphone, file or stdin -> VMC / Live Link Face / WebSocket")
    p.add_argument("--input", default="mic", help="mic, mic:NAME (or mic:INDEX), a file, or - (s16le mono PCM on stdin)")
    p.add_argument("--realtime", action="store_true", help="play a file or stdin at real-time pace (pauses in stdin "
                   "become silence)")
    p.add_argument("--rate", type=Number(4000, 192000, whole=True, unit=" (Hz)"), default=16000,
                   help="sample rate of headerless s16le PCM: stdin or a .raw/.pcm file (default 16000)")
    p.add_argument("--fps", type=fps, default=60, help="frames per second sent (default 60)")
    p.add_argument("--vmc", nargs="?", const="127.0.0.1:39539", metavar="HOST:PORT",
                   help="send VMC protocol (VSeeFace, VMagicMirror, Warudo, VNyan); default 127.0.0.1:39539")
    p.add_argument("--vmc-head", action="store_true", help="also send the head rotation as /VMC/Ext/Bone/Pos Head")
    p.add_argument("--livelink", nargs="?", const="127.0.0.1:11111", metavar="HOST:PORT",
                   help="send Live Link Face packets (Unreal); default 127.0.0.1:11111")
    p.add_argument("--subject", default="viseme", help="Live Link subject name (default viseme)")
    p.add_argument("--ws", nargs="?", const="127.0.0.1:8765", metavar="[HOST:]PORT",
                   help="serve JSON frames over WebSocket (web pages); default 127.0.0.1:8765")
    p.add_argument("--names", default="vrm0", help="vrm0 | vrm1 | arkit | oculus | a rig profile name or RIG.json "
                   "(the names VMC and WebSocket frames use; default vrm0)")
    p.add_argument("--list-devices", action="store_true", help="list the microphones and exit")
    p.add_argument("--intensity", type=intensity, default=1.0, help="mouth motion scale (1 natural)")
    p.add_argument("--seed", type=seed, default=0, help="seed for blinks and head motion")
    p.add_argument("--no-blinks", action="store_true", help="no blinks")
    p.add_argument("--no-head", action="store_true", help="no head motion")
    p.set_defaults(func=cmd_live)

    p = sub.add_parser("batch", help="a dialogue table (CSV/TSV) or a folder of recordings -> OUTDIR/<id>.<ext>")
    p.add_argument("manifest", help="CSV/TSV table (id, audio, text, lang, model/rig, fps) or a folder of audio "
                                    "files with .txt/.lab transcripts beside them")
    p.add_argument("-o", "--output", required=True, help="output folder (made if missing); resumable")
    p.add_argument("--format", default="json", help="comma-separated formats or file endings (json,csv,tsv,...)")
    p.add_argument("--jobs", type=Number(*BATCH_JOBS, whole=True), help="worker processes (default: the number of cores)")
    p.add_argument("--scheduler", help="run on a Dask cluster: tcp://HOST:PORT of its scheduler")
    p.add_argument("--force", action="store_true", help="redo every line, even unchanged ones")
    p.add_argument("--only", help="comma-separated ids: just these lines")
    p.add_argument("--lang", default="en", help="language of lines whose row gives none")
    p.add_argument("--fps", type=fps, default=30, help="frame rate of lines whose row gives none (default 30)")
    p.add_argument("--engine", choices=ENGINES, default="auto", help=ENGINE_HELP)
    p.add_argument("--seed", type=seed, default=0, help="seed for blinks and head motion")
    p.add_argument("--no-blinks", action="store_true", help="no blinks")
    p.add_argument("--no-head", action="store_true", help="no head motion")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_batch)

    p = sub.add_parser("train", help="train the neural audio-to-face model", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_train)
    return ap


ENGINE_HELP = ("auto (default): hybrid with a transcript, neural without (align for espeak-ng's exact timing; "
               "neural when the alignment is unsure); align: the transcript's timing alone; neural: the audio alone; "
               "hybrid: the aligned visemes with the audio's jaw/lip dynamics")
SIZE_HELP = "video size in pixels (.mp4; contact sheet tiles are half; default 512)"
# --jobs: at least one worker; more than this many processes would only thrash any machine
BATCH_JOBS = (1, 1024)
# --jaw scales the jaw's loudness gains (coarticulation.JAW_GAIN_LIMITS holds the result);
# --anticipation-ms is CoarticulationParams.anticipation_s (0 to 0.5 s) in milliseconds
JAW_SCALE = (0.0, 3.0)
ANTICIPATION_MS = (0.0, 500.0)

# Exit status (README, "Exit codes"): every failure the user can act on is 2 (argparse's own code for
# usage), a bug 1, a signal 128 + its number.
EXIT_FAILED, EXIT_BAD_INPUT = 1, 2


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _one_line(e: BaseException) -> str:
    """An error's first line (a KeyError's without its quotes); what follows (a program's own
    output, e.g. Blender's) is left to -v."""
    lines = [ln.strip() for ln in str(e.args[0] if isinstance(e, KeyError) and e.args else e).splitlines()
             if ln.strip()] or [type(e).__name__]
    return lines[0].rstrip(":") + (" (-v shows the details)" if len(lines) > 1 else "")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["train"]:  # its own options (argparse's REMAINDER would not pass `--help` on)
        from toolkit.train import audio2face

        return audio2face.main(argv[1:]) or 0
    parser = build_parser()
    args = parse_args(parser, argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.ERROR, format="%(levelname)s: %(message)s")
    try:
        with cleanup.handle_signals(), warnings.catch_warnings():
            # the toolkit's warnings (a truncated file, a texture left out) as plain lines, not source locations
            warnings.showwarning = _show_warning
            with progress.showing(False if getattr(args, "quiet", False) else None):
                return args.func(args)
    except (ValueError, KeyError, OSError, RuntimeError) as e:
        # the input, an option, a path, a device, a program the job needs (Blender, ffmpeg, mfa,
        # espeak-ng): something the user can act on, said in one line (-v: all of it, and the traceback)
        if isinstance(e, BrokenPipeError):
            return _pipe_closed()
        print(f"viseme: error: {e if args.verbose else _one_line(e)}", file=sys.stderr)
        if args.verbose:   # the details, and still the exit code the table documents (not Python's 1)
            traceback.print_exc()
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as e:   # a signal (see toolkit.cleanup), or Ctrl-C where no handler could be set
        if isinstance(e, cleanup.Interrupted):
            cleanup.stop_children()
        cleanup.remove_temporaries()
        print(f"viseme: {e.args[0] if e.args else 'interrupted'}; nothing half-written was left", file=sys.stderr)
        return getattr(e, "exit_code", 130)
    except Exception as e:  # a bug: one line, the details with -v
        print(f"viseme: internal error: {type(e).__name__}: {_one_line(e)} (please report it; run with -v for "
              "the details)", file=sys.stderr)
        if args.verbose:
            traceback.print_exc()
        return EXIT_FAILED


def _pipe_closed() -> int:
    """The program reading standard output stopped reading (`viseme ... -o - | head`): quietly, like `cat`."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # no second error when Python flushes
    except (OSError, ValueError, AttributeError):
        pass
    return 128 + 13


if __name__ == "__main__":
    sys.exit(main())
