"""Training speech in many languages with exact phone times: espeak-ng and festival's non-English voices.

Nothing here is downloaded: the text is made up (pseudo-words written in each
language's own script, so that its spelling rules give its own sounds), the
speech is synthesized on this machine and every phone comes with the time
the synthesizer spoke it.

* **espeak-ng** (`synth_espeak`): ~60 languages in their own scripts (Latin
  with each language's extra letters, Cyrillic, Greek, Georgian, Armenian,
  Indic abugidas, Arabic script, Ethiopic, kana, Hangul, pinyin), random
  voice variants, speaking rates (80-300 words/min) and pitch; a third of the
  utterances are one or two words on their own.  `ESPEAK_HELD_OUT` languages are
  never used for training: they are the sentence-level test (and cover the
  multilingual yardstick's languages that espeak-ng speaks).
* **festival** (`synth_festival_langs`): voices made from recordings of real
  speakers (diphone, unit-selection and HTS voices) in Italian, Catalan,
  Finnish, Russian, Hindi, Marathi, Telugu and Czech, each with its phone set
  mapped to IPA (`FESTIVAL_LANG_VOICES`).  The Czech voices and one Finnish
  voice are held out (`FESTIVAL_HELD_OUT`).

Debian packages (`make train` installs them): ``festival festvox-italp16k
festvox-itapc16k festvox-ca-ona-hts festvox-suopuhe-lj festvox-suopuhe-mv
festvox-ru festvox-hi-nsk festvox-mr-nsk festvox-te-nsk festvox-czech-dita
festvox-czech-krb festvox-czech-machac festvox-czech-ph``.

Example
-------
>>> import random
>>> pseudo_text("ru", random.Random(0))[:1].isalpha()
True
>>> clips = list(synth_espeak(2, seed=0, langs=["de"], progress=False))  # doctest: +SKIP
"""
from __future__ import annotations

import random
import re
import subprocess
import tempfile
import unicodedata
from pathlib import Path

import numpy as np

from toolkit.animation import Segment

SAMPLE_RATE = 16000

# -- text in each language's own script ------------------------------------------------------------

_LATIN_C = "b c d f g h j k l m n p r s t v w z ch sh st tr br pl gr kl nd mp nt rt".split()
_LATIN_V = "a e i o u a e i o u ai au ei ie ou".split()
# Letters beyond the basic Latin alphabet that carry a language's own sounds.
_LATIN_EXTRA = {
    "af": "g ê ô aa ie oe ui", "an": "ñ ch x", "az": "ç ş ğ ı ö ü ə x q", "ca": "ç l·l ny ix tx à è ò ó",
    "cy": "ll dd ch rh w y f", "da": "æ ø å d g", "de": "ä ö ü ß sch ch pf z eu", "eo": "ĉ ĝ ĥ ĵ ŝ ŭ",
    "es": "ñ ll rr j ch z", "et": "õ ä ö ü š ž", "fi": "ä ö y aa ee", "fr-fr": "é è ç ou an on in eu oi u j",
    "ga": "bh mh ch dh á é í ó ú", "gd": "bh mh ch dh à è ì ò ù", "hr": "č ć đ š ž lj nj", "ht": "è ò ch ou an",
    "hu": "gy ny sz zs cs ly ő ű ö ü á é", "id": "ng ny c j", "is": "þ ð æ ö á é í ó ú ý hv", "it": "gn gli zz cc ch",
    "lt": "č š ž ė ų ū į", "lv": "č š ž ā ē ī ū ķ ļ ņ", "ms": "ng ny c j kh sy", "mt": "ċ ġ ħ ż għ ie",
    "nb": "æ ø å kj skj", "om": "dh ch x q ph c' ny", "pl": "ł ś ż ź ć ń cz sz rz dz ą ę y", "pt": "ão õe lh nh ç ê ô",
    "pt-br": "ão lh nh ç ê ô", "ro": "ă â î ș ț", "sk": "ä ô č ď ľ ň š ť ž dz", "sl": "č š ž", "sq": "ë ç dh gj ll nj rr sh th xh zh",
    "sr": "č ć đ š ž lj nj dž", "sv": "å ä ö sj tj", "sw": "ng' ny mb nd ch dh gh", "tr": "ş ç ğ ı ö ü",
    "uz": "oʻ gʻ sh ch ng q x", "mi": "wh ng", "qu": "ch' k' p' q' t' ll ñ", "quc": "ch' k' q' t' tz' b' x",
    "tn": "tlh tsh kg ng", "en-us": "th sh wh", "en-gb": "th sh", "la": "ae qu x", "gn": "ñ ĝ ã ẽ ĩ õ ũ ỹ",
    "kl": "q ng ll rr", "lb": "ä é ë ch", "ia": "ch qu", "nl": "ij ui oe eu sch g",
}
_ALPHABETS = {  # script: (consonants, vowels) as space-separated graphemes
    "cyrillic": ("б в г д ж з й к л м н п р с т ф х ц ч ш щ", "а е и о у ы э ю я ё ь"),
    "greek": ("β γ δ ζ θ κ λ μ ν ξ π ρ σ τ φ χ ψ μπ ντ γκ", "α ε η ι ο υ ω ά έ ή ί ό ύ ώ ου αι ει"),
    "georgian": ("ბ გ დ ვ ზ თ კ ლ მ ნ პ ჟ რ ს ტ ფ ქ ღ ყ შ ჩ ც ძ წ ჭ ხ ჯ ჰ", "ა ე ი ო უ"),
    "armenian": ("բ գ դ զ թ ժ լ խ ծ կ հ ձ ղ ճ մ յ ն շ չ պ ջ ռ ս վ տ ր ց փ ք ֆ", "ա ե է ը ի ո օ ու"),
    "arabic": ("ب پ ت ج چ ح خ د ر ز ژ س ش ع غ ف ق ک گ ل م ن ه", "ا و ی"),
    "hebrew": ("ב ג ד ה ז ח ט כ ל מ נ ס פ צ ק ר ש ת", "ו י"),
}
_CYRILLIC_EXTRA = {"uk": "і ї є ґ", "bg": "ъ", "mk": "ѓ ќ ѕ џ љ њ", "kk": "ә ғ қ ң ө ұ ү һ і", "ky": "ң ө ү",
                   "tt": "ә җ ң ө ү һ", "ba": "ә ғ ҙ ҡ ң ө ҫ ү һ", "cv": "ӑ ӗ ҫ ӳ"}
