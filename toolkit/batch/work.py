"""One batch line, in a worker: animate it, write its outputs atomically, check it, report it.

`prepare` loads everything a line needs once per worker process (the neural model, PocketSphinx
and its dictionary, the CMU dictionary, espeak-ng) by animating a short generated clip, so the
first line costs no more than the last.  `run_line` never raises: a bad line (missing or
corrupt audio, empty transcript, anything the pipeline refuses) comes back as a failed row with
its reason, and the batch goes on.  Both run the same way in a local process pool and on a
Dask worker (`toolkit.batch.run`), so the results are the same.

QA warnings (`qa_warnings`), beside the pipeline's own: words not in the pronunciation
dictionary (their pronunciation was guessed), a low alignment confidence, a transcript too long for
the audio (faster than fast speech, `QA_FAST_PHONEMES_PER_S`), near-silence, clipping.

Example
-------
>>> row = run_line(Task("x", "/no/such.wav", "hello", outputs=[("/tmp/x.json", "json")], key="k"))
>>> row["status"], row["error"]
('failed', '/no/such.wav: file not found')
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

# Below this alignment confidence a line is worth a look (the engine falls back to the audio
# alone only below `toolkit.engines.MIN_ALIGN_CONFIDENCE`).
QA_MIN_CONFIDENCE = 0.7
NEAR_SILENT_DBFS = -35.0  # peak level below which a recording is nearly silent
QUIET_SPEECH_SHARE = 0.1  # ... or when the energy VAD finds speech in less than this share of it
CLIP_LEVEL = 0.999  # a sample this close to full scale is clipped
CLIP_SHARE = 0.001  # warn when this share of the samples is clipped
# A transcript is too long for its audio when saying it there takes more phonemes a second than
# brisk conversational speech (10-15 a second, `toolkit.pipeline.MAX_PHONEMES_PER_S` notes): an extra
# sentence or a cut take.  Comparing with a normal pace (12) flagged lines read a little briskly.
QA_FAST_PHONEMES_PER_S = 18.0


@dataclass(frozen=True)
class Task:
    """A line as a worker gets it: plain strings and numbers (it travels to other processes and machines)."""

    id: str
    audio: str
    text: str | None
    lang: str = "en"
    fps: float = 30.0
    model: str | None = None
    rig: str | None = None
    options: dict = field(default_factory=dict)  # pipeline options: engine, seed, blinks, head_motion...
    outputs: list = field(default_factory=list)  # (path, format name)
    key: str = ""


_READY = False


def prepare() -> None:
    """Load the models once in this process (a worker initializer and a Dask worker plugin call it)."""
    global _READY
    if _READY:
        return
    from toolkit import pipeline
    from toolkit.alignment.tts import synthesize
    from toolkit.phonemes import cmu

    sp = synthesize("Hello, this line loads the models.")
    pipeline.animate(sp.samples, sp.text, sample_rate=sp.sample_rate)  # PocketSphinx, dictionaries, neural model
    cmu.index_all()  # a worker looks up thousands of words: the whole dictionary, not a line's worth
    _READY = True


def run_line(task: Task) -> dict:
    """Animate one line and write its outputs; the report row (status "ok" or "failed" with its reason)."""
    from toolkit import pipeline
    from toolkit.export.registry import WriteJob, plan_outputs, write_outputs
    from toolkit.recording import open_recording

    cpu0, wall0 = time.process_time(), time.perf_counter()
    row = failed_row(task, "")
    try:
        if task.text is not None and not task.text.strip():
            raise ValueError(f"{task.audio}: the transcript is empty")
        plan = plan_outputs([p for p, _ in task.outputs], model=task.model, rig=task.rig, inputs=(task.audio,))
        with open_recording(task.audio) as rec:  # closed (its temporary file gone) on a bad line too
            row["duration_s"] = round(rec.duration_s, 3)
            anim = pipeline.animate(rec, task.text, source=task.audio, lang=task.lang, fps=task.fps, **task.options)
            write_outputs(anim, plan, WriteJob(samples=rec, audio_path=task.audio), report=lambda *a, **k: None)
            row.update(status="ok", engine=anim.meta.get("engine", ""), confidence=anim.meta.get("confidence"),
                       warnings=list(anim.meta.get("warnings", [])) + qa_warnings(rec, task.text, task.lang, anim))
    except Exception as e:  # one bad line must never stop the others: its reason goes in the report
        msg = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
        row["error"] = " ".join(msg.split()) or type(e).__name__
    row["compute_s"] = round(time.process_time() - cpu0, 3)
    row["wall_s"] = round(time.perf_counter() - wall0, 3)
    return row


def failed_row(task: Task, error: str) -> dict:
    """The report row of a line that failed (the fields every row has)."""
    return {"id": task.id, "key": task.key, "audio": task.audio, "status": "failed", "engine": "", "confidence": None,
            "warnings": [], "duration_s": None, "compute_s": None, "outputs": [p for p, _ in task.outputs],
            "error": error}


def qa_warnings(rec, text: str | None, lang: str, anim) -> list[str]:
    """What a person should check in this line (see the module notes)."""
    from toolkit.alignment.even import speech_regions
    from toolkit.pipeline import NORMAL_PHONEMES_PER_S

    out = []
    peak, clipped, speech_s = 0.0, 0, 0.0
    for _, _, x in rec.blocks():
        a = np.abs(x)
        peak = max(peak, float(a.max()) if len(a) else 0.0)
        clipped += int(np.count_nonzero(a >= CLIP_LEVEL))
        speech_s += sum(b - s for s, b in speech_regions(x, 16000))
    if clipped > CLIP_SHARE * rec.n_samples:
        out.append(f"clipped: {100.0 * clipped / rec.n_samples:.1f} % of the samples are at full scale")
    peak_db = 20 * np.log10(max(peak, 1e-10))
    if peak_db < NEAR_SILENT_DBFS or speech_s < QUIET_SPEECH_SHARE * rec.duration_s:
        out.append(f"near-silence: peak {peak_db:.0f} dBFS, speech found in {speech_s:.1f} of {rec.duration_s:.1f} s")
    conf = anim.meta.get("confidence")
    if text and conf is not None and anim.meta.get("alignment") not in ("none", "espeak") and conf < QA_MIN_CONFIDENCE:
        out.append(f"low confidence: alignment confidence {conf:.2f}")
    if text:
        from toolkit.phonemes.g2p import words_to_phonemes

        words = words_to_phonemes(text, lang=lang)
        guessed = [w.text for w in words if getattr(w, "source", "") == "g2p"]
        if guessed:
            out.append(f"out-of-dictionary words (pronunciation guessed): {', '.join(guessed[:8])}"
                       f"{' ...' if len(guessed) > 8 else ''}")
        n = sum(len(w.phones) for w in words)
        rate = n / rec.duration_s
        if rate > QA_FAST_PHONEMES_PER_S:  # (far longer: the pipeline refused the line)
            out.append(f"transcript too long for the audio: its {n} phonemes in {rec.duration_s:.1f} s of audio are "
                       f"{rate:.1f} phonemes a second (a normal pace is about {NORMAL_PHONEMES_PER_S:.0f}, "
                       f"fast speech {QA_FAST_PHONEMES_PER_S:.0f}); an extra word or sentence, or audio cut short?")
    return out
