"""Issue 17: nothing of the user's is ever replaced, every bad value is refused up front, malformed
models and files give one line, signals leave nothing behind."""
import json
import os
import pty
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from gltf_helpers import Builder, rpm_avatar, vrm1_model

from toolkit import files
from toolkit.animation import Animation, empty_animation
from toolkit.cli import main

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "assets" / "samples" / "bob.wav"
SAMPLE_TEXT = ROOT / "assets" / "samples" / "bob.txt"
VISEME = [sys.executable, "-m", "toolkit.cli"]


def _no_work(monkeypatch):
    """Running the pipeline or loading audio is a failure: the checks must come first."""
    from toolkit import cli, pipeline

    def boom(*a, **k):
        raise AssertionError("work started before the arguments and outputs were checked")

    monkeypatch.setattr(pipeline, "animate", boom)
    monkeypatch.setattr(cli, "_load_audio", boom)


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


def _run(args, **kw):
    return subprocess.run(VISEME + [str(a) for a in args], capture_output=True, cwd=ROOT, timeout=120, **kw)


# -- outputs: links, modes, devices, FIFOs, standard output ---------------------------------------------
def test_a_symlinks_target_is_written_and_the_link_kept(tmp_path):
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    (real_dir / "take.json").write_text("old")
    link = tmp_path / "latest.json"
    link.symlink_to(real_dir / "take.json")
    dangling = tmp_path / "new.json"
    dangling.symlink_to(real_dir / "not_yet.json")
    anim = empty_animation(3, 30)
    from toolkit.export import tracks

    tracks.write_json(anim, link)
    tracks.write_json(anim, dangling)
    assert link.is_symlink() and dangling.is_symlink()
    assert json.loads((real_dir / "take.json").read_text())["fps"] == 30
    assert json.loads((real_dir / "not_yet.json").read_text())["fps"] == 30
    assert sorted(p.name for p in real_dir.iterdir()) == ["not_yet.json", "take.json"]  # no temp file left