_INDIC_BLOCK = {"hi": 0x900, "mr": 0x900, "ne": 0x900, "bn": 0x980, "pa": 0xA00, "gu": 0xA80, "or": 0xB00,
                "ta": 0xB80, "te": 0xC00, "kn": 0xC80, "ml": 0xD00}
_SCRIPT_OF = {**{k: "cyrillic" for k in ("ru", "uk", "bg", "mk", "kk", "ky", "tt", "ba", "cv")},
              "el": "greek", "ka": "georgian", "hy": "armenian", "hyw": "armenian", "fa": "arabic", "ur": "arabic",
              "ar": "arabic", "he": "hebrew"}


def _indic_letters(base: int) -> tuple[list[str], list[str]]:
    """Consonants (ka..ha) and dependent vowel signs of an Indic block (the ISCII layout all of them share)."""
    cons = [chr(c) for c in range(base + 0x15, base + 0x3A) if unicodedata.category(chr(c)) == "Lo"]
    signs = [chr(c) for c in range(base + 0x3E, base + 0x4D) if "VOWEL SIGN" in unicodedata.name(chr(c), "")]
    return cons, signs


_PINYIN_I = "b p m f d t n l g k h j q x zh ch sh r z c s y w".split() + [""]
_PINYIN_F = "a o e i u ai ei ao ou an en ang eng ong ia ie iao iu ian in iang ing ua uo uai ui uan un uang".split()


def _syllable(rng: random.Random, lang: str, extra: list[str]) -> str:
    if lang in _INDIC_BLOCK:
        cons, signs = _indic_letters(_INDIC_BLOCK[lang])
        return rng.choice(cons) + (rng.choice(signs) if rng.random() < 0.7 else "")
    if lang == "ja":  # hiragana ka..n, no small letters
        kana = [chr(c) for c in range(0x3042, 0x3094) if "SMALL" not in unicodedata.name(chr(c), "SMALL")]
        return rng.choice(kana)
    if lang == "ko":  # a composed Hangul syllable: initial, medial, optional final
        return chr(0xAC00 + (rng.randrange(19) * 21 + rng.randrange(21)) * 28 + (rng.randrange(28) if rng.random() < 0.4 else 0))
    if lang == "am":  # Ethiopic syllables
        return chr(rng.randrange(0x1200, 0x1358))
    if lang.startswith("cmn"):
        return rng.choice(_PINYIN_I) + rng.choice(_PINYIN_F) + str(rng.randint(1, 4))
    if lang in _SCRIPT_OF:
        c, v = _ALPHABETS[_SCRIPT_OF[lang]]
        c = c.split() + _CYRILLIC_EXTRA.get(lang, "").split()
        return (rng.choice(c) if rng.random() < 0.85 else "") + rng.choice(v.split()) + \
            (rng.choice(c) if rng.random() < 0.3 else "")
    pick = lambda base: rng.choice(extra) if extra and rng.random() < 0.3 else rng.choice(base)  # noqa: E731
    return (pick(_LATIN_C) if rng.random() < 0.85 else "") + rng.choice(_LATIN_V) + \
        (pick(_LATIN_C) if rng.random() < 0.3 else "")


