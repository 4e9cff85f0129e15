"""The any-language aligner (toolkit.alignment.universal): Viterbi, numpy network, held-out speech, CLI, real words."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from toolkit.alignment.universal import (DURATION_MEDIAN_FRAMES, FrameClassifier, FrameOutput, align_universal,
                                         build_graph, target_scores, viterbi)
from toolkit.animation import Segment
from toolkit.cli import main
from toolkit.phonemes.ipa import FEATURE_VALUES

ROOT = Path(__file__).resolve().parent.parent
WORDS_DIR = ROOT.parent / "shared" / "data" / "speech" / "multilingual_dev"


def _one_hot_output(frames: list[str]) -> FrameOutput:
    """Frame outputs that are sure of each frame's phone (the feature values of its first part)."""
    from toolkit.phonemes.ipa import phone_parts

    logp = {}
    for h, values in FEATURE_VALUES.items():
        m = np.full((len(frames), len(values)), np.log(0.01 / max(1, len(values) - 1)))
        for t, lab in enumerate(frames):
            m[t, values.index(getattr(phone_parts(lab)[0], h))] = np.log(0.99)
        logp[h] = m
    change = np.array([0] + [frames[t] != frames[t - 1] for t in range(1, len(frames))], float)
    p = np.clip(change, 0.02, 0.98)
    return FrameOutput(logp, np.log(p), np.log(1 - p))


def _path_phones(frames, words):
    out = _one_hot_output(frames)
    g = build_graph(words)
    emit = target_scores(out, g.targets)[:, g.target]
    path, _ = viterbi(emit, g, out.boundary, out.no_boundary)
    return g, path


def test_viterbi_finds_the_phones_and_takes_or_skips_pauses():
    frames = [""] * 5 + ["m"] * 4 + ["a"] * 8 + [""] * 6 + ["s"] * 5 + ["i"] * 7 + [""] * 3
    g, path = _path_phones(frames, [["m", "a"], ["s", "i"]])
    got = [g.labels[p] if p >= 0 else "" for p in g.phone[path]]
    assert got == frames
    # no pause between the words in the audio: the optional one is skipped
    frames = ["m"] * 4 + ["a"] * 8 + ["s"] * 5 + ["i"] * 7
    g, path = _path_phones(frames, [["m", "a"], ["s", "i"]])
    assert [g.labels[p] if p >= 0 else "" for p in g.phone[path]] == frames


def test_minimum_durations_and_too_short_audio():
    words = [["t", "a"], ["kʰ", "i"]]  # at least 20 ms each (kʰ: a stop and its aspiration, 10 ms each)
    frames = ["t", "t", "a", "a", "kʰ", "kʰ", "i", "i"]
    g, path = _path_phones(frames, words)  # exactly the minimum: fits, with no pause
    assert [g.labels[p] for p in g.phone[path]] == frames
    with pytest.raises(ValueError, match="too short"):
        _path_phones(frames[:-1], words)


def test_short_phones_cost_more_than_long_ones():
    from toolkit.alignment.universal import duration_logprior

    assert duration_logprior(2) < duration_logprior(3) < duration_logprior(4) < 0 == duration_logprior(20)
    # frames that all sound like "a" for "a j a": neither a is crushed into a corner (without the prior
    # every split would score the same)
    frames = [""] * 3 + ["a"] * 30 + [""] * 3
    g, path = _path_phones(frames, [["a", "j", "a"]])
    lengths = np.bincount(g.phone[path][g.phone[path] >= 0], minlength=3)
    assert lengths[0] >= DURATION_MEDIAN_FRAMES and lengths[2] >= DURATION_MEDIAN_FRAMES, lengths


