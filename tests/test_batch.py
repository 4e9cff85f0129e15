"""`viseme batch`: manifests (tables and folders), bad input refused before work, the resumable ledger,
the QA report, bad lines that never stop the others, and a Dask cluster that loses a worker."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from toolkit.animation import Animation
from toolkit.batch.ledger import Ledger
from toolkit.batch.manifest import ManifestError, read_manifest
from toolkit.batch.run import run_batch
from toolkit.cli import main as cli

SENTENCES = ["Bob made a map of Paris.", "The birch canoe slid on the smooth planks.",
             "Glue the sheet to the dark blue background.", "Rice is often served in round bowls.",
             "The juice of lemons makes fine punch.", "Four hours of steady work faced us."]


@pytest.fixture(scope="module")
def voice_lines(tmp_path_factory):
    """Six espeak-ng lines in a folder, as WAV files with .txt transcripts beside them."""
    from toolkit.alignment.tts import synthesize
    from toolkit.audio import write_wav

    d = tmp_path_factory.mktemp("lines")
    for i, text in enumerate(SENTENCES):
        sp = synthesize(text, voice=["en-us", "en-us+f3", "en-gb"][i % 3])
        sub = d / ("scene1" if i < 3 else "scene2")
        sub.mkdir(exist_ok=True)
        write_wav(sub / f"line{i}.wav", sp.samples)
        (sub / f"line{i}.txt").write_text(text + "\n")
    return d


def _table(folder: Path, rows: list[str], name="lines.tsv", header="Line ID\tAudio File\tDialogue") -> Path:
    p = folder / name
    p.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return p


# -- manifests ----------------------------------------------------------------------------------------

def test_folder_manifest_finds_audio_and_transcripts_recursively(voice_lines):
    lines = read_manifest(voice_lines)
    assert [line.id for line in lines] == [f"scene1/line{i}" for i in range(3)] + [f"scene2/line{i}" for i in range(3, 6)]
    assert lines[0].text == SENTENCES[0] and lines[0].audio.name == "line0.wav"


def test_table_columns_by_forgiving_names(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"x")
    (tmp_path / "t.lab").write_text("from a file")
    p = tmp_path / "loc.csv"
    p.write_text("STRING_ID;Voice-File;Source Text;Locale;Rig;Frame Rate\n"
                 "hero/hello;a.wav;Hello there;de;arkit52;25\n"
                 "hero/bye;a.wav;t.lab;;;\n", encoding="utf-8")
    a, b = read_manifest(p)
    assert (a.id, a.audio, a.text, a.lang, a.rig, a.fps) == ("hero/hello", tmp_path / "a.wav", "Hello there", "de",
                                                              "arkit52", 25.0)
    assert (b.text, b.lang, b.fps) == ("from a file", None, None)
    # no id column: the audio path names the output
    q = _table(tmp_path, ["a.wav\thi"], "noid.tsv", "audio\ttranscript")
    assert read_manifest(q)[0].id == "a"


@pytest.mark.parametrize("rows,header,message", [
    (["x\ta.wav\thi"], "Line ID\tSpeaker\tDialogue", "no audio column"),
    ([], "id\taudio\ttext", "no lines"),
    (["x\ta.wav\thi", "X\ta.wav\tho"], "id\taudio\ttext", "duplicate id 'X'"),
    (["../up\ta.wav\thi"], "id\taudio\ttext", "unusable id"),
    (["x\t../elsewhere/gone.wav\thi"], "id\taudio\ttext", "outside the manifest's folder"),
    (["x\ta.wav\thi\tfast"], "id\taudio\ttext\tfps", "fps 'fast' is not a number"),
    # a transcript file that is not there (it was animated as the words "lines hero intro txt")
    (["x\ta.wav\tlines/hero/intro.txt"], "id\taudio\ttext", "transcript lines/hero/intro.txt: no such file"),
])
def test_bad_manifests_fail_before_work_with_one_line(tmp_path, rows, header, message):
    (tmp_path / "a.wav").write_bytes(b"x")
    p = _table(tmp_path, rows, header=header)
    with pytest.raises(ManifestError) as e:
        read_manifest(p)
    assert message in str(e.value) and "\n" not in str(e.value) and str(p) in str(e.value)


def test_cli_refuses_bad_input_before_any_work(tmp_path, voice_lines, capsys):
    out = tmp_path / "out"
    assert cli(["batch", str(voice_lines), "-o", str(voice_lines / "scene1" / "line0.txt")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert cli(["batch", str(voice_lines), "-o", str(out), "--only", "scene1/line0,nope"]) == 2
    assert "unknown id(s) 'nope'" in capsys.readouterr().err
    assert cli(["batch", str(voice_lines), "-o", str(out), "--format", "json,doc"]) == 2
    assert "unknown output format 'doc'" in capsys.readouterr().err
    assert not out.exists()  # nothing was started


# -- running, resuming, reporting ---------------------------------------------------------------------

def test_batch_writes_outputs_ledger_and_report_and_a_bad_line_stops_nothing(tmp_path, voice_lines, capsys):
    (tmp_path / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    rows = [f"{line.id}\t{line.audio}\t{line.text}" for line in read_manifest(voice_lines)]
    rows += ["bad/missing\tnot_here.wav\thello", "bad/corrupt\tbroken.wav\thello", f"bad/empty\t{rows and read_manifest(voice_lines)[0].audio}\t"]
    table = _table(tmp_path, rows)
    out = tmp_path / "out"
    code = cli(["batch", str(table), "-o", str(out), "--format", "json,csv", "--jobs", "2", "--quiet"])
    err = capsys.readouterr().err
    assert code == 3 and "3 of 9 lines failed" in err
    report = json.loads((out / "report.json").read_text())
    lines = report["lines"]
    assert [r["status"] for r in lines[:3]] == ["failed"] * 3  # worst first
    reasons = {r["id"]: r["error"] for r in lines[:3]}
    assert "file not found" in reasons["bad/missing"] and "corrupt" in reasons["bad/corrupt"]
    assert "transcript is empty" in reasons["bad/empty"]
    ok = [r for r in lines if r["status"] == "ok"]
    assert len(ok) == 6 and all(r["engine"] == "hybrid" and r["confidence"] > 0.5 for r in ok)
    assert all(r["duration_s"] > 1.0 and r["compute_s"] > 0 for r in ok)
    csv_head = (out / "report.csv").read_text().splitlines()[0]
    assert csv_head == "id,status,engine,confidence,warnings,duration_s,compute_s,audio,error"
    for r in ok:  # every output there, readable, as long as its audio
        anim = Animation.load(out / f"{r['id']}.json")
        assert abs(anim.duration_s - r["duration_s"]) < 0.05 and anim.words
        assert (out / f"{r['id']}.csv").read_text().startswith("Timecode,BlendShapeCount,EyeBlinkLeft")
    assert not list(out.rglob(".*.part*"))  # no temporary file left


def test_rerun_skips_unchanged_redoes_changed_and_force_redoes_all(tmp_path, voice_lines):
    import shutil

    src = tmp_path / "lines"
    shutil.copytree(voice_lines, src)
    out = tmp_path / "out"
    first = run_batch(src, out, jobs=1)
    assert (first.done, first.skipped, first.failed) == (6, 0, 0)
    stamp = (out / "scene1/line0.json").stat().st_mtime_ns
    again = run_batch(src, out, jobs=1)
    assert (again.done, again.skipped) == (0, 6)
    assert (out / "scene1/line0.json").stat().st_mtime_ns == stamp
    assert {r["status"] for r in json.loads((out / "report.json").read_text())["lines"]} == {"unchanged"}
    (src / "scene2/line4.txt").write_text("The juice of limes makes fine punch.")  # a changed line
    (out / "scene1/line1.json").unlink()  # a lost output
    changed = run_batch(src, out, jobs=1)
    assert changed.done == 2 and {r["id"] for r in changed.rows if r["status"] == "ok"} == {"scene2/line4", "scene1/line1"}
    assert "limes" in [w.label for w in Animation.load(out / "scene2/line4.json").words]
    assert run_batch(src, out, jobs=1, seed=1).done == 6  # another option: every line again
    assert run_batch(src, out, jobs=1, seed=1, force=True).done == 6
    ledger = Ledger(out)
    assert len(ledger.records) == 6 and len(ledger.path.read_text().splitlines()) == 6  # compacted


def test_only_some_lines_keeps_the_other_lines_in_the_report(tmp_path, voice_lines, capsys):
    """`--only` redoes just its lines, but the report still lists every line with its latest status
    (from the ledger): it was rewritten with the --only lines alone, and the earlier failure was lost."""
    first, second = read_manifest(voice_lines)[:2]
    table = _table(tmp_path, [f"{first.id}\t{first.audio}\t{first.text}", f"{second.id}\t{second.audio}\t{second.text}",
                              "bad/missing\tnot_here.wav\thello"])
    out = tmp_path / "out"
    assert cli(["batch", str(table), "-o", str(out), "--jobs", "1", "--quiet"]) == 1
    assert cli(["batch", str(table), "-o", str(out), "--jobs", "1", "--quiet", "--only", first.id, "--force"]) == 0
    capsys.readouterr()
    report = json.loads((out / "report.json").read_text())
    status = {r["id"]: r["status"] for r in report["lines"]}
    assert status == {first.id: "ok", second.id: "ok", "bad/missing": "failed"}, status
    assert report["lines"][0]["id"] == "bad/missing" and "file not found" in report["lines"][0]["error"]
    assert report["summary"]["done"] == 1 and report["summary"]["earlier"] == 2
    assert len((out / "report.csv").read_text().splitlines()) == 4  # the header and every line


def test_a_failed_line_leaves_no_empty_folder_behind(tmp_path, voice_lines):
    """The folders of a line's outputs were made before it ran, and stayed, empty, when it failed
    (out/bad/).  Those it made are removed again; one a line that worked shares, or the user's own, stays."""
    first = read_manifest(voice_lines)[0]  # scene1/line0
    table = _table(tmp_path, ["scene1/broken\tnot_here.wav\thi", f"{first.id}\t{first.audio}\t{first.text}",
                              "bad/deeper/x\tnot_here.wav\thi", "kept/y\tnot_here.wav\thi"])
    out = tmp_path / "out"
    (out / "kept").mkdir(parents=True)  # the user's own (empty) folder
    res = run_batch(table, out, jobs=1)
    assert res.failed == 3 and (out / f"{first.id}.json").is_file()
    assert not (out / "bad").exists() and (out / "kept").is_dir()
    assert sorted(p.name for p in out.iterdir()) == [".viseme-batch", "kept", "report.csv", "report.json", "scene1"]


