"""toolkit.phonemes.text / g2p / espeak: transcript normalization and phonemes in many languages."""
from __future__ import annotations

import subprocess
import sys

import pytest

from toolkit.phonemes import espeak
from toolkit.phonemes import cmu
from toolkit.phonemes.g2p import Word, english_arpabet, ipa_for_text, words_to_phonemes
from toolkit.phonemes.inventory import split_ipa
from toolkit.phonemes.text import number_to_words, ordinal_to_words, words, year_to_words
from toolkit.visemes.tables import main_viseme, visemes_for

# -- text normalization --------------------------------------------------------------


def test_brief_example():
    assert words("Dr. Smith paid $5.50 on May 3rd, 1999!") == [
        "doctor", "smith", "paid", "five", "dollars", "fifty", "cents", "on", "may", "third",
        "nineteen", "ninety", "nine",
    ]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("I have $250.", "i have two hundred fifty dollars"),
        ("$1 and £3.01", "one dollar and three pounds one penny"),
        ("€2.5 million", "two point five million euros"),
        ("It rose 12.5% in 2021", "it rose twelve point five percent in twenty twenty one"),
        ("the 1990s and the '80s", "the nineteen nineties and the eighties"),
        ("in 1905, 1900, 2000 and 2007", "in nineteen oh five nineteen hundred two thousand and two thousand seven"),
        ("1,234,567", "one million two hundred thirty four thousand five hundred sixty seven"),
        ("3.14 and -7", "three point one four and minus seven"),
        ("Call 007 at 9:05 or 10:00", "call zero zero seven at nine oh five or ten o'clock"),
        ("21st 22nd 103rd 11th 12th", "twenty first twenty second one hundred third eleventh twelfth"),
        ("Mr. & Mrs. Jones, St. Louis, Main St.", "mister and missus jones saint louis main street"),
        ("e.g. cats, i.e. pets, etc.", "for example cats that is pets et cetera"),
        ("No. 5 is no good", "number five is no good"),
        ("Don’t say “it’s fine” — it isn't…", "don't say it's fine it isn't"),
        ("well-known rock 'n' roll", "well known rock n roll"),
        ("[laughter] montreal <cutoff-forced> forced {noise}", "montreal forced"),
        ("ﬁne ＡＢＣ １２", "fine abc twelve"),
    ],
)
def test_english_normalization(text, expected):
    assert " ".join(words(text)) == expected


def test_number_words():
    assert number_to_words(0) == "zero"
    assert number_to_words(115) == "one hundred fifteen"
    assert number_to_words(2_000_003) == "two million three"
    assert ordinal_to_words(40) == "fortieth" and ordinal_to_words(3) == "third"
    assert year_to_words(1066) == "ten sixty six" and year_to_words(2010) == "twenty ten"


def test_other_languages_keep_digits_and_letters():
    assert words("Straße 12, Köln!", "de") == ["straße", "12", "köln"]
    assert words("Où est l’hôtel ?", "fr") == ["où", "est", "l'hôtel"]
    assert words("Привет, мир!", "ru") == ["привет", "мир"]
    assert words("我能吞下玻璃。", "cmn") == ["我能吞下玻璃"]


# -- English G2P ---------------------------------------------------------------------


def test_english_words_come_from_cmudict_with_ipa_and_arpabet():
    ws = words_to_phonemes("Bob made a map of Paris.")
    assert [w.text for w in ws] == ["bob", "made", "a", "map", "of", "paris"]
    assert all(isinstance(w, Word) and w.source == "cmudict" for w in ws)
    assert ws[0].phones == ["b", "ɑ", "b"] and ws[0].arpabet == ["B", "AA", "B"]
    assert ws[3].phones == ["m", "æ", "p"]
    assert ws[5].phones == ["p", "ɛ", "ɹ", "ɪ", "s"]
    assert [main_viseme(p) for p in ws[3].phones] == ["PP", "aa", "PP"]