def pseudo_text(lang: str, rng: random.Random, n_words: tuple[int, int] = (3, 12), extra: str | None = None) -> str:
    """A random 'sentence' of pseudo-words in the language's script, with a pause or two.

    ``extra``: the letters beyond basic Latin to mix in (default: the language's own, `_LATIN_EXTRA`).
    """
    letters = (_LATIN_EXTRA.get(lang, "") if extra is None else extra).split()
    n = rng.randint(*n_words)
    words = ["".join(_syllable(rng, lang, letters) for _ in range(rng.randint(1, 4))) for _ in range(n)]
    if n > 5 and rng.random() < 0.5:
        k = rng.randint(1, n - 2)
        words[k] += "、" if lang == "ja" else rng.choice([",", ".", ";"])
    return ("" if lang == "ja" else " ").join(words) + ("。" if lang == "ja" else ".")


def _n_words(rng: random.Random) -> tuple[int, int]:
    """How many words an utterance has: a third are one or two words said on their own (careful, slow
    speech between pauses, as in a game's barks or a dictionary's recordings), the rest 3-12."""
    return (1, 2) if rng.random() < 0.35 else (3, 12)


# -- espeak-ng ---------------------------------------------------------------------------------------

ESPEAK_TRAIN_LANGS = [
    "en-us", "en-gb", "af", "an", "az", "ca", "cy", "da", "de", "eo", "es", "et", "fi", "fr-fr", "ga", "gd", "hr",
    "ht", "hu", "id", "is", "it", "lt", "lv", "ms", "mt", "nb", "om", "pl", "pt", "pt-br", "ro", "sk", "sl", "sq", "sr",
    "sv", "sw", "tr", "uz", "mi", "qu", "quc", "tn", "gn", "kl", "lb",
    "ru", "uk", "bg", "mk", "kk", "ky", "tt", "el", "hy", "fa", "ur", "hi", "mr", "ne", "pa", "gu", "or", "te", "kn",
    "ml", "ja", "ko", "am", "cmn-latn-pinyin",
]
# Never trained on: the sentence-level test, and the languages of the multilingual yardstick espeak-ng speaks
# (Czech, Basque, Hawaiian, Bengali, Arabic), so that its figures are for languages the model never heard.
ESPEAK_HELD_OUT = ["cs", "eu", "haw", "bn", "ar", "ka", "ta", "vi", "nl"]
assert not set(ESPEAK_TRAIN_LANGS) & set(ESPEAK_HELD_OUT)


def synth_espeak(n_utts: int, seed: int, langs: list[str] | None = None, variants: list | None = None,
                 progress: bool = True, pad_s: float = 0.4):
    """Yield (samples, IPA phones, group) of espeak-ng speech: random language, variant, rate and pitch.

    A random stretch of silence (0..``pad_s``) is added before and after, as in recordings.
    """
    from toolkit.alignment.tts import synthesize
    from toolkit.train.audio2face import TRAIN_VARIANTS

    rng = random.Random(seed)
    langs = langs or ESPEAK_TRAIN_LANGS
    variants = variants or TRAIN_VARIANTS
    it = range(n_utts)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="espeak-ng", unit="utt", leave=False)
    for _ in it:
        lang, variant = rng.choice(langs), rng.choice(variants)
        text = pseudo_text(lang, rng, _n_words(rng))
        try:
            sp = synthesize(text, lang=lang, rate_wpm=rng.randint(80, 300), pitch=rng.randint(15, 85), variant=variant)
        except Exception:  # noqa: BLE001 - a voice the local espeak-ng lacks: skip it
            continue
        if sp.samples.size < SAMPLE_RATE // 4 or not any(p.label for p in sp.phonemes):
            continue
        yield _pad(sp.samples, sp.phonemes, rng, pad_s) + (f"espeak:{lang}:{variant}",)


