"""The `viseme` command: outputs by extension, the say/align subcommands, exit codes and no partial files."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from toolkit.cli import main

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "assets" / "samples" / "bob.wav"
SAMPLE_TEXT = ROOT / "assets" / "samples" / "bob.txt"


def test_animate_writes_every_track_format(tmp_path, capsys):
    outs = ["a.json", "a.csv", "m.tsv", "rhubarb.json", "a.png", "a.TextGrid"]
    rc = main(["animate", str(SAMPLE), "--transcript", str(SAMPLE_TEXT), "--fps", "24", "--engine", "align"]
              + sum((["-o", str(tmp_path / o)] for o in outs), []))
    assert rc == 0
    for o in outs:
        assert (tmp_path / o).stat().st_size > 0, o
    d = json.loads((tmp_path / "a.json").read_text())
    assert d["fps"] == 24 and d["words"][0]["label"] == "bob"
    assert "mouthCues" in json.loads((tmp_path / "rhubarb.json").read_text())
    assert "item [2]" in (tmp_path / "a.TextGrid").read_text() or "phones" in (tmp_path / "a.TextGrid").read_text()
    assert "24 fps" in capsys.readouterr().out


def test_align_prints_json(tmp_path, capsys):
    rc = main(["align", str(SAMPLE), "--text", SAMPLE_TEXT.read_text()])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    assert d["method"] == "pocketsphinx" and d["words"][1]["label"] == "made"
    assert all(p["end"] >= p["start"] for p in d["phonemes"])


def test_say_writes_wav_and_animation(tmp_path):
    rc = main(["say", "Guten Morgen", "--lang", "de", "-o", str(tmp_path / "hello")])
    assert rc == 0
    assert (tmp_path / "hello.wav").stat().st_size > 1000
    d = json.loads((tmp_path / "hello.json").read_text())
    assert d["meta"]["alignment"] == "espeak" and d["words"][0]["label"].lower() == "guten"


@pytest.mark.parametrize("case", ["missing", "empty", "silent", "bad-lang", "unwritable", "same-as-input", "bad-ext"])
def test_bad_input_exits_nonzero_without_output(tmp_path, capsys, case):
    import numpy as np

    from toolkit.audio import write_wav

    audio, out, extra = str(SAMPLE), tmp_path / "out.json", []
    if case == "missing":
        audio = str(tmp_path / "nope.wav")
    elif case == "empty":
        (tmp_path / "empty.wav").write_bytes(b"")
        audio = str(tmp_path / "empty.wav")
    elif case == "silent":
        audio = str(write_wav(tmp_path / "quiet.wav", np.zeros(8000, np.float32), 16000))
    elif case == "bad-lang":
        extra = ["--lang", "qq"]
    elif case == "unwritable":
        out = tmp_path / "no_such_dir" / "out.json"
    elif case == "same-as-input":
        out = Path(audio)
    elif case == "bad-ext":
        out = tmp_path / "out.xyz"
    before = SAMPLE.read_bytes()
    rc = main(["animate", audio, "--text", "Bob made a map", "--engine", "align", "-o", str(out)] + extra)
    err = capsys.readouterr().err
    assert rc != 0
    assert "error" in err and len(err.strip().splitlines()) <= 3, err
    if case in ("missing", "empty", "silent"):
        assert Path(audio).name in err
    assert SAMPLE.read_bytes() == before  # the input is never touched
    if case != "same-as-input":
        assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_console_script_runs():
    exe = Path(sys.executable).parent / "viseme"
    if not exe.exists():
        pytest.skip("viseme console script not installed (run make setup)")
    r = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "animate" in r.stdout


def test_audio_only_uses_the_neural_model_and_train_has_its_options(tmp_path, capsys):
    out = tmp_path / "nn.json"
    assert main(["animate", str(SAMPLE), "-o", str(out)]) == 0
    d = json.loads(out.read_text())
    assert d["meta"]["engine"] == "neural" and d["phonemes"] == []
    assert "engine neural" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["train", "--help"])
    assert e.value.code == 0 and "--minutes" in capsys.readouterr().out