def test_an_existing_output_keeps_its_mode_and_owner(tmp_path):
    out = tmp_path / "private.json"
    out.write_text("old")
    out.chmod(0o600)
    if os.geteuid() == 0:
        os.chown(out, 4321, 4321)
    files.atomic_write(out, "new")
    st = out.stat()
    assert out.read_text() == "new" and stat.S_IMODE(st.st_mode) == 0o600
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (4321, 4321)
    fresh = tmp_path / "fresh.json"
    old = os.umask(0o027)
    try:
        files.atomic_write(fresh, "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o640  # a new file: 0666 & ~umask, as open() makes it


def _file_size_limit():
    """In the child: files may not grow past 4 kB (EFBIG instead of SIGXFSZ), as a full disk or a quota stops a write."""
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


def test_outputs_are_put_in_place_together_or_not_at_all(tmp_path, monkeypatch, capsys):
    """A job's outputs are renamed into place together when all are written: a failure (or an interrupt)
    at the second output left the first one new and the second one old."""
    from toolkit.export import registry

    old = {n: f"the user's old {n}".encode() for n in ("a.json", "a.csv", "a.TextGrid")}
    for n, b in old.items():
        (tmp_path / n).write_bytes(b)
    from dataclasses import replace

    def boom(*a, **k):
        raise files.OutputError("a.csv: the disk is full")

    csv = registry.format_for("a.csv")
    with monkeypatch.context() as m:  # the CSV writer fails after the JSON was written
        m.setattr(registry, "FORMATS", [replace(f, write=boom) if f is csv else f for f in registry.FORMATS])
        assert main(["animate", str(SAMPLE), "--text", "Bob made a map of Paris.", "-q",
                     "-o", str(tmp_path / "a.json"), "-o", str(tmp_path / "a.csv")]) == 2
    assert "the disk is full" in capsys.readouterr().err
    assert {n: (tmp_path / n).read_bytes() for n in old} == old
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(old)  # no temporary file left
    # and when nothing fails, every output is new (align's JSON and TextGrid alike)
    assert main(["align", str(SAMPLE), "--text", "Bob made a map of Paris.",
                 "-o", str(tmp_path / "a.json"), "-o", str(tmp_path / "a.TextGrid")]) == 0
    assert (tmp_path / "a.json").read_bytes() != old["a.json"] and b'"bob"' in (tmp_path / "a.TextGrid").read_bytes()
    with pytest.raises(RuntimeError):  # the block itself: nothing in place, nothing left behind
        with files.all_or_nothing():
            files.atomic_write(tmp_path / "b.txt", "new")
            raise RuntimeError("stopped")
    assert not (tmp_path / "b.txt").exists() and sorted(p.name for p in tmp_path.iterdir()) == sorted(old)


def test_a_write_that_fails_midway_names_the_output_and_keeps_the_old_file(tmp_path, espeak_wav):
    """A full disk or a quota: the message named the temporary file, or no file at all, never the user's output."""
    out = tmp_path / "out.json"
    out.write_text("precious")
    r = _run(["animate", espeak_wav, "--text", "Bob made a map of Paris.", "-o", out], preexec_fn=_file_size_limit)
    line = _one_error_line(r.stderr.decode())
    assert r.returncode == 2 and line == f"viseme: error: {out}: cannot be written (File too large)", line
    # WAV files (`viseme say`) go the same way: libsndfile writing the file itself said only "System error."
    wav = tmp_path / "out.wav"
    wav.write_text("precious")
    code = f"from toolkit.audio import write_wav; import numpy as np; write_wav({str(wav)!r}, np.zeros(16000), 16000)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, preexec_fn=_file_size_limit)
    assert f"OutputError: {wav}: cannot be written (File too large)" in r.stderr, r.stderr
    assert out.read_text() == wav.read_text() == "precious" and sorted(p.name for p in tmp_path.iterdir()) == \
        ["out.json", "out.wav"]


def test_a_full_temporary_folder_while_converting_the_audio_names_the_audio(tmp_path):
    """Audio not at 16 kHz is converted once to a temporary file; a full disk there said '[Errno 27] File too large'."""
    r = _run(["animate", SAMPLE, "--text", "Bob made a map of Paris.", "-o", tmp_path / "out.json"],
             preexec_fn=_file_size_limit)
    line = _one_error_line(r.stderr.decode())
    assert r.returncode == 2 and line.startswith(f"viseme: error: {SAMPLE}: ") and "File too large" in line, line


def test_devices_and_fifos_get_the_bytes_streamed(tmp_path):
    assert main(["render", str(_anim(tmp_path)), "-o", "/dev/null"]) == 0
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)  # still the device
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    assert main(["render", str(_anim(tmp_path)), "-o", str(fifo)]) == 0
    reader.join(10)
    assert got and got[0].startswith(b"Timecode,BlendShapeCount") and stat.S_ISFIFO(fifo.stat().st_mode)


def _anim(tmp_path) -> Path:
    from toolkit.export import tracks

    p = tmp_path / "anim.json"
    if not p.exists():
        a = empty_animation(10, 30)
        a.values[:, a.channels.index("jawOpen")] = np.linspace(0, 1, 10)
        tracks.write_json(a, p)
    return p


@pytest.mark.parametrize("out,fmt,start", [("-", None, b'{"format":"viseme-toolkit/animation@1"'),
                                           ("/dev/stdout", "livelink", b"Timecode,BlendShapeCount"),
                                           ("-", "rhubarb-tsv", b"0.00\t"),
                                           ("-", "gltf", b"glTF")])
def test_standard_output(tmp_path, out, fmt, start):
    r = _run(["render", _anim(tmp_path), "-o", out] + (["--format", fmt] if fmt else []))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(start), r.stdout[:80]


def test_binary_data_is_not_printed_on_a_terminal_and_only_one_output_takes_stdout(tmp_path):
    master, slave = pty.openpty()
    try:
        r = subprocess.run(VISEME + ["render", str(_anim(tmp_path)), "-o", "-", "--format", "gltf"], cwd=ROOT,
                           stdout=slave, stderr=subprocess.PIPE, timeout=60)
    finally:
        os.close(slave)
        os.close(master)
    assert r.returncode == 2 and b"is a terminal" in r.stderr and b"-o - > out.glb" in r.stderr
    r = _run(["render", _anim(tmp_path), "-o", "-", "-o", "/dev/stdout"])
    assert r.returncode == 2 and b"two outputs would write standard output" in r.stderr and not r.stdout