def _pad(x: np.ndarray, phones: list[Segment], rng: random.Random, pad_s: float):
    pre, post = rng.uniform(0.0, pad_s), rng.uniform(0.0, pad_s)
    x = np.concatenate([np.zeros(int(pre * SAMPLE_RATE), np.float32), np.asarray(x, np.float32),
                        np.zeros(int(post * SAMPLE_RATE), np.float32)])
    phones = [Segment(s.label, s.start + pre, s.end + pre) for s in phones]
    return x, phones


# -- festival's non-English voices -------------------------------------------------------------------

_VOWEL_MARK = re.compile(r"(?<=[a-zA-Z@&7:])1$")  # stressed-vowel suffix of the Italian and Catalan sets

_IT = {"E": "ɛ", "O": "ɔ", "S": "ʃ", "Z": "ʒ", "tS": "tʃ", "dZ": "dʒ", "J": "ɲ", "ng": "ŋ", "nf": "ɱ", "L": "ʎ", "r": "r"}
_CA = {"ax": "ə", "E": "ɛ", "O": "ɔ", "J": "ɲ", "L": "ʎ", "r": "ɾ", "rr": "r", "S": "ʃ", "Z": "ʒ", "g": "ɡ"}
_FI = {"a": "ɑ", "@": "æ", "7": "ø", "&": "ə", "T": "θ", "D": "ð", "S": "ʃ", "Z": "ʒ", "N": "ŋ", "L": "l", "r": "r",
       "g": "ɡ"}
_RU = {"ii": "i", "yy": "ɨ", "uu": "u", "ee": "e", "oo": "o", "aa": "a", "a": "ɐ", "e": "ɪ", "i": "ɪ", "y": "ɨ",
       "u": "ʊ", "ae": "ɪ", "ay": "ə", "ur": "ʊ", "c": "ts", "ch": "tɕ", "sh": "ʂ", "sch": "ɕː", "zh": "ʐ", "h": "x",
       "hh": "xʲ", "r": "r", "rr": "rʲ", "g": "ɡ", "gg": "ɡʲ",
       **{c + c: c + "ʲ" for c in "pbtdkfvszmnl"}}
_NSK = {"a": "ə", "aa": "aː", "ih": "ɪ", "iy": "iː", "uh": "ʊ", "uw": "uː", "eh": "e", "ee": "eː", "ay": "ɛː",
        "oh": "o", "oo": "oː", "aw": "ɔː", "ch": "tʃ", "T": "ʈ", "D": "ɖ", "N": "ɳ", "th": "t̪", "dh": "d̪", "y": "j",
        "r": "ɾ", "v": "ʋ", "L": "ɭ", "R": "ɽ", "sh": "ʃ", "j": "dʒ", "h": "ɦ", "ksh": "kʃ", "sri": "ʃɾ", "kh": "kʰ",
        "gh": "ɡʱ", "td": "ʈʰ", "tth": "t̪ʰ", "ddh": "d̪ʱ", "bh": "bʱ", "zh": "ʒ", "@": "ə", "g": "ɡ", "x": ""}
_CS = {"a:": "aː", "c": "ts", "c~": "tʃ", "ch": "x", "d~": "ɟ", "dz~": "dʒ", "e": "ɛ", "e:": "ɛː", "h": "ɦ",
       "i": "ɪ", "n*": "ŋ", "n~": "ɲ", "r~": "r̝", "r~*": "r̝̊", "s~": "ʃ", "t~": "c", "z~": "ʒ", "g": "ɡ"}

# voice -> (language, phone map, text encoding festival reads)
FESTIVAL_LANG_VOICES: dict[str, tuple[str, dict[str, str], str]] = {
    "lp_diphone": ("it", _IT, "latin-1"), "pc_diphone": ("it", _IT, "latin-1"),
    "upc_ca_ona_hts": ("ca", _CA, "latin-1"),
    "suo_fi_lj_diphone": ("fi", _FI, "latin-1"), "hy_fi_mv_diphone": ("fi", _FI, "latin-1"),
    "msu_ru_nsh_clunits": ("ru", _RU, "utf-8"),
    "hindi_NSK_diphone": ("hi", _NSK, "utf-8"), "marathi_NSK_diphone": ("mr", _NSK, "utf-8"),
    "telugu_NSK_diphone": ("te", _NSK, "utf-8"),
    "czech_dita": ("cs", _CS, "iso-8859-2"), "czech_krb": ("cs", _CS, "iso-8859-2"),
    "czech_machac": ("cs", _CS, "iso-8859-2"), "czech_ph": ("cs", _CS, "iso-8859-2"),
}
FESTIVAL_HELD_OUT = ["czech_dita", "czech_krb", "czech_machac", "czech_ph", "hy_fi_mv_diphone"]
_LETTERS = {"it": "è é ò à ù ì gn gli", "ca": "ç l·l ny ix tx à è ò", "fi": "ä ö y", "cs": "ř š č ž ě ů á í é ý ď ť ň ch"}


