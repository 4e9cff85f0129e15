"""What README.md promises about the command line holds: its command lines use options that exist,
it names every output ending, every option says in --help what it does, numbers are refused by the
parser, outputs keep their sound, read-only files stay, and messages name what the user typed."""
from __future__ import annotations

import argparse
import os
import re
import shlex
import stat
import subprocess
from pathlib import Path

import numpy as np
import pytest

from toolkit.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def _subparsers(parser: argparse.ArgumentParser, name: str = "viseme"):
    """(name, parser) of every `viseme` subcommand, nested ones (`viseme rig inspect`) included."""
    yield name, parser
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            for sub, p in a.choices.items():
                yield from _subparsers(p, f"{name} {sub}")


def _readme_command_lines() -> list[list[str]]:
    """The `viseme ...` command lines of README's sh blocks, as words (comments dropped; the `viseme`
    part of a pipe)."""
    out = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        for line in block.splitlines():
            for part in line.split(" | "):
                words = shlex.split(part, comments=True)
                if words[:1] == ["viseme"]:
                    out.append(words)
    return out


def test_readme_command_lines_use_options_that_exist():
    parsers = dict(_subparsers(build_parser()))
    lines = _readme_command_lines()
    assert len(lines) > 30  # the examples were found
    for words in lines:
        name = "viseme " + words[1] + (" " + words[2] if words[1] == "rig" else "")
        if words[1] == "train":   # its own parser (toolkit.train.audio2face)
            continue
        known = {o for a in parsers[name]._actions for o in a.option_strings}
        for w in words:
            if w.startswith("--"):
                assert w.split("=")[0] in known, f"README: `{' '.join(words)}`: {name} has no option {w}"


def test_readme_names_every_output_ending_and_format():
    from toolkit.export.registry import FORMATS

    formats = README.split("`-o` may be repeated", 1)[1].split("Outputs never replace", 1)[0]
    for f in FORMATS:
        for suffix in f.suffixes:
            shown = suffix if suffix.startswith(".") else "*" + suffix
            assert re.search(re.escape(shown) + r"\b", formats, re.I), f"README's output list lacks {suffix}"


def test_every_option_says_what_it_does():
    for name, p in _subparsers(build_parser()):
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction) or a.dest in ("help", "rest"):
                continue
            assert a.help, f"{name} {'/'.join(a.option_strings) or a.dest}: no help text"


@pytest.mark.parametrize("option,value", [("--jobs", "0"), ("--jobs", "-3"), ("--fps", "0"), ("--seed", "-1"),
                                          ("--seed", "nan"), ("--fps", "inf")])
def test_batch_numbers_are_checked_by_the_parser(tmp_path, capsys, option, value):
    """README: every number is checked by the argument parser against its range (batch took any int/float,
    --jobs 0 quietly meant every core and -3 one)."""
    with pytest.raises(SystemExit) as e:
        main(["batch", str(tmp_path), "-o", str(tmp_path / "out"), option, value])
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"argument {option}: must be" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def _speech(path: Path) -> Path:
    from toolkit.alignment.tts import synthesize
    from toolkit.audio import write_wav

    return write_wav(path, synthesize("Bob made a map.").samples)


def test_a_read_only_output_is_kept_even_for_root(tmp_path, capsys):
    """README: a read-only file at an output path is refused; root's access check says every file is
    writable, so a file nobody may write was replaced when the toolkit ran as root (containers)."""
    wav = _speech(tmp_path / "bob.wav")
    locked = tmp_path / "locked.json"
    locked.write_text("keep")
    locked.chmod(0o444)
    assert main(["animate", str(wav), "-o", str(locked)]) == 2
    assert f"{locked}: is read-only" in capsys.readouterr().err
    assert locked.read_text() == "keep" and stat.S_IMODE(locked.stat().st_mode) == 0o444


def test_an_offset_longer_than_the_audio_names_the_option(tmp_path, capsys):
    wav = _speech(tmp_path / "bob.wav")
    assert main(["animate", str(wav), "--offset-ms", "9000", "-o", str(tmp_path / "a.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"viseme: error: {wav}: an offset of 9000 ms (--offset-ms") and "\n" not in err
    assert not (tmp_path / "a.json").exists()


def test_batch_summary_counts_each_line_once(tmp_path, capsys):
    """`N lines: done, unchanged, failed` add up to N (a failed line was counted as done as well)."""
    wav = _speech(tmp_path / "good.wav")
    (tmp_path / "lines.csv").write_text(f"id,audio,text\ngood,{wav.name},Bob made a map.\nbad,missing.wav,hi\n")
    assert main(["batch", str(tmp_path / "lines.csv"), "-o", str(tmp_path / "out"), "--jobs", "1", "-q"]) == 1
    assert "lines.csv: 2 lines: 1 done, 0 unchanged, 1 failed" in capsys.readouterr().out


def test_say_to_a_video_alone_keeps_the_sound(tmp_path):
    """`viseme say TEXT -o talk.mp4` (no .wav asked for): the video carries the speech, as every
    preview video does (it had no audio stream)."""
    import importlib.util

    if importlib.util.find_spec("pyrender") is None:  # not imported here: the renderer picks its OpenGL first
        pytest.skip("pyrender (the [render] extra) is not installed")
    import imageio_ffmpeg

    out = tmp_path / "talk.mp4"
    assert main(["say", "Hello there", "-o", str(out), "--size", "64"]) == 0
    probe = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(out)],
                           capture_output=True, text=True).stderr
    assert "Video: h264" in probe and "Audio: aac" in probe, probe
    assert sorted(p.name for p in tmp_path.iterdir()) == ["talk.mp4"]


def test_say_to_a_blend_alone_gives_blender_the_sound(tmp_path, monkeypatch):
    """The .blend writer gets a sound file for `viseme say` without a .wav (it got none: a scene
    without its sound); Blender itself is replaced by a stand-in that reads what it was given."""
    from toolkit.audio import load_audio
    from toolkit.export import blend, registry

    seen = {}

    def fake_write_blend(anim, path, *, model=None, audio=None, profile=None, **_):
        seen["audio"] = load_audio(audio) if audio else None
        Path(path).write_bytes(b"BLENDER")

    monkeypatch.setattr(blend, "write_blend", fake_write_blend)
    monkeypatch.setattr(registry, "_check_installed", lambda path, f: None)
    assert main(["say", "Hello there", "-o", str(tmp_path / "scene.blend")]) == 0
    assert seen["audio"] is not None and len(seen["audio"]) > 8000 and np.abs(seen["audio"]).max() > 0.05
    assert sorted(os.listdir(tmp_path)) == ["scene.blend"]


def test_transcript_help_and_readme_agree_on_encodings():
    """--transcript's help and README name the encodings `decode_text` reads (UTF-32 with a BOM too)."""
    from toolkit.phonemes.text import decode_text

    assert decode_text("hé".encode("utf-32"), "t.txt") == "hé"
    help_text = " ".join(build_parser()._subparsers._group_actions[0].choices["animate"].format_help().split())
    assert "UTF-16/32 with a byte order mark" in help_text and "UTF-16/32 with a byte" in README