def test_refused_locations_are_named_before_any_work(tmp_path, capsys, monkeypatch):
    _no_work(monkeypatch)
    folder = tmp_path / "takes"
    folder.mkdir()
    cases = {str(folder): "takes: is a folder; give a file name",
             str(tmp_path / "missing" / "a.json"): "folder",
             "/dev/sda-not-here/x.json": "does not exist"}
    for out, words in cases.items():
        assert main(["animate", str(SAMPLE), "-o", out]) == 2, out
        line = _one_error_line(capsys.readouterr().err)
        assert words in line and ".part" not in line, line
    speech = tmp_path / "speech.wav"   # an output that is the input through a link (or a hard link)
    speech.write_bytes(SAMPLE.read_bytes())
    (tmp_path / "link.json").symlink_to(speech)
    os.link(speech, tmp_path / "hard.json")
    for out in ("link.json", "hard.json"):
        assert main(["animate", str(speech), "-o", str(tmp_path / out)]) == 2
        assert "output path is the same as the input" in _one_error_line(capsys.readouterr().err)
    assert speech.read_bytes() == SAMPLE.read_bytes()
    ro = tmp_path / "ro"
    ro.mkdir()
    real_access = os.access
    monkeypatch.setattr(files.os, "access", lambda p, m: False if str(p) == str(ro) else real_access(p, m))
    assert main(["animate", str(SAMPLE), "-o", str(ro / "a.json")]) == 2
    assert f"folder {ro} is not writable" in capsys.readouterr().err
    locked = tmp_path / "locked.json"
    locked.write_text("keep")
    monkeypatch.setattr(files.os, "access", lambda p, m: False if str(p) == str(locked) else real_access(p, m))
    assert main(["animate", str(SAMPLE), "-o", str(locked)]) == 2
    assert "locked.json: is read-only" in capsys.readouterr().err and locked.read_text() == "keep"
    assert not [p for p in tmp_path.rglob(".*")]


# -- values ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("option,value,words", [
    ("--intensity", "nan", "from 0 to 3"), ("--jaw", "inf", "from 0 to 3"), ("--intensity", "-1", "from 0 to 3"),
    ("--offset-ms", "1e9", "from -10000 to 10000 (ms)"), ("--fps", "nan", "from 1 to 240 (frames per second)"),
    ("--seed", "-1", "whole number from 0 to 4294967295"), ("--seed", "1.5", "whole number"),
    ("--anticipation-ms", "-inf", "from 0 to 500 (ms)"), ("--size", "8", "from 16 to 4096 (pixels)"),
    ("--raw-rate", "0", "from 1000 to 768000 (Hz)"), ("--fps", "--", "from 1 to 240")])
def test_every_number_option_is_checked_by_the_parser(capsys, monkeypatch, option, value, words):
    _no_work(monkeypatch)
    given = [f"{option}={value}"] if value == "--" else [option, value]
    with pytest.raises(SystemExit) as e:
        main(["animate", str(SAMPLE), "-o", "x.json"] + given)
    assert e.value.code == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"viseme animate: error: argument {option}: must be a") and words in line, line


def test_the_live_and_view_commands_check_their_numbers_too(capsys):
    for argv, option in ((["live", "--fps", "inf", "--vmc"], "--fps"), (["live", "--rate", "100"], "--rate"),
                         (["live", "--seed", "-3"], "--seed"), (["view", "--serve", "70000"], "--serve")):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2 and f"error: argument {option}: must be a" in capsys.readouterr().err


def test_negative_numbers_need_no_equals_sign():
    from toolkit.arguments import parse_args
    from toolkit.cli import build_parser

    p = build_parser()
    for v, want in (("-5", -5.0), ("-5e2", -500.0), ("-.5", -0.5)):
        assert parse_args(p, ["animate", "a.wav", "-o", "x.json", "--offset-ms", v]).offset_ms == want
    args = parse_args(p, ["say", "-5", "-o", "x", "--fps", "25"])  # a text that looks like a number stays text
    assert args.text == "-5" and args.fps == 25