def test_sigterm_stops_the_workers_at_once_and_leaves_no_unrecorded_outputs(tmp_path, voice_lines):
    """SIGTERM mid-batch: exit 143 at once, every output on disk is in the ledger (a resume trusts it).
    The workers had inherited the command's signal handler: each took the signal as an error of its
    line and went on with the queue until killed 3 s later, writing ~40 lines nobody recorded."""
    wav = voice_lines / "scene1/line0.wav"
    table = _table(tmp_path, [f"l{i}\t{wav}\t{SENTENCES[0]}" for i in range(400)])
    out = tmp_path / "out"
    p = subprocess.Popen([sys.executable, "-m", "toolkit.cli", "batch", str(table), "-o", str(out), "--jobs", "2"],
                         stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    ledger = out / ".viseme-batch" / "ledger.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and p.poll() is None and (
            not ledger.is_file() or len(ledger.read_text().splitlines()) < 5):
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    assert p.wait(timeout=30) == 143, p.stderr.read()
    assert time.monotonic() - t0 < 2.0
    recorded = set(Ledger(out).records)
    written = {f.stem for f in out.glob("l*.json")}
    assert 5 <= len(recorded) < 400 and len(written - recorded) <= 2, (len(recorded), sorted(written - recorded))


def test_ledger_survives_a_record_cut_off_by_a_kill(tmp_path):
    led = Ledger(tmp_path)
    led.record({"id": "a", "key": "k", "status": "ok", "outputs": []})
    led.close()
    with open(led.path, "a") as f:
        f.write('{"id": "b", "key": "k", "sta')  # the process died mid-write
    again = Ledger(tmp_path)
    assert set(again.records) == {"a"} and again.is_done("a", "k", []) and not again.is_done("b", "k", [])


