"""`viseme` options users rely on, each checked by what it must change: TextGrid timing in and out,
--jaw, --engine hybrid, render --audio/--compare, say --voice, and malformed TextGrids refused."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from toolkit.alignment import Alignment
from toolkit.alignment.textgrid import read_textgrid, write_textgrid
from toolkit.animation import Segment
from toolkit.cli import main

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "assets" / "samples" / "bob.wav"
SAMPLE_TEXT = ROOT / "assets" / "samples" / "bob.txt"
QUIET = ["--no-blinks", "--no-head"]


def _animate(tmp_path: Path, name: str, *args: str) -> dict:
    out = tmp_path / f"{name}.json"
    assert main(["animate", str(SAMPLE), *args, "-o", str(out)]) == 0
    return json.loads(out.read_text())


def _curves(d: dict, prefix: str = "viseme_") -> np.ndarray:
    cols = [i for i, c in enumerate(d["channels"]) if c.startswith(prefix)]
    return np.array(d["values"])[:, cols]


def _channel(d: dict, name: str) -> np.ndarray:
    return np.array(d["values"])[:, d["channels"].index(name)]


# -- TextGrid timing: align -o x.TextGrid, animate --textgrid ----------------------------------------------

def test_align_writes_a_textgrid_that_animate_takes_its_timing_from(tmp_path):
    grid, js = tmp_path / "bob.TextGrid", tmp_path / "bob.json"
    assert main(["align", str(SAMPLE), "--transcript", str(SAMPLE_TEXT), "-o", str(grid), "-o", str(js)]) == 0
    d = json.loads(js.read_text())
    back = read_textgrid(grid)
    # the TextGrid holds the JSON's words and phones (the tiers MFA and Praat read)
    assert [w.label for w in back.words] == [w["label"] for w in d["words"]]
    assert len(back.words) == len(SAMPLE_TEXT.read_text().split()) and back.words[0].label == "bob"
    speech = [p for p in back.phonemes if p.label]
    want = [p for p in d["phonemes"] if p["label"]]
    assert [p.label for p in speech] == [p["label"] for p in want]
    assert np.allclose([p.start for p in speech], [p["start"] for p in want], atol=1e-4)
    # animate --textgrid: the grid's timing, the same curves as aligning the transcript again
    from_grid = _animate(tmp_path, "grid", "--textgrid", str(grid), "--engine", "align", *QUIET)
    from_text = _animate(tmp_path, "text", "--transcript", str(SAMPLE_TEXT), "--engine", "align", *QUIET)
    assert from_grid["meta"]["alignment"] == "textgrid"
    assert [p["label"] for p in from_grid["phonemes"] if p["label"]] == [p.label for p in speech]
    np.testing.assert_allclose(_curves(from_grid), _curves(from_text), atol=2e-3)
    # a grid 100 ms later moves the mouth 3 frames (at 30 fps) later: the timing is the grid's
    late = Alignment([Segment(p.label, p.start + 0.1, p.end + 0.1) for p in speech],
                     [Segment(w.label, w.start + 0.1, w.end + 0.1) for w in back.words], 1.0, "test")
    write_textgrid(late, tmp_path / "late.TextGrid", duration_s=d["phonemes"][-1]["end"] + 0.2)
    moved = _animate(tmp_path, "late", "--textgrid", str(tmp_path / "late.TextGrid"), "--engine", "align", *QUIET)
    # (away from the ends: the clip cuts the anticipation of the first phone and the release of the last)
    np.testing.assert_allclose(_curves(moved)[9:-15], _curves(from_grid)[6:-18], atol=2e-3)
    assert not np.allclose(_curves(moved), _curves(from_grid), atol=0.05)


@pytest.mark.parametrize("case", ["not-a-textgrid", "cut-off", "no-interval-tier", "label-not-a-phone", "missing"])
def test_a_malformed_textgrid_is_refused_naming_the_file(tmp_path, capsys, case):
    good = tmp_path / "good.TextGrid"
    assert main(["align", str(SAMPLE), "--transcript", str(SAMPLE_TEXT), "-o", str(good)]) == 0
    text = good.read_text()
    bad = tmp_path / "bad.TextGrid"
    if case == "not-a-textgrid":
        bad.write_text("bob made a map of paris\n")
    elif case == "cut-off":
        bad.write_text(text[: len(text) // 3])
    elif case == "no-interval-tier":
        bad.write_text(text.replace('"IntervalTier"', '"TextTier"'))
    elif case == "label-not-a-phone":  # an annotator's note in the phones tier
        bad.write_text(text.replace('text = "m"', 'text = "Exhalation?"', 1))
    capsys.readouterr()
    out = tmp_path / "out.json"
    rc = main(["animate", str(SAMPLE), "--textgrid", str(bad), "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "bad.TextGrid" in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists() and not list(tmp_path.glob(".*"))
    if case == "label-not-a-phone":
        assert "'Exhalation?'" in err and "not a phone" in err


# -- --jaw, --engine hybrid ------------------------------------------------------------------------------

def test_jaw_scales_the_jaw_opening_and_nothing_else(tmp_path):
    base = ["--transcript", str(SAMPLE_TEXT), "--engine", "align", *QUIET]
    runs = {k: _animate(tmp_path, f"jaw{k}", *base, "--jaw", str(k)) for k in (0.5, 1.0, 1.5)}
    runs["default"] = _animate(tmp_path, "default", *base)
    jaw = {k: _channel(d, "jawOpen") for k, d in runs.items()}
    np.testing.assert_array_equal(jaw["default"], jaw[1.0])
    open_ = jaw[1.0] > 0.1  # frames with the mouth open
    assert open_.sum() > 20
    ratio_small, ratio_big = (jaw[0.5][open_] / jaw[1.0][open_]).mean(), (jaw[1.5][open_] / jaw[1.0][open_]).mean()
    assert 0.35 < ratio_small < 0.75 and 1.2 < ratio_big < 1.6, (ratio_small, ratio_big)
    for k in (0.5, 1.5):  # which mouth shape, and when, does not change
        np.testing.assert_array_equal(_curves(runs[k]), _curves(runs[1.0]))


def test_engine_hybrid_without_a_transcript_says_it_ran_the_audio_only_model(tmp_path, capsys):
    """Asked for hybrid with nothing to align, the audio-only model runs: the output says so and why
    (as `--engine neural` with a transcript does), instead of silently naming another engine."""
    d = _animate(tmp_path, "hybrid_no_text", "--engine", "hybrid", *QUIET)
    assert d["meta"]["engine"] == "neural"
    assert any("hybrid" in w and "transcript" in w for w in d["meta"]["warnings"]), d["meta"]["warnings"]
    assert "hybrid" in capsys.readouterr().err


def test_engine_hybrid_keeps_the_aligned_visemes_and_adds_the_audios_dynamics(tmp_path):
    base = ["--transcript", str(SAMPLE_TEXT), "--no-blinks"]
    hybrid = _animate(tmp_path, "hybrid", *base, "--engine", "hybrid")
    aligned = _animate(tmp_path, "aligned", *base, "--engine", "align")
    assert hybrid["meta"]["engine"] == "hybrid" and aligned["meta"]["engine"] == "align"
    assert hybrid["meta"]["alignment"] == "pocketsphinx"
    np.testing.assert_array_equal(_curves(hybrid), _curves(aligned))  # what is said and when: the alignment's
    jaw_h, jaw_a = _channel(hybrid, "jawOpen"), _channel(aligned, "jawOpen")
    assert np.abs(jaw_h - jaw_a).max() > 0.02  # how far the jaw opens: the audio's
    closed = _channel(aligned, "viseme_PP") > 0.9  # lips shut on /b m p/ in both
    assert closed.sum() >= 3
    np.testing.assert_allclose(_channel(hybrid, "mouthClose")[closed], _channel(aligned, "mouthClose")[closed],
                               atol=1e-5)
    head = _curves(hybrid, "head")
    assert np.abs(head).max() > 0.005  # head motion from the voice's prosody


# -- render --audio --compare ----------------------------------------------------------------------------

def _mp4_streams(path: Path) -> tuple[int, int, float, str]:
    """(width, height, audio seconds, ffmpeg's listing) of an mp4."""
    import imageio_ffmpeg

    exe = imageio_ffmpeg.get_ffmpeg_exe()
    info = subprocess.run([exe, "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
    w, h = map(int, re.search(r"Video: h264.*?, (\d+)x(\d+)", info).groups())
    if "Audio:" not in info:
        return w, h, 0.0, info
    pcm = subprocess.run([exe, "-v", "error", "-i", str(path), "-vn", "-f", "s16le", "-ac", "1", "-ar", "16000", "-"],
                         capture_output=True, check=True).stdout
    return w, h, len(pcm) / 2 / 16000, info


def test_render_side_by_side_with_the_speech(tmp_path):
    import imageio_ffmpeg

    a = tmp_path / "aligned.json"
    assert main(["animate", str(SAMPLE), "--transcript", str(SAMPLE_TEXT), "--engine", "align", "-o", str(a)]) == 0
    d = json.loads(a.read_text())
    still = dict(d, values=np.zeros_like(np.array(d["values"])).tolist())  # a mouth that never moves
    b = tmp_path / "still.json"
    b.write_text(json.dumps(still))
    out = tmp_path / "cmp.mp4"
    assert main(["render", str(a), "--compare", str(b), "--audio", str(SAMPLE), "--size", "64", "-o", str(out)]) == 0
    w, h, audio_s, info = _mp4_streams(out)
    assert w == 128 and h > 64 and "aac" in info  # two faces side by side, the strip, the speech
    assert abs(audio_s - d["duration"]) < 0.1
    frames = [np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in list(imageio_ffmpeg.read_frames(str(out)))[1:]]
    assert len(frames) == len(d["values"])
    jaw = _channel(d, "jawOpen")
    k = int(jaw.argmax())  # mouth wide open on the left, at rest on the right
    halves = np.abs(frames[k][:64, :64].astype(int) - frames[k][:64, 64:].astype(int)).sum(2)
    assert (halves > 60).sum() > 10
    silent = tmp_path / "no_audio.mp4"
    assert main(["render", str(a), "--size", "64", "-o", str(silent)]) == 0
    assert _mp4_streams(silent)[2] == 0.0  # --audio is what puts the sound in


# -- say --voice -----------------------------------------------------------------------------------------

def _pitch_hz(x: np.ndarray, sr: int) -> float:
    """Median pitch of the loud 40 ms frames (autocorrelation peak between 70 and 400 Hz)."""
    n = int(0.04 * sr)
    frames = [x[i:i + n] for i in range(0, len(x) - n, n)]
    loud = [f for f in frames if np.sqrt(np.mean(f ** 2)) > 0.3 * max(np.sqrt(np.mean(g ** 2)) for g in frames)]
    lo, hi = sr // 400, sr // 70
    return float(np.median([sr / (lo + np.argmax(np.correlate(f, f, "full")[n - 1 + lo:n - 1 + hi])) for f in loud]))


def test_say_with_a_voice(tmp_path, capsys):
    from toolkit.audio import load_audio

    text = "Bob made a map of Paris."
    assert main(["say", text, "-o", str(tmp_path / "plain")]) == 0
    assert main(["say", text, "--voice", "en+f3", "-o", str(tmp_path / "f3")]) == 0
    plain, f3 = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("plain", "f3"))
    assert f3["meta"]["voice"] == "en-us+f3" and plain["meta"]["voice"] == "en-us"
    assert [w["label"] for w in f3["words"]] == [w["label"] for w in plain["words"]]
    xp, xf = load_audio(tmp_path / "plain.wav"), load_audio(tmp_path / "f3.wav")
    assert abs(len(xf) / 16000 - f3["duration"]) < 0.05  # the wav and its animation have one length
    assert _pitch_hz(xf, 16000) > 1.3 * _pitch_hz(xp, 16000)  # a female voice: higher
    capsys.readouterr()
    assert main(["say", text, "--voice", "nosuchvoice", "-o", str(tmp_path / "bad")]) == 2
    assert "nosuchvoice" in capsys.readouterr().err and not (tmp_path / "bad.wav").exists()