def test_the_python_api_names_the_bad_argument():
    from dataclasses import replace

    from toolkit.pipeline import Options, animate
    from toolkit.visemes.coarticulation import DEFAULT_PARAMS

    for kw, name in (({"intensity": float("nan")}, "intensity"), ({"fps": float("inf")}, "fps"),
                     ({"seed": -1}, "seed"), ({"offset_ms": 1e9}, "offset_ms"), ({"blinks": "no"}, "blinks"),
                     ({"lang": ""}, "lang")):
        with pytest.raises(ValueError, match=f"^{name} must be"):
            Options(**kw)
    for kw, name in (({"jaw_gain_range": (float("inf"), 1.0)}, r"jaw_gain_range\[0\]"),
                     ({"anticipation_s": -0.1}, "anticipation_s"), ({"lead_s": float("nan")}, "lead_s")):
        with pytest.raises(ValueError, match=f"^{name} must be"):
            replace(DEFAULT_PARAMS, **kw)
    x = 0.3 * np.sin(np.arange(8000) / 5.0).astype(np.float32)  # half a second
    with pytest.raises(ValueError, match=r"^<array>: an offset of 900 ms \(--offset-ms; offset_ms in Python\) shifts the whole animation out of "
                       r"the audio, which lasts 0.50 s"):
        animate(x, sample_rate=16000, offset_ms=900)


def test_the_python_api_refuses_audio_arguments_it_would_ignore_or_bend(tmp_path):
    """sample_rate with a file was ignored (its header's rate was used), 16000.5 was cut to 16000,
    allow_truncated="yes" counted as true, and write_srt(text=5) raised AttributeError."""
    import toolkit
    from toolkit.audio import load_audio, write_wav
    from toolkit.export.captions import write_srt

    x = 0.3 * np.sin(np.arange(8000) / 5.0).astype(np.float32)
    wav = tmp_path / "a.wav"
    write_wav(wav, x)
    for call in (toolkit.animate, toolkit.align):
        with pytest.raises(ValueError, match=f"^sample_rate is for audio given as an array; {wav} has its own rate"):
            call(str(wav), "hello", sample_rate=22050)
        with pytest.raises(ValueError, match="^allow_truncated must be True or False, got 'yes'"):
            call(str(wav), "hello", allow_truncated="yes")
    with pytest.raises(ValueError, match=r"sample_rate must be a whole number from 1000 to 768000 \(Hz\), got 16000.5"):
        toolkit.animate(x, sample_rate=16000.5)
    assert load_audio(x, sample_rate=16000.0).shape == x.shape  # a whole number written as a float is one
    for bad in (5, b"hello"):
        with pytest.raises(TypeError, match="^text must be a string \\(the transcript as typed\\) or None, got "):
            write_srt(empty_animation(3, 30), tmp_path / "a.srt", text=bad)
    assert not (tmp_path / "a.srt").exists()


def test_shift_and_resampled_name_a_bad_number():
    """shift(anim, nan) returned all-NaN curves; resampled(nan) said "cannot convert float NaN to integer"."""
    import toolkit

    a = empty_animation(5, 30)
    for bad in (float("nan"), float("inf"), "0.1", None):
        with pytest.raises(ValueError, match="^offset_s must be a finite number"):
            toolkit.shift(a, bad)
        with pytest.raises(ValueError, match="^fps must be a positive number"):
            a.resampled(bad)
    assert toolkit.shift(a, 0.1).n_frames == 5 and a.resampled(60).n_frames == 10


def test_a_transcript_that_is_no_string_is_named(espeak_wav):
    """align() had no check (AttributeError on int.strip); ipa=5 and say(5) were called "empty"."""
    import toolkit

    for call, words in ((lambda: toolkit.align(espeak_wav, 5), "text must be a string"),
                        (lambda: toolkit.align(espeak_wav, ipa=5), "ipa must be a string"),
                        (lambda: toolkit.animate(espeak_wav, ipa=["bɑb"]), "ipa must be a string"),
                        (lambda: toolkit.say(5), "text must be a string, got int")):
        with pytest.raises(ValueError, match=words):
            call()


def test_no_output_ever_holds_nan(tmp_path):
    from toolkit.export import tracks
    from toolkit.export.registry import plan_outputs, write_outputs

    a = empty_animation(5, 30)
    a.values[2, a.channels.index("jawOpen")] = np.nan
    outs = [tmp_path / n for n in ("a.json", "a.csv", "a.tsv", "a.glb")]
    with pytest.raises(ValueError, match=r"1 NaN or infinite values \(first: jawOpen at frame 2\)"):
        write_outputs(a, plan_outputs(outs))
    with pytest.raises(ValueError, match="NaN"):
        tracks.write_json(a, outs[0])
    assert not list(tmp_path.iterdir())


