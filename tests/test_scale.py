"""Long recordings: read block by block, every stage chunked with seams that join (the chunked run equals
the whole-file run), streaming writers, flat memory, the progress bar."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from toolkit.animation import CHANNELS, Animation, Segment
from toolkit.audio import load_audio, write_wav
from toolkit.audio import StreamResampler
from toolkit.recording import Recording, open_recording

ROOT = Path(__file__).resolve().parents[1]
SENTENCES = ["Bob made a map of Paris.", "The birch canoe slid on smooth planks.",
             "Glue the sheet to the dark blue background.", "Stones tell the depth of wells.",
             "These days a chicken leg is a rare dish.", "Rice is often served in round bowls.",
             "The juice of lemons makes fine punch.", "The box was thrown beside the parked truck.",
             "The hogs were fed chopped corn and garbage.", "Four hours of steady work faced us."]


def long_speech(seconds: float, seed: int = 0):
    """espeak-ng sentences in several voices with 0.3-1.2 s pauses of room noise, until ``seconds``:
    (samples, transcript, [(start_s, Speech)])."""
    from toolkit.alignment.tts import synthesize

    rng = np.random.default_rng(seed)
    voices = ["en-us", "en-us+f3", "en-gb", "en-us+m3"]
    spoken = [synthesize(s, voice=voices[i % 4], rate_wpm=int(rng.integers(150, 200))) for i, s in enumerate(SENTENCES)]
    parts, laid, t = [], [], 0.0
    while t < seconds:
        sp = spoken[int(rng.integers(len(spoken)))]
        gap = (rng.standard_normal(int(rng.uniform(0.3, 1.2) * 16000)) * 5e-4).astype(np.float32)
        parts += [gap, sp.samples]
        t += len(gap) / 16000
        laid.append((t, sp))
        t += sp.duration_s
    parts.append((rng.standard_normal(4800) * 5e-4).astype(np.float32))
    return np.concatenate(parts), "\n".join(sp.text for _, sp in laid), laid


@pytest.fixture(scope="module")
def minute_clip(tmp_path_factory):
    x, text, laid = long_speech(60.0)
    path = tmp_path_factory.mktemp("long") / "minute.wav"
    write_wav(path, x)
    return path, text, laid


# -- reading ------------------------------------------------------------------------------------------

def test_recordings_read_block_by_block_equal_load_audio(tmp_path):
    import soundfile as sf

    rng = np.random.default_rng(1)
    stereo = (0.3 * rng.standard_normal((44100 * 3 + 17, 2))).astype(np.float32)
    sf.write(tmp_path / "a.flac", stereo, 44100, subtype="PCM_24")
    mono16 = (0.3 * rng.standard_normal(16000 * 2 + 5)).astype(np.float32)
    write_wav(tmp_path / "b.wav", mono16)
    (tmp_path / "c.raw").write_bytes((mono16 * 32767).astype("<i2").tobytes())
    for name, kw in (("a.flac", {}), ("b.wav", {}), ("c.raw", {"raw_rate": 22050})):
        rec = open_recording(tmp_path / name, **kw)
        whole = load_audio(tmp_path / name, **kw)
        assert rec.n_samples == len(whole)
        got = np.concatenate([x for _, _, x in rec.blocks(block_s=0.7)])
        np.testing.assert_allclose(got, whole, atol=1e-6)
        np.testing.assert_allclose(rec.read(1234, 5678), whole[1234:5678], atol=1e-6)
        rec.close()


def test_stream_resampler_equals_resampling_the_whole_signal():
    from toolkit.audio import resample

    x = np.random.default_rng(2).standard_normal(48000 + 13).astype(np.float32)
    for rate in (8000, 22050, 44100, 48000):
        rs = StreamResampler(rate)
        cuts = [0, 777, 5000, 5001, 30000, len(x)]
        y = np.concatenate([rs(x[a:b]) for a, b in zip(cuts[:-1], cuts[1:])] + [rs.flush()])
        np.testing.assert_allclose(y, resample(x, rate), atol=1e-5)


def test_bad_long_files_are_refused_like_short_ones(tmp_path):
    from toolkit.audio import AudioError

    write_wav(tmp_path / "silent.wav", np.zeros(16000 * 5, np.float32))
    with pytest.raises(AudioError, match="silent"):
        open_recording(tmp_path / "silent.wav")
    with pytest.raises(AudioError, match="file not found"):
        open_recording(tmp_path / "none.wav")


# -- every stage chunked ------------------------------------------------------------------------------

def test_coarticulation_in_frame_blocks_equals_the_whole_track(monkeypatch, minute_clip):
    from toolkit.visemes import coarticulation as co

    path, _, laid = minute_clip
    phones = [Segment(p.label, p.start + t, p.end + t) for t, sp in laid for p in sp.phonemes if p.label]
    rec = open_recording(path)
    monkeypatch.setattr(co, "FRAME_BLOCK_S", 1e6)
    whole = co.animate_phonemes(phones, rec.duration_s, 30, audio=rec.samples())
    monkeypatch.setattr(co, "FRAME_BLOCK_S", 3.7)
    blocks = co.animate_phonemes(phones, rec.duration_s, 30, audio=rec)
    assert whole.values.shape == blocks.values.shape
    np.testing.assert_allclose(blocks.values, whole.values, atol=1e-5)


def test_neural_model_streamed_equals_offline(monkeypatch, minute_clip):
    from toolkit.motion import model

    path, _, _ = minute_clip
    rec = open_recording(path)
    animator = model.NeuralAnimator.load()
    monkeypatch.setattr(model, "STREAM_FROM_S", 1e6)
    offline = animator.predict(rec.samples(), 16000, fps=30, seed=3)
    monkeypatch.setattr(model, "STREAM_FROM_S", 10.0)
    streamed = animator.predict(rec, 16000, fps=30, seed=3)
    np.testing.assert_allclose(streamed.values, offline.values, atol=1e-4)


def test_hybrid_refined_block_by_block_in_place_equals_the_whole_clip(monkeypatch, minute_clip):
    """The hybrid mix of a long recording (the network's frames blended block by block into the
    pipeline's own animation, no copy) equals the mix of the whole clip into a copy; the copy leaves
    its input alone."""
    from toolkit.motion import model
    from toolkit.visemes.coarticulation import animate_phonemes

    path, _, laid = minute_clip
    phones = [Segment(p.label, p.start + t, p.end + t) for t, sp in laid for p in sp.phonemes if p.label]
    rec = open_recording(path)
    aligned = animate_phonemes(phones, rec.duration_s, 30, audio=rec)
    before = aligned.values.copy()
    animator = model.NeuralAnimator.load()
    monkeypatch.setattr(model, "STREAM_FROM_S", 1e6)
    whole = animator.refine(aligned, rec.samples(), 16000, seed=3)
    np.testing.assert_array_equal(aligned.values, before)
    monkeypatch.setattr(model, "STREAM_FROM_S", 10.0)
    blocks = animator.refine(aligned, rec, 16000, seed=3, in_place=True)
    assert blocks is aligned and blocks.meta["refined_by"] == "neural"
    np.testing.assert_allclose(blocks.values, whole.values, atol=1e-4)
    assert np.abs(whole.values - before).max() > 0.05  # the network did move the jaw and lips


def test_chunked_alignment_equals_the_whole_file_within_tolerance(monkeypatch, minute_clip):
    """A minute of speech aligned chunk by chunk against the same minute aligned in one piece, and both
    against espeak-ng's exact word times."""
    from toolkit import pipeline
    from toolkit.alignment import pocketsphinx as ps

    path, text, laid = minute_clip
    truth = [(w.start + t, w.end + t) for t, sp in laid for w in sp.words]
    chunked = pipeline.animate(str(path), text, engine="align", blinks=False, head_motion=False)
    monkeypatch.setattr(ps, "SINGLE_PASS_S", 1e6)
    whole = pipeline.animate(str(path), text, engine="align", blinks=False, head_motion=False)
    assert len(chunked.words) == len(whole.words) == len(truth)
    starts = lambda anim: np.array([w.start for w in anim.words])  # noqa: E731
    assert np.median(np.abs(starts(chunked) - starts(whole))) < 0.01
    assert np.mean(np.abs(starts(chunked) - starts(whole)) < 0.05) > 0.9
    err = lambda anim: np.abs(starts(anim) - np.array([a for a, _ in truth]))  # noqa: E731
    assert np.mean(err(chunked) < 0.05) >= np.mean(err(whole) < 0.05) - 0.02  # as accurate as the whole file
    assert chunked.meta["confidence"] > 0.9
    # the curves: the same mouth, frame for frame, apart from where a boundary moved a little
    jaw = chunked.channels.index("jawOpen")
    assert np.corrcoef(chunked.values[:, jaw], whole.values[:, jaw])[0, 1] > 0.9


def test_a_chunk_that_starts_off_its_audio_resyncs():
    """Words the aligner was told are in a chunk but were said in the one before (or the reverse)
    are moved, so the next chunks start on their audio (no drift over a long file)."""
    from toolkit import pipeline

    x, text, laid = long_speech(150.0, seed=4)
    al = pipeline.align(x, text, sample_rate=16000)
    words = [w for w in al.words]
    truth = [(w.start + t, w.end + t) for t, sp in laid for w in sp.words]
    assert len(words) == len(truth)
    placed = np.mean([abs(w.start - a) < 0.1 for w, (a, _) in zip(words, truth)])
    assert placed > 0.95 and al.confidence > 0.9


# -- writers ------------------------------------------------------------------------------------------

def test_streaming_writers_write_what_the_whole_value_would(tmp_path):
    from toolkit.export import tracks

    rng = np.random.default_rng(0)
    anim = Animation(30, list(CHANNELS), rng.random((4321, len(CHANNELS))).astype(np.float32) - 0.2,
                     [Segment("ɑ", i * 0.1, i * 0.1 + 0.1) for i in range(2500)], [Segment("wörd", 0.1, 0.5)],
                     {"engine": "hybrid", "warnings": ["x"]})
    tracks.write_json(anim, tmp_path / "a.json")
    assert (tmp_path / "a.json").read_text() == json.dumps(anim.to_dict(), separators=(",", ":"))
    tracks.write_livelink_csv(anim, tmp_path / "a.csv")
    rows = (tmp_path / "a.csv").read_text().splitlines()
    table = tracks.livelink_table(anim)
    assert len(rows) == anim.n_frames + 1 and rows[4000].split(",")[2:] == [f"{v:.6g}" for v in table[3999]]


# -- memory and the progress bar ----------------------------------------------------------------------

def test_peak_memory_does_not_grow_with_the_length(tmp_path):
    """viseme animate with a transcript on 2 and 6 minutes of speech: the peak RSS hardly moves (the
    animation itself grows by ~0.5 MB a minute), and the bar stays off when stderr is not a terminal."""
    script = ("import os, resource, subprocess, sys\n"
              "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)\n"
              "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, p.returncode)\n"
              "sys.stderr.write(p.stderr)\n")
    peaks = {}
    for minutes in (2, 6):
        x, text, _ = long_speech(minutes * 60.0, seed=minutes)
        write_wav(tmp_path / f"m{minutes}.wav", x)
        (tmp_path / f"m{minutes}.txt").write_text(text)
        r = subprocess.run([sys.executable, "-c", script, sys.executable, "-m", "toolkit.cli", "animate",
                            str(tmp_path / f"m{minutes}.wav"), "--transcript", str(tmp_path / f"m{minutes}.txt"),
                            "-o", str(tmp_path / f"m{minutes}.json"), "-o", str(tmp_path / f"m{minutes}.csv")],
                           cwd=ROOT, capture_output=True, text=True, timeout=600,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
        rss, rc = r.stdout.split()
        assert rc == "0", r.stderr
        assert "%|" not in r.stderr  # no progress bar into a pipe
        peaks[minutes] = float(rss)
        assert Animation.load(tmp_path / f"m{minutes}.json").n_frames == pytest.approx(len(x) / 16000 * 30, abs=1)
    assert peaks[6] - peaks[2] < 40, peaks
    assert peaks[6] < 500, peaks


def test_peak_memory_does_not_grow_with_the_length_in_other_languages(tmp_path):
    """The same with Spanish (the universal aligner reads the recording block by block and keeps only its
    scores, ~2 MB a minute): 2 and 12 minutes.  Reading the audio whole grew ~10 MB a minute."""
    from toolkit.alignment.tts import synthesize

    lines = ["en un lugar de la mancha de cuyo nombre no quiero acordarme",
             "no ha mucho tiempo que vivía un hidalgo de los de lanza en astillero",
             "los gatos negros cruzan la calle cuando llueve por la tarde"]
    spoken = [synthesize(t, lang="es") for t in lines]
    pause = (np.random.default_rng(0).standard_normal(8000) * 5e-4).astype(np.float32)
    peaks = {}
    for minutes in (2, 12):
        parts, words, t = [], [], 0.0
        while t < minutes * 60:
            k = len(parts) % 3
            parts += [spoken[k].samples, pause]
            words.append(lines[k])
            t += spoken[k].duration_s + 0.5
        write_wav(tmp_path / f"es{minutes}.wav", np.concatenate(parts))
        (tmp_path / f"es{minutes}.txt").write_text(" ".join(words))
        r = subprocess.run([sys.executable, "-c", "import resource, subprocess, sys\n"
                            "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
                            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, p.returncode)",
                            sys.executable, "-m", "toolkit.cli", "animate", str(tmp_path / f"es{minutes}.wav"),
                            "--transcript", str(tmp_path / f"es{minutes}.txt"), "--lang", "es",
                            "-o", str(tmp_path / f"es{minutes}.json"), "--quiet"],
                           cwd=ROOT, capture_output=True, text=True, timeout=600,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
        rss, rc = r.stdout.split()
        assert rc == "0", r.stderr
        peaks[minutes] = float(rss)
        assert json.loads((tmp_path / f"es{minutes}.json").read_text())["meta"]["alignment"] == "universal"
    assert peaks[12] - peaks[2] < 50, peaks


def test_progress_bar_on_a_terminal_and_quiet_otherwise():
    from toolkit import progress

    class Tty(io.StringIO):
        def isatty(self):
            return True

    shown, hidden = Tty(), io.StringIO()
    for f in (shown, hidden):
        with progress.showing(file=f) as bar:
            progress.plan(600.0, ["align", "neural", "write"])
            for stage in ("align", "neural", "write"):
                for _ in range(6):
                    progress.advance(stage, 100.0)
            if f is shown:  # every stage's share counted: the bar is full at the end
                assert bar._tqdm.n == pytest.approx(bar._tqdm.total) and bar._tqdm.desc == "write"
    assert "%|" in shown.getvalue()
    assert hidden.getvalue() == ""
    with progress.showing(enabled=False, file=Tty()) as bar:  # --quiet
        progress.plan(600.0, ["align"])
        assert bar._tqdm is None