def test_unknown_english_words_use_the_neural_model():
    ws = words_to_phonemes("the zorblaxing kubernetes")
    assert [w.source for w in ws] == ["cmudict", "g2p", "g2p"]
    assert ws[1].arpabet[:4] == ["Z", "AO", "R", "B"] and ws[1].arpabet[-2:] == ["IH", "NG"]
    assert ws[2].phones[0] == "k"
    # possessives of known words are built from the dictionary entry
    w = words_to_phonemes("Kennedy's")[0]
    assert w.source == "cmudict" and w.arpabet[-1] == "Z"
    assert english_arpabet("cats'") [-1] in ("S", "Z")


def test_english_arpabet_for_pocketsphinx_has_no_stress_digits():
    arpa = english_arpabet("Photosynthesis")
    assert arpa and all(p.isalpha() and p.isupper() for p in arpa)
    assert english_arpabet("hello") == ["HH", "AH", "L", "OW"]


def test_g2p_needs_no_nltk_and_no_network(tmp_path):
    # a fresh interpreter with no nltk data path and no way to reach the network
    code = (
        "import socket, sys\n"
        "def _no_net(*a, **k): raise OSError('network disabled in test')\n"
        "socket.socket.connect = _no_net; socket.create_connection = _no_net\n"
        "from toolkit.phonemes.g2p import words_to_phonemes\n"
        "ws = words_to_phonemes('the qwzxbrt aligner')\n"
        "assert ws[1].source == 'g2p' and ws[1].phones, ws\n"
        "assert 'nltk' not in sys.modules and 'g2p_en' not in sys.modules, 'g2p_en/nltk imported'\n"
        "print('ok')\n"
    )
    env = {"NLTK_DATA": str(tmp_path / "no_nltk_data"), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin",
           "PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[1])}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_neural_model_matches_g2p_en_reference():
    """Our numpy GRU gives g2p-en's own predictions (reference values from G2p.predict)."""
    from toolkit.phonemes.g2p import _neural_g2p

    assert list(_neural_g2p("activationist")) == [
        "AE2", "K", "T", "IH0", "V", "EY1", "SH", "AH0", "N", "IH0", "S", "T"]
    assert list(_neural_g2p("blorf")) == ["B", "L", "AO1", "R", "F"]


def test_dictionary_search_agrees_with_the_full_index():
    """A short job finds words by searching the raw dictionary; a long one indexes it: same answers."""
    import random

    index = cmu._index()
    words = random.Random(0).sample(sorted(index), 2000) + ["the", "read", "sepulveda", "stilton", "'em", "zzzqx"]
    assert all(cmu._find(w) == index.get(w, []) for w in words)
    assert cmu.pronunciations("read") == [("R", "EH1", "D"), ("R", "IY1", "D")]


def test_lookups_are_cached_after_first_load():
    from toolkit.phonemes.g2p import _english_arpabet_stressed

    words_to_phonemes("warm up the zorblaxing cache")
    hits = _english_arpabet_stressed.cache_info().hits
    ws = words_to_phonemes("the quick brown fox jumps over the lazy dog " * 50)
    assert len(ws) == 450
    assert _english_arpabet_stressed.cache_info().hits - hits >= 440  # speed figures live in bench/


# -- espeak-ng languages --------------------------------------------------------------

SENTENCES = {
    "en": "The quick brown fox jumps over the lazy dog; she measured 3 beige chairs.",
    "de": "Zwölf Boxkämpfer jagen Viktor quer über den großen Sylter Deich. Ich möchte 21 Brötchen.",
    "fr": "Portez ce vieux whisky au juge blond qui fume. Un bon vin blanc, s'il vous plaît.",
    "es": "El veloz murciélago hindú comía feliz cardillo y kiwi. La cigüeña tocaba el saxofón.",
    "ru": "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "it": "Quel vituperabile xenofobo zelante assaggia il whisky ed esclama: alleluja!",
    "pt": "Luís argüia à Júlia que brações, fé, chá, óxido, pôr, zângão eram palavras do português.",
    "nl": "Pa's wijze lynx bezag vroom het fikse aquaduct. De schrijver gooit de ui weg.",
    "pl": "Pchnąć w tę łódź jeża lub ośm skrzyń fig. Źdźbło trawy.",
    "ja": "いろはにほへと ちりぬるを わかよたれそ つねならむ。",
    "cmn": "我能吞下玻璃而不伤身体。你好世界。",
    "hi": "ऋषियों को सताने वाले दुष्ट राक्षसों के राजा रावण का सर्वनाश करने वाले विष्णु।",
    "ar": "صِف خَلقَ خَودِ كَمِثلِ الشَمسِ إِذ بَزَغَت يَحظى الضَجيعُ بِها نَجلاءَ مِعطارِ",
    "sw": "Habari ya asubuhi, jina langu ni Juma na ninapenda kusoma vitabu vingi.",
    "fi": "Törkylempijävongahdus. Hyvää päivää, mitä kuuluu?",
    "tr": "Pijamalı hasta yağız şoföre çabucak güvendi. Öğrenciler çalışıyor.",
    "da": "Høj bly gom vandt fræk sexquiz på wc.",
    "ko": "키스의 고유조건은 입술끼리 만나야 하고 특별한 기술은 필요치 않다.",
    "vi": "Tiếng Việt có dấu thanh điệu rõ ràng, xin chào các bạn.",
}


@pytest.mark.parametrize("lang", sorted(SENTENCES))
def test_every_phone_maps_to_a_viseme(lang):
    ws = words_to_phonemes(SENTENCES[lang], lang)
    phones = [p for w in ws for p in w.phones]
    assert len(phones) >= 15, phones
    for p in phones:
        visemes_for(p)  # KeyError names the phone
    # a real phonemization: varied mouth shapes, vowels and consonants both present
    vis = [main_viseme(p) for p in phones]
    assert len(set(vis)) >= 6, vis
    assert sum(v in ("aa", "E", "ih", "oh", "ou") for v in vis) > 0.25 * len(vis)


def test_all_espeak_voices_give_mappable_phones():
    """Numbers make each voice use its own phoneme set; every symbol must map."""
    text = "0 1 2 3 4 5 6 7 8 9 10 11 12 13 17 20 21 30 45 99 100 1000"
    bad = {}
    for code in espeak.voices():
        for w in words_to_phonemes(text, code):
            for p in w.phones:
                try:
                    visemes_for(p)
                except KeyError:
                    bad.setdefault(p, []).append(code)
    assert not bad, bad


def test_language_names_and_codes():
    assert espeak.espeak_voice("zh") == espeak.espeak_voice("cmn") == "cmn-latn-pinyin"
    assert espeak.espeak_voice("pt_BR") == "pt-br"
    assert espeak.espeak_voice("German") == "de"
    assert espeak.espeak_voice("fr") == "fr" and espeak.voices()["fr"] == "roa/fr"
    with pytest.raises(ValueError, match=r"'klingon'.*espeak-ng --voices"):
        words_to_phonemes("nuqneH", "klingon")
    with pytest.raises(ValueError, match="espeak-ng --voices"):
        ipa_for_text("x", "xx-yy")


def test_chinese_is_read_as_mandarin_not_english_pinyin():
    phones = ipa_for_text("你好", "zh")
    # the plain cmn voice spells the tone digit as English "three" (θ ɹ i)
    assert "θ" not in phones and phones[0] == "n"
    assert phones == split_ipa("nˈi χˈɑu")


def test_japanese_is_cut_into_words_and_kanji_read_in_context():
    # espeak-ng's Japanese voice reads kana only ("Chinese letter" for a kanji), and Japanese has no spaces
    text = "3時に東京へ行きましょう。"
    ws = words_to_phonemes(text, "ja")
    assert [w.text for w in ws] == ["3", "時", "に", "東京", "へ", "行き", "ましょう"] == words(text, "ja")
    said = {w.text: w.phones for w in ws}
    assert said["東京"] == split_ipa(espeak.text_to_ipa("トーキョー", "ja"))
    assert said["時"] == split_ipa(espeak.text_to_ipa("ジ", "ja"))  # after a number; alone it is トキ
    assert said["ましょう"] == split_ipa(espeak.text_to_ipa("マショー", "ja"))  # the volitional う: a long vowel
    assert said["へ"] == split_ipa(espeak.text_to_ipa("エ", "ja"))  # the particle へ is said え
    assert words("東京 tokyo", "en") == ["東京", "tokyo"]  # other languages: cut at spaces as before


def test_japanese_without_janome_is_one_line_naming_the_extra(monkeypatch):
    from toolkit.phonemes import japanese

    japanese._tokenizer.cache_clear()
    monkeypatch.setitem(sys.modules, "janome.tokenizer", None)  # what an install without the extra has
    try:
        with pytest.raises(ValueError, match=r"^Japanese text needs the janome package.*viseme-toolkit\[ja\]'$"):
            words_to_phonemes("東京", "ja")
        assert [w.text for w in words_to_phonemes("tokyo", "ja")] == ["tokyo"]  # romaji needs no dictionary
    finally:
        japanese._tokenizer.cache_clear()


@pytest.mark.parametrize("text, lang, word, reader", [
    ("we met in 東京 today", "en", "東京", "cmn"), ("wir fahren nach Москва", "de", "москва", "ru"),
    ("hello ありがとう", "en", "ありがとう", "ja"), ("今日はgameをします", "ja", "game", "en"),
    ("Ελλάδα and שלום", "en", "שלום", "he"), ("Ελλάδα and שלום", "en", "ελλάδα", "el")])
def test_a_word_in_another_script_is_read_in_a_language_written_in_it(text, lang, word, reader):
    # espeak-ng reads it as letter names ("Chinese letter", "kyrillisch em"), or spells a Latin word out
    ws = {w.text: w for w in words_to_phonemes(text, lang)}
    assert ws[word].phones == [p for w in words_to_phonemes(word, reader) for p in w.phones]
    assert ws[word].phones != split_ipa(espeak.text_to_ipa(word, espeak.espeak_voice(lang))), "read as before"
    assert lang != "en" or ws[word].arpabet  # an English line goes to PocketSphinx: English phone names too
    assert [w.text for w in words_to_phonemes("Köln und Berlin", "de")] == ["köln", "und", "berlin"]


def test_non_english_numbers_are_read_by_espeak():
    de = words_to_phonemes("21", "de")
    assert len(de) == 1 and de[0].source == "espeak"
    assert de[0].phones[:2] == ["aɪ", "n"]  # "einundzwanzig"
    fr = ipa_for_text("2", "fr")
    assert fr == ["d", "ø"]


def test_real_transcripts_phonemize_and_map():
    """Every transcript of the real test speech (en, sv, ru ...) gives phones for every word."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "speech" / "transcribed"
    tables = sorted(root.glob("*/transcripts.tsv"))
    if not tables:
        pytest.skip(f"real transcripts not present: {root}")
    n_words = 0
    for tsv in tables:
        rows = tsv.read_text(encoding="utf-8").splitlines()
        head = rows[0].split("\t")
        for row in rows[1:]:
            cells = dict(zip(head, row.split("\t")))
            lang, text = cells.get("lang", "").rstrip("?"), cells.get("transcript", "")
            if not text or not lang:
                continue
            ws = words_to_phonemes(text, lang)
            assert len(ws) == len(words(text, lang)), (tsv.name, text)
            for w in ws:
                assert w.phones, (tsv.name, w)
                for p in w.phones:
                    visemes_for(p)
            n_words += len(ws)
    assert n_words > 500