def test_qa_warnings_name_what_to_check(tmp_path):
    from toolkit.alignment.tts import synthesize
    from toolkit.audio import write_wav

    sp = synthesize("Bob made a map of Paris.")
    write_wav(tmp_path / "clipped.wav", np.clip(sp.samples * 40, -1, 1))
    write_wav(tmp_path / "quiet.wav", sp.samples * 0.01)
    write_wav(tmp_path / "short.wav", sp.samples)
    table = _table(tmp_path, ["clipped\tclipped.wav\tBob made a map of Paris.",
                              "quiet\tquiet.wav\tBob made a map of Paris.",
                              "short\tshort.wav\tBob made a map of Paris, and a map of Rome.",
                              "oov\tclipped.wav\tBob made a map of Qwertzland."])
    res = run_batch(table, tmp_path / "out", jobs=1)
    warn = {r["id"]: " | ".join(r["warnings"]) for r in res.rows}
    assert "clipped:" in warn["clipped"]
    assert "near-silence" in warn["quiet"]
    assert "transcript too long for the audio" in warn["short"]
    assert "out-of-dictionary words (pronunciation guessed): qwertzland" in warn["oov"].lower()
    assert "low confidence" in warn["short"] or res.rows and min(r["confidence"] for r in res.rows) < 0.7