def festival_phone_to_ipa(name: str, table: dict[str, str]) -> str:
    """A festival phone name -> IPA ("" for pauses and anything unknown)."""
    if name in ("pau", "#", "##", "_", "h#", "brth"):
        return ""
    name = _VOWEL_MARK.sub("", name)
    if name in table:
        return table[name]
    if name.endswith(":") and name[:-1] in table:
        return table[name[:-1]] + "ː"
    if name.endswith(":"):
        return name[:-1] + "ː"
    return name


def festival_lang_voices(held_out: bool = False) -> list[str]:
    """The voices of FESTIVAL_LANG_VOICES installed here (training ones, or the held-out ones)."""
    from toolkit.train.voices import installed_festival_voices

    have = installed_festival_voices()
    return [v for v in FESTIVAL_LANG_VOICES if v in have and (v in FESTIVAL_HELD_OUT) == held_out]


def _phones_by_word(phones: list[Segment], word_ends: list[tuple[float, str]]) -> list[tuple[str, list[str]]]:
    """(word, IPA phones) pairs: each sounding phone goes to the first word that ends at or after it."""
    out = [(w, []) for _, w in word_ends]
    for p in phones:
        k = next((i for i, (end, _) in enumerate(word_ends) if end >= p.end - 1e-4), None)
        if p.label and k is not None:
            out[k][1].append(p.label)
    return [w for w in out if w[1]]


def synth_festival_langs(n_utts: int, seed: int, voices: list[str] | None = None, progress: bool = True,
                         batch: int = 30, pad_s: float = 0.3, with_words: bool = False):
    """Yield (samples, IPA phones, group) from festival's non-English voices, with their exact phone times.

    ``with_words``: yield (samples, IPA phones, group, transcript), the transcript as festival
    tokenized it: (word, its IPA phones) pairs.
    """
    from toolkit.audio import load_audio
    from toolkit.train.voices import read_segs, segments_from_ends

    voices = voices if voices is not None else festival_lang_voices()
    if not voices or n_utts <= 0:
        return
    rng = random.Random(seed)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_utts, desc="festival (languages)", unit="utt", leave=False)
    with tempfile.TemporaryDirectory(prefix="viseme-festival-langs-") as tmp:
        done = 0
        while done < n_utts:
            voice = rng.choice(voices)
            lang, table, enc = FESTIVAL_LANG_VOICES[voice]
            jobs, lines = [], [f"(voice_{voice})"]
            for k in range(done, min(n_utts, done + batch)):
                text = pseudo_text(lang, rng, _n_words(rng), extra=_LETTERS.get(lang, ""))
                wav, segs, wrds = Path(tmp) / f"{k}.wav", Path(tmp) / f"{k}.segs", Path(tmp) / f"{k}.words"
                lines += [f"(Parameter.set 'Duration_Stretch {rng.uniform(0.8, 1.6):.2f})",
                          f'(set! utt (Utterance Text "{text}"))', "(utt.synth utt)",
                          f'(utt.save.wave utt "{wav}" \'riff)', f'(utt.save.segs utt "{segs}")',
                          f'(utt.save.words utt "{wrds}")']
                jobs.append((wav, segs, wrds))
            script = Path(tmp) / "batch.scm"
            script.write_bytes(("\n".join(lines) + "\n").encode(enc, "replace"))
            try:
                subprocess.run(["festival", "-b", str(script)], capture_output=True, timeout=900)
            except subprocess.TimeoutExpired:
                pass
            done += len(jobs)
            for wav, segs, wrds in jobs:
                if bar is not None:
                    bar.update(1)
                if not (wav.exists() and segs.exists()):
                    continue  # festival could not say it (a voice may crash on some input): skip
                x = load_audio(wav)
                phones = segments_from_ends(read_segs(segs, "latin-1"), lambda name: festival_phone_to_ipa(name, table))
                wav.unlink()
                if x.size < SAMPLE_RATE // 4 or not any(p.label for p in phones):
                    continue
                words = _phones_by_word(phones, read_segs(wrds, "latin-1") if wrds.exists() else [])
                x, phones = _pad(x, phones, rng, pad_s)
                yield (x, phones, f"festival:{voice}") + ((words,) if with_words else ())
    if bar is not None:
        bar.close()