# -- malformed models --------------------------------------------------------------------------------------
def _broken(doc_edit, tmp_path, vrm=False) -> Path:
    p = vrm1_model(tmp_path, {"aa": [{"node": 2, "index": 0, "weight": 1.0}]}) if vrm else rpm_avatar(tmp_path)
    from fuzz_targets import _split_glb, glb_bytes

    doc, blob = _split_glb(p.read_bytes())
    doc_edit(doc)
    out = tmp_path / ("broken.vrm" if vrm else "broken.glb")
    out.write_bytes(glb_bytes(doc, blob))
    return out


@pytest.mark.parametrize("edit,vrm,words", [
    (lambda d: d.update(asset=-1), False, "not a glTF 2.0 file"),
    (lambda d: d["nodes"].__setitem__(1, None), False, "nodes[1] is null, not an object"),
    (lambda d: d["extensions"]["VRMC_vrm"]["humanoid"]["humanBones"].__setitem__("head", None), True,
     "extensions.VRMC_vrm.humanoid.humanBones.head is null, not an object"),
    (lambda d: d["bufferViews"][0].__setitem__("byteOffset", None), False,
     "bufferViews[0].byteOffset is null, not a whole number >= 0"),
    (lambda d: d["nodes"][4].__setitem__("mesh", 9), False, "nodes[4].mesh is 9, but the file has 3 meshes"),
    (lambda d: d["accessors"][0].__setitem__("componentType", 1), False, "accessors[0].componentType is 1"),
    (lambda d: d["meshes"][0]["primitives"][0]["attributes"].__setitem__("POSITION", "0"), False,
     "attributes.POSITION is '0', not an index"),
    (lambda d: d["nodes"][0].__setitem__("rotation", [0, 0, float("nan"), 1]), False, "NaN is not a JSON number"),
])
def test_malformed_models_are_one_line_naming_the_file(tmp_path, capsys, monkeypatch, edit, vrm, words):
    bad = _broken(edit, tmp_path, vrm)
    assert main(["rig", "inspect", str(bad)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith(f"viseme: error: {bad}: ") and words in line, line
    _no_work(monkeypatch)
    assert main(["animate", str(SAMPLE), "--model", str(bad), "-o", str(tmp_path / "talk.glb")]) == 2
    assert words.split(" is ")[0] in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "talk.glb").exists()


def test_animation_files_render_refuses_are_one_line_naming_them(tmp_path, capsys):
    """`viseme render` given audio instead of the JSON, or a JSON without frames: one line naming
    the file, before any output is written (a frameless JSON used to write the text outputs and then
    fail at the glTF one with a line naming nothing)."""
    frameless = tmp_path / "frameless.json"
    frameless.write_text(json.dumps(dict(empty_animation(3, 30).to_dict(), values=[])))
    fast = tmp_path / "fast.json"  # 1e9 fps rendered a video of no length, its audio dropped
    fast.write_text(json.dumps(dict(empty_animation(3, 30).to_dict(), fps=1e9)))
    nofps = tmp_path / "nofps.json"  # the message was "('fps')"
    nofps.write_text(json.dumps({k: v for k, v in empty_animation(3, 30).to_dict().items() if k != "fps"}))
    outs = [tmp_path / "out.json", tmp_path / "out.csv", tmp_path / "out.glb"]
    for bad, words in ((SAMPLE, "bob.wav: cannot read animation JSON"),
                       (nofps, "nofps.json: not a viseme-toolkit animation JSON (no 'fps')"),
                       (frameless, "frameless.json: not a viseme-toolkit animation JSON (it has no frames)"),
                       (fast, "fast.json: not a viseme-toolkit animation JSON ('fps' must be a number from 1 to 240")):
        assert main(["render", str(bad)] + sum((["-o", str(o)] for o in outs), [])) == 2
        assert words in _one_error_line(capsys.readouterr().err)
        assert not [o for o in outs if o.exists()]


def test_animation_json_of_another_format_or_with_no_known_channel_is_refused(tmp_path, capsys):
    """A "format" other than the toolkit's was read as if it were one, and a file whose channels the
    toolkit does not know rendered a still face without a word: both refused naming the file."""
    other = tmp_path / "other.json"
    other.write_text(json.dumps(dict(empty_animation(3, 30).to_dict(), format="viseme-toolkit/animation@2")))
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps(empty_animation(3, 30, channels=["MouthOpen", "Blink"]).to_dict()))
    outs = [tmp_path / "out.json", tmp_path / "out.glb"]
    for bad, words in ((other, "other.json: not a viseme-toolkit animation JSON (its format is "
                               "'viseme-toolkit/animation@2', not viseme-toolkit/animation@1)"),
                       (unknown, "unknown.json: not a viseme-toolkit animation JSON (none of its channels "
                                 "(MouthOpen, Blink) is one the toolkit animates")):
        assert main(["render", str(bad)] + sum((["-o", str(o)] for o in outs), [])) == 2
        assert words in _one_error_line(capsys.readouterr().err)
        assert not [o for o in outs if o.exists()]
    mixed = empty_animation(3, 30, channels=["jawOpen", "MouthOpen"]).to_dict()  # one known channel: read
    assert Animation.from_dict({k: v for k, v in mixed.items() if k != "format"}).channels == ["jawOpen", "MouthOpen"]