def test_no_long_transcript_warning_for_a_line_read_at_a_normal_pace(tmp_path):
    """A transcript read at an ordinary pace is not "longer than the audio": the warning fired when its
    phonemes at 12 a second took a little longer than the audio ("2.2 s ... the audio is 2.1 s"), which
    is most lines a brisk speaker reads (espeak-ng itself reads this one at 12.7 a second)."""
    from types import SimpleNamespace

    from toolkit.alignment.tts import synthesize
    from toolkit.audio import write_wav
    from toolkit.batch.work import qa_warnings
    from toolkit.recording import open_recording

    text = "The birch canoe slid on the smooth planks."
    write_wav(tmp_path / "line.wav", synthesize(text).samples)
    with open_recording(tmp_path / "line.wav") as rec:
        assert not [w for w in qa_warnings(rec, text, "en", SimpleNamespace(meta={})) if "transcript" in w]
        long = qa_warnings(rec, text + " Glue the sheet to the dark blue background.", "en", SimpleNamespace(meta={}))
        seconds = rec.duration_s
    (warning,) = [w for w in long if "transcript" in w]
    assert warning.startswith(f"transcript too long for the audio: its 54 phonemes in {seconds:.1f} s of audio are "
                              f"{54 / seconds:.1f} phonemes a second"), warning


# -- Dask ---------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dask_cluster_losing_a_worker_still_completes_every_line_once(tmp_path, voice_lines):
    """A real scheduler and two worker processes on loopback; one worker is killed mid-batch."""
    pytest.importorskip("distributed")
    from distributed import Client

    rows = [f"{line.id}/take{k}\t{line.audio}\t{line.text}" for k in range(3) for line in read_manifest(voice_lines)]
    table = _table(voice_lines, rows, name="takes.tsv")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", str(port), "--dashboard-address", ":0"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for i in range(2):
            procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", addr, "--nthreads", "1",
                                           "--no-nanny", "--name", f"w{i}", "--dashboard-address", ":0"], env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with Client(addr, timeout="30s") as c:
            c.wait_for_workers(2, timeout=60)
        out = tmp_path / "out"
        killed = []

        def kill_one_worker_mid_batch():
            ledger = out / ".viseme-batch" / "ledger.jsonl"
            t_end = time.time() + 120
            while time.time() < t_end:
                if ledger.is_file() and len(ledger.read_text().splitlines()) >= 2:
                    procs[1].send_signal(signal.SIGKILL)
                    killed.append(len(ledger.read_text().splitlines()))
                    return
                time.sleep(0.02)

        watcher = threading.Thread(target=kill_one_worker_mid_batch)
        watcher.start()
        res = run_batch(table, out, scheduler=addr)
        watcher.join()
        assert killed and killed[0] < len(rows), "the worker was not killed mid-batch"
        assert (res.total, res.done, res.failed) == (len(rows), len(rows), 0)
        recorded = [json.loads(x)["id"] for x in (out / ".viseme-batch" / "ledger.jsonl").read_text().splitlines()]
        assert sorted(recorded) == sorted(r.split("\t")[0] for r in rows)  # every line exactly once
        local = run_batch(table, tmp_path / "local", jobs=1)
        assert local.failed == 0
        for r in rows:  # the cluster's results are the local run's
            a = Animation.load(out / f"{r.split(chr(9))[0]}.json")
            b = Animation.load(tmp_path / "local" / f"{r.split(chr(9))[0]}.json")
            assert np.array_equal(a.values, b.values) and a.phonemes == b.phonemes and a.words == b.words
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
            p.wait()