def test_runtime_needs_no_torch():
    code = ("import sys, numpy as np; from toolkit.alignment.universal import align_universal, FrameClassifier; "
            "from toolkit.alignment.tts import synthesize; sp = synthesize('kasa mola', 'eu'); "
            "al = align_universal(sp.samples, 16000, [('kasa', ['k','a','s','a']), ('mola', ['m','o','l','a'])]); "
            "print(al.method, 'torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.stdout.split() == ["universal", "False"], r.stderr


def test_shipped_weights_are_small_and_described():
    weights = ROOT / "assets" / "model" / "aligner.npz"
    assert weights.stat().st_size < 2_000_000
    m = FrameClassifier.load(weights)
    assert 50_000 < m.n_params < 400_000
    card = (ROOT / "assets" / "model" / "ALIGNER_CARD.md").read_text()
    assert "python -m toolkit.train.aligner" in card


def test_breathy_tails_belong_to_the_phone_before_the_pause():
    """Training augmentation (`toolkit.train.aligner.breathy_tails`): a voiced phone before a pause gets
    quieter noise after it, inside the pause, and its label grows over it; stops and the timeline's
    contiguity are untouched."""
    from toolkit.train.aligner import breathy_tails

    rng = np.random.default_rng(1)
    x = np.zeros(16000, np.float32)
    x[1600:4800] = 0.3 * np.sin(np.arange(3200) * 2 * np.pi * 150 / 16000)  # "a", 0.1-0.3 s
    x[8000:8800] = 0.2 * rng.standard_normal(800)  # "t" burst, 0.5-0.55 s
    phones = [Segment("", 0.0, 0.1), Segment("a", 0.1, 0.3), Segment("", 0.3, 0.5), Segment("t", 0.5, 0.55),
              Segment("", 0.55, 1.0)]
    y, q = breathy_tails(x, phones, np.random.default_rng(0), p=1.0)
    assert [s.label for s in q] == [s.label for s in phones]
    assert all(abs(a.end - b.start) < 1e-9 for a, b in zip(q, q[1:])) and q[-1].end == 1.0
    grow = q[1].end - 0.3
    assert 0.02 <= grow <= 0.15 and q[2].start == q[1].end
    tail = y[4800:int(q[1].end * 16000)]
    level = lambda v: 20 * np.log10(np.sqrt(np.mean(v.astype(np.float64) ** 2)) + 1e-12)  # noqa: E731
    assert -35 < level(tail) - level(x[4400:4800]) < -3  # breath: quieter than the vowel, far above silence
    assert np.all(y[int(q[1].end * 16000) + 1:8000] == 0) and q[3] == phones[3]  # the stop keeps its label


def _words(sp):
    """(word, its IPA phones) of synthesized speech."""
    return [(w.label, [p.label for p in sp.phonemes if p.label and w.start - 1e-6 <= p.start < w.end - 1e-6])
            for w in sp.words]


def _ipa_text(sp) -> str:
    return " ".join("".join(phones) for _, phones in _words(sp))


def _errors(ref: list[Segment], hyp: list[Segment]) -> np.ndarray:
    r = [s for s in ref if s.label]
    h = [s for s in hyp if s.label]
    assert [s.label for s in r] == [s.label for s in h]
    return np.array([abs(a.start - b.start) for a, b in zip(r, h)] + [abs(a.end - b.end) for a, b in zip(r, h)])


@pytest.fixture(scope="module")
def basque():
    """A Basque sentence (a language the model never heard) in a held-out voice variant, with exact phone times."""
    from toolkit.alignment.tts import synthesize

    return synthesize("Gaur goizean mendira joan gara, eta euria hasi du bat-batean.", lang="eu", variant="m7")


def test_held_out_language_is_aligned_within_tolerance(basque):
    words = _words(basque)
    al = align_universal(basque.samples, 16000, words)
    err = _errors(basque.phonemes, al.phonemes)
    assert err.mean() < 0.020 and np.mean(err <= 0.020) > 0.70, (err.mean(), np.mean(err <= 0.02))
    assert [w.label for w in al.words] == [w for w, _ in words]
    assert al.method == "universal" and al.confidence > 0.5


def test_long_recordings_are_aligned_window_by_window():
    from toolkit.alignment.tts import synthesize

    text = ("Ba mila txakur daude kalean, eta haur guztiak pozik daude. " * 8).strip()
    sp = synthesize(text, lang="eu", variant="f3", rate_wpm=150)
    assert sp.duration_s > 32  # longer than one pass
    words = _words(sp)
    al = align_universal(sp.samples, 16000, words)
    err = _errors(sp.phonemes, al.phonemes)
    assert len(al.words) == len(words) and err.mean() < 0.030, err.mean()


def test_long_recordings_move_the_progress_bar_window_by_window(monkeypatch):
    """The bar's align stage (82 % of it) moves as each window is aligned, to the end; it sat at 0 % for the
    whole alignment of every non-English or IPA job, then jumped, and closed short of full."""
    from toolkit import progress
    from toolkit.alignment.tts import synthesize

    sp = synthesize(("Ba mila txakur daude kalean, eta haur guztiak pozik daude. " * 8).strip(), lang="eu")
    steps = []
    monkeypatch.setattr(progress, "advance", lambda stage, s: steps.append((stage, s)))
    align_universal(sp.samples, 16000, _words(sp))
    aligned = [s for stage, s in steps if stage == "align"]
    assert len(aligned) > 1 and sum(aligned) == pytest.approx(sp.duration_s, abs=0.05), steps


def test_a_recording_read_block_by_block_with_the_band_equals_the_whole_search(monkeypatch):
    """align_universal on a `Recording` (read block by block, the Viterbi band on its 20 s windows of
    hundreds of states) places every phone exactly where the whole array with the full search does."""
    from toolkit.alignment import universal
    from toolkit.alignment.tts import synthesize
    from toolkit.recording import Recording

    text = ("Ba mila txakur daude kalean, eta haur guztiak pozik daude. " * 8).strip()
    sp = synthesize(text, lang="eu", variant="m3", rate_wpm=160)
    words = _words(sp)
    cells = []
    viterbi_before = universal.viterbi
    monkeypatch.setattr(universal, "viterbi", lambda emit, *a, **k: cells.append(emit.size) or viterbi_before(emit, *a, **k))
    banded = align_universal(Recording.from_array(sp.samples, "eu"), 16000, words)
    assert max(cells) > universal.BAND_MIN_CELLS  # the band was used
    monkeypatch.setattr(universal, "BAND_MIN_CELLS", 10 ** 18)
    whole = align_universal(sp.samples, 16000, words)
    assert [(p.label, p.start, p.end) for p in banded.phonemes] == [(p.label, p.start, p.end) for p in whole.phonemes]
    assert banded.confidence == whole.confidence


def test_cli_align_with_ipa(tmp_path, capsys, basque):
    from toolkit.audio import write_wav

    wav = write_wav(tmp_path / "eu.wav", basque.samples, 16000)
    ipa = _ipa_text(basque)
    rc = main(["align", str(wav), "--ipa", ipa, "-o", str(tmp_path / "a.json")])
    assert rc == 0
    d = json.loads((tmp_path / "a.json").read_text())
    assert d["method"] == "universal" and [w["label"] for w in d["words"]] == ipa.split()
    rc = main(["animate", str(wav), "--ipa", ipa, "--engine", "align", "-o", str(tmp_path / "anim.json")])
    assert rc == 0
    meta = json.loads((tmp_path / "anim.json").read_text())["meta"]
    assert meta["alignment"] == "universal" and meta["engine"] == "align"


@pytest.mark.parametrize("args, message", [
    (["--ipa", "kaX"], "unknown symbol 'X' (U+0058)"),
    (["--ipa", ""], "argument --ipa: is empty"),
    (["--ipa", "ka", "--text", "ka"], "argument --text: not allowed with argument --ipa"),
    (["--text", "kala", "--lang", "xx-yy"], "unknown language 'xx-yy'"),
])
def test_cli_bad_transcripts_fail_in_one_line_before_any_work(tmp_path, capsys, monkeypatch, args, message):
    from toolkit import cli, pipeline

    def boom(*a, **k):
        raise AssertionError("work started before the transcript was checked")

    monkeypatch.setattr(pipeline, "animate", boom)
    monkeypatch.setattr(cli, "_load_audio", boom)
    out = tmp_path / "o.json"
    try:
        rc = main(["animate", str(tmp_path / "missing.wav"), *args, "-o", str(out)])  # (the audio is never read)
    except SystemExit as e:  # refused by the parser, in one line
        rc = e.code
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and message in err[0] and "error" in err[0], err
    assert not out.exists()


def test_python_api_takes_ipa(basque):
    import toolkit

    al = toolkit.align(basque.samples, sample_rate=16000, ipa=_ipa_text(basque))
    assert al.method == "universal" and len(al.words) == len(basque.words)
    with pytest.raises(ValueError, match="not both"):
        toolkit.align(basque.samples, "gaur", sample_rate=16000, ipa="ɡau̯r")


@pytest.mark.skipif(not WORDS_DIR.is_dir(), reason=f"{WORDS_DIR} not found (real multilingual words)")
def test_real_words_in_unheard_languages_beat_the_english_model():
    sys.path.insert(0, str(ROOT))
    from bench.boundaries import pooled
    from bench.voxangeles import load_words, score_boundaries
    from toolkit.alignment.pocketsphinx import align_pocketsphinx

    words = [w for k, w in enumerate(load_words(WORDS_DIR)) if k % 12 == 0]
    ours = [score_boundaries(w.phones, align_universal(w.samples, 16000, w.transcript).phonemes) for w in words]
    theirs = [score_boundaries(w.phones, align_pocketsphinx(w.samples, 16000, w.transcript, "und").phonemes)
              for w in words]
    o, t = pooled(ours), pooled(theirs)
    # (absolute figures on the whole set: bench/floors.toml, tests/test_accuracy.py)
    assert o.mean_abs_error_s < t.mean_abs_error_s and o.mean_abs_error_s < 0.035, (o.mean_abs_error_s, t.mean_abs_error_s)


def test_animate_with_ipa_uses_the_universal_aligner(basque):
    """`toolkit.animate(..., ipa=...)`: the IPA is the transcript, whatever --lang says; without audio it is refused."""
    import toolkit

    anim = toolkit.animate(basque.samples, sample_rate=16000, ipa=_ipa_text(basque), engine="align", blinks=False)
    assert anim.meta["alignment"] == "universal" and [w.label for w in anim.words] == _ipa_text(basque).split()
    with pytest.raises(ValueError, match="needs the audio"):
        toolkit.animate(None, ipa="kasa")
    with pytest.raises(ValueError, match="not both"):
        toolkit.animate(basque.samples, "kasa", sample_rate=16000, ipa="kasa")


def test_auto_keeps_pocketsphinx_for_english_text_only():
    """The one choice (`toolkit.alignment.auto_method`): English text -> PocketSphinx; other languages,
    IPA, and English words all given as IPA -> the universal aligner; a word=IPA override in English
    text stays with PocketSphinx (its phones go to their nearest English ones)."""
    from toolkit.alignment import auto_method
    from toolkit.phonemes.g2p import transcript_words

    assert auto_method("en", transcript_words("we met in Tbilisi=tʰbilisi", None, "en")) == "pocketsphinx"
    assert auto_method("en", transcript_words(None, "wi mɛt", "en")) == "universal"
    assert auto_method("de", transcript_words("guten Tag", None, "de")) == "universal"