# -- signals -----------------------------------------------------------------------------------------------------
def _tree(pid: int) -> list[int]:
    from toolkit.cleanup import descendants

    return descendants(pid)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_during_a_video_leaves_nothing_behind(tmp_path, sig):
    """SIGTERM/SIGINT/SIGHUP while ffmpeg encodes: the encoder stops, no temporary file stays (in the
    output folder or the temp folder), the existing outputs are untouched, exit 128 + signal.  The JSON,
    written before the video, is not put in place either (it was: a new JSON beside the old video)."""
    out_dir, tmp = tmp_path / "out", tmp_path / "tmp"
    out_dir.mkdir()
    tmp.mkdir()
    (out_dir / "take.mp4").write_bytes(b"the user's old video")
    (out_dir / "take.json").write_bytes(b"the user's old animation")
    raw = tmp_path / "speech.raw"  # headerless audio: the renderer makes a temporary WAV of it too
    from toolkit.audio import load_audio

    raw.write_bytes((load_audio(SAMPLE) * 32767).astype("<i2").tobytes())
    p = subprocess.Popen(VISEME + ["animate", str(raw), "--raw-rate", "16000", "--size", "384",
                                   "-o", str(out_dir / "take.json"), "-o", str(out_dir / "take.mp4")],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=dict(os.environ, TMPDIR=str(tmp), OMP_NUM_THREADS="1"))
    children: list[int] = []
    end = time.monotonic() + 90
    while time.monotonic() < end and p.poll() is None:
        children = _tree(p.pid)
        if list(out_dir.glob(".take.mp4.*")) and children:   # ffmpeg is writing the video
            break
        time.sleep(0.05)
    assert p.poll() is None and children, "the render ended before it could be interrupted"
    time.sleep(0.3)
    children = _tree(p.pid) or children
    p.send_signal(sig)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 128 + sig, err
    assert f"stopped by {signal.Signals(sig).name}".encode() in err
    time.sleep(0.2)
    assert sorted(x.name for x in out_dir.iterdir()) == ["take.json", "take.mp4"], list(out_dir.iterdir())
    assert (out_dir / "take.mp4").read_bytes() == b"the user's old video"
    assert (out_dir / "take.json").read_bytes() == b"the user's old animation"
    # (the renderer's shader folder is a cache kept on purpose between runs)
    assert [x.name for x in tmp.iterdir() if not x.name.startswith("viseme-toolkit-shaders")] == []
    alive = [c for c in children if Path(f"/proc/{c}").exists() and "Z" not in
             Path(f"/proc/{c}/stat").read_text().rsplit(")", 1)[1].split()[0]]
    assert not alive, f"orphan processes {alive}"


