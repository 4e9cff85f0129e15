"""IPA transcriptions: splitting into phones, features, visemes, refusals (toolkit.phonemes.ipa)."""
import pytest

from toolkit.phonemes.g2p import words_from_ipa, words_to_phonemes
from toolkit.phonemes.ipa import SYMBOLS, parse_ipa, phone_parts, split_ipa
from toolkit.visemes.tables import visemes_for


def labels(text):
    return [w.labels for w in parse_ipa(text)]


def test_affricates_with_and_without_tie_bars_are_one_phone():
    assert labels("t͡ʃa tʃa t͜sa tsa d͡ʒa") == [["tʃ", "a"], ["tʃ", "a"], ["ts", "a"], ["ts", "a"], ["dʒ", "a"]]
    # a tie bar joins anything, also sounds no list knows as a unit (doubly articulated stops, rising diphthongs)
    assert labels("ak͡pa aŋ͡ma t͡ɬ'i") == [["a", "kp", "a"], ["a", "ŋm", "a"], ["tɬʼ", "i"]]
    assert labels("kpa") == [["k", "p", "a"]]  # without the tie bar a cluster


def test_diphthongs_with_tie_bar_without_and_with_a_non_syllabic_mark():
    assert labels("haɪ ha͡ɪ") == [["h", "aɪ"], ["h", "aɪ"]]
    assert labels("ai̯ra") == [["ai̯", "r", "a"]]
    assert labels("paˈi.a") == [["p", "a", "i", "a"]]  # a hiatus written with a syllable break stays two vowels


def test_length_marks_and_ascii_colon():
    assert labels("aːbˑ ka:") == [["aː", "bˑ"], ["k", "aː"]]


def test_diacritics_are_kept_on_their_phone():
    assert labels("t̪ã n̥ ɛ̃ kʷʰ tʲ ɑ̝ s̙") == [["t̪", "ã"], ["n̥"], ["ɛ̃"], ["kʷʰ"], ["tʲ"], ["ɑ̝"], ["s̙"]]


def test_stress_is_a_feature_not_a_phone():
    w = parse_ipa("ˈbɛl.lo ˌkaˈsa")
    assert w[0].labels == ["b", "ɛ", "l", "l", "o"]
    assert [p.stress for p in w[0].phones] == [1, 1, 1, 0, 0]
    assert [p.stress for p in w[1].phones] == [2, 2, 1, 1]


def test_tones_are_features_in_every_notation():
    letters, marks, digits = parse_ipa("ma˨˩ mǎ ma²¹")
    assert letters.labels == marks.labels == digits.labels == ["m", "a"]
    assert letters.phones[1].tone == "˨˩" and marks.phones[1].tone == "˩˥" and digits.phones[1].tone == "²¹"
    assert parse_ipa("ma55")[0].phones[1].tone == "⁵⁵"  # ASCII Chao digits


def test_syllabic_consonants():
    assert labels("bʌtn̩ m̩ba") == [["b", "ʌ", "t", "n̩"], ["m̩", "b", "a"]]
    assert phone_parts("n̩")[0].manner == "nasal"


def test_clicks_ejectives_implosives_and_prenasalized_stops():
    assert labels("ǃoǀa ǁʘǂ") == [["ǃ", "o", "ǀ", "a"], ["ǁ", "ʘ", "ǂ"]]
    assert labels("kʼa pʼ q'a") == [["kʼ", "a"], ["pʼ"], ["qʼ", "a"]]  # ASCII apostrophe after a consonant: ejective
    assert labels("ɓaɗaʄaɠaʛ") == [["ɓ", "a", "ɗ", "a", "ʄ", "a", "ɠ", "a", "ʛ"]]
    assert labels("ⁿdaᵐba") == [["ⁿd", "a", "ᵐb", "a"]]
    assert [f.manner for f in phone_parts("ᵐb")] == ["nasal", "stop"]
    assert phone_parts("ɓ")[0].voice == "voiced" and phone_parts("kʼ")[0].voice == "voiceless"
    assert [visemes_for(p)[0] for p in ("ʘ", "ǃ", "ɓ", "kʼ", "ᵐb")] == ["PP", "DD", "PP", "kk", "PP"]


def test_features_of_parts():
    assert [(f.manner, f.place) for f in phone_parts("tsʰ")] == [("stop", "alveolar"), ("fricative", "alveolar"),
                                                                  ("fricative", "glottal")]
    oi = phone_parts("ɔɪ")
    assert [(f.height, f.back, f.rounded) for f in oi] == [("openmid", "back", "rounded"), ("close", "front", "unrounded")]
    assert phone_parts("ã")[0].nasal == "nasal" and phone_parts("u̥")[0].voice == "voiceless"
    assert phone_parts("")[0].manner == "sil"


def test_every_symbol_has_features_and_a_viseme():
    for s in SYMBOLS:
        assert phone_parts(s), s
        visemes_for(s)


@pytest.mark.parametrize("text, named", [("kaX", "'X'"), ("ka7", None), ("ʰa", "'ʰ'"), ("a͡", "tie bar"),
                                          ("sh@", "'@'"), ("ta ba$", "'$'"),
                                          # a tone with no syllable before it: the word was dropped silently
                                          ("ka 123", "tone '1'"), ("˥˩ma", "tone '˥'"), ("ma ⁵⁵", "tone '⁵'")])
def test_unknown_symbols_are_refused_with_their_name(text, named):
    if named is None:  # a digit after a vowel is a Chao tone number, not an error
        assert labels(text) == [["k", "a"]]
        return
    with pytest.raises(ValueError) as e:
        parse_ipa(text)
    assert named in str(e.value)


def test_empty_or_mark_only_ipa_is_refused():
    for bad in ("", "   ", "ˈ . ˌ"):
        with pytest.raises(ValueError):
            parse_ipa(bad)


def test_lenient_split_keeps_espeak_output_as_before():
    assert split_ipa("ˈhɛloʊ wˈɜːld") == ["h", "ɛ", "l", "oʊ", "w", "ɜː", "l", "d"]
    assert split_ipa("") == []


def test_words_from_ipa_and_overrides_in_a_transcript():
    w = words_from_ipa("ˈt͡ʃao ˈbɛl.la")
    assert [x.phones for x in w] == [["tʃ", "a", "o"], ["b", "ɛ", "l", "l", "a"]] and w[0].source == "ipa"
    ws = words_to_phonemes("hello Tbilisi=tʰbilisi world")
    assert [(x.text, x.source) for x in ws] == [("hello", "cmudict"), ("Tbilisi", "ipa"), ("world", "cmudict")]
    assert ws[1].phones == ["tʰ", "b", "i", "l", "i", "s", "i"]
    with pytest.raises(ValueError, match="'X'"):
        words_to_phonemes("hello name=naX")
    for half in ("we met in Tbilisi=", "we met in =tʰbilisi"):  # was spoken as "Tbilisi equals"
        with pytest.raises(ValueError, match="word=IPA override needs"):
            words_to_phonemes(half)
    assert [x.text for x in words_to_phonemes("a = b")] == ["a", "equals", "b"]  # '=' apart is text