# -- the smaller items -------------------------------------------------------------------------------------------
def test_utf16_transcripts_are_read_and_binary_ones_refused(tmp_path, capsys):
    from toolkit.phonemes.text import read_transcript

    for enc in ("utf-16", "utf-8-sig", "utf-32"):
        p = tmp_path / f"t-{enc}.txt"
        p.write_bytes("Bob made a map of Paris.".encode(enc))
        assert read_transcript(p) == "Bob made a map of Paris."
    junk = tmp_path / "junk.txt"
    junk.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ValueError, match=r"junk\.txt: binary data, not text"):
        read_transcript(junk)
    latin = tmp_path / "latin.txt"
    latin.write_bytes("café".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin\.txt: not UTF-8 text \(byte 3 is 0xe9\); save it as UTF-8"):
        read_transcript(latin)
    out = tmp_path / "a.json"
    assert main(["animate", str(SAMPLE), "--transcript", str(tmp_path / "t-utf-16.txt"), "--engine", "align",
                 "-o", str(out)]) == 0
    assert [w["label"] for w in json.loads(out.read_text())["words"]][:3] == ["bob", "made", "a"]


def test_text_saved_as_mp3_is_one_clear_line_without_decoder_noise(tmp_path, capfd):
    fake = tmp_path / "speech.mp3"
    fake.write_text("hello, this is not audio at all\n")
    assert main(["animate", str(fake), "-o", str(tmp_path / "a.json")]) == 2
    err = capfd.readouterr().err
    assert _one_error_line(err) == f"viseme: error: {fake}: not audio: the file holds text ('hello, this is not audio at all')"
    junk = tmp_path / "noise.mp3"
    junk.write_bytes(np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    assert main(["animate", str(junk), "-o", str(tmp_path / "a.json")]) == 2
    line = _one_error_line(capfd.readouterr().err)  # no "Note: Illegal Audio-MPEG-Header" from mpg123
    assert "not audio, or a truncated, corrupt or unsupported audio file" in line and "does not exist" not in line


def test_empty_text_is_refused_and_an_impossible_transcript_named(tmp_path, capsys, monkeypatch):
    assert main(["animate", str(SAMPLE), "--text", "", "-o", str(tmp_path / "a.json")]) == 2
    assert "--text is empty; give the words spoken, or leave --text out" in capsys.readouterr().err
    (tmp_path / "empty.txt").write_text("  \n")
    assert main(["animate", str(SAMPLE), "--transcript", str(tmp_path / "empty.txt"), "-o", str(tmp_path / "a.json")]) == 2
    assert "empty.txt: the transcript file is empty" in capsys.readouterr().err
    long = tmp_path / "long.txt"
    long.write_text(SAMPLE_TEXT.read_text() * 30)
    assert main(["animate", str(SAMPLE), "--transcript", str(long), "-o", str(tmp_path / "a.json")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "the transcript is far longer than the audio" in line and "the audio lasts 4.20 s" in line
    assert not (tmp_path / "a.json").exists()
    from toolkit.pipeline import animate

    x = 0.3 * np.sin(np.arange(16000) / 5.0).astype(np.float32)
    anim = animate(x, "   ", sample_rate=16000)  # the Python API: audio only, and it says so
    assert anim.meta["engine"] == "neural" and any("transcript is empty" in w for w in anim.meta["warnings"])


def test_exit_codes(tmp_path, capsys, monkeypatch):
    from toolkit import pipeline

    def fail(exc):
        def f(*a, **k):
            raise exc
        return f

    args = ["animate", str(SAMPLE), "-o", str(tmp_path / "a.json")]
    monkeypatch.setattr(pipeline, "animate", fail(RuntimeError("x.blend: Blender export failed (exit 3):\nTraceback...")))
    assert main(args) == 2
    assert _one_error_line(capsys.readouterr().err) == \
        "viseme: error: x.blend: Blender export failed (exit 3) (-v shows the details)"
    monkeypatch.setattr(pipeline, "animate", fail(ZeroDivisionError("boom")))
    assert main(args) == 1
    assert "internal error: ZeroDivisionError: boom (please report it" in _one_error_line(capsys.readouterr().err)
    monkeypatch.setattr(pipeline, "animate", fail(KeyboardInterrupt()))
    assert main(args) == 130 and "interrupted" in capsys.readouterr().err
    monkeypatch.setattr(pipeline, "animate", fail(BrokenPipeError(32, "Broken pipe")))  # `viseme ... -o - | head`
    assert main(args) == 141 and capsys.readouterr().err == ""
    # -v adds the traceback and keeps the documented code: bad input is 2, a bug 1
    monkeypatch.setattr(pipeline, "animate", fail(ValueError("speech.wav: not audio")))
    assert main(["-v"] + args) == 2
    err = capsys.readouterr().err
    assert "viseme: error: speech.wav: not audio" in err and "Traceback" in err
    monkeypatch.setattr(pipeline, "animate", fail(ZeroDivisionError("boom")))
    assert main(["-v"] + args) == 1
    err = capsys.readouterr().err
    assert "internal error: ZeroDivisionError: boom" in err and "Traceback" in err
