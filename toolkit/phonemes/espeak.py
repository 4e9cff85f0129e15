"""The one binding to libespeak-ng (ctypes): IPA for text, voices, and the raw synthesizer.

espeak-ng keeps global state (current voice, rate, callback), so every call
goes through `LOCK` and sets its voice first.  The library is initialised
once per process in synchronous mode with IPA phoneme events, which serves
both text -> IPA (`text_to_ipa`, used by `toolkit.phonemes.g2p`) and
synthesis with exact phoneme times (`toolkit.alignment.tts`).

Example
-------
>>> text_to_ipa("hello world", "en-us")
'həlˈoʊ wˈɜːld'
>>> espeak_voice("zh")
'cmn-latn-pinyin'
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import re
import threading

LOCK = threading.RLock()

# speak_lib.h constants
AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_PHONEME_EVENTS = 0x0001
INITIALIZE_PHONEME_IPA = 0x0002
INITIALIZE_DONT_EXIT = 0x8000
CHARS_UTF8 = 1
POS_CHARACTER = 1
EVENT_LIST_TERMINATED, EVENT_WORD, EVENT_SENTENCE, EVENT_MARK, EVENT_PLAY = 0, 1, 2, 3, 4
EVENT_END, EVENT_MSG_TERMINATED, EVENT_PHONEME, EVENT_SAMPLERATE = 5, 6, 7, 8
PARAM_RATE, PARAM_VOLUME, PARAM_PITCH, PARAM_RANGE, PARAM_WORDGAP = 1, 2, 3, 4, 7
EE_OK = 0


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class Event(ctypes.Structure):
    """espeak_EVENT; audio_position is in ms from the start of the espeak_Synth call."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based character index into the text
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


class _Voice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),  # not c_char_p: the list holds NUL bytes
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(Event))

_LIB_NAMES = ("espeak-ng", "libespeak-ng.so.1", "libespeak-ng.so", "libespeak-ng.1.dylib")


@functools.lru_cache(maxsize=None)
def library() -> tuple[ctypes.CDLL, int]:
    """The initialised libespeak-ng and its output sample rate (22050 Hz)."""
    path = os.environ.get("ESPEAK_NG_LIBRARY") or ctypes.util.find_library("espeak-ng")
    candidates = [path] if path else list(_LIB_NAMES)
    lib, errors = None, []
    for name in candidates:
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError as e:
            errors.append(str(e))
    if lib is None:
        raise RuntimeError(
            "libespeak-ng not found (install the Debian packages espeak-ng libespeak-ng1, "
            f"or set ESPEAK_NG_LIBRARY): {'; '.join(errors)}"
        )
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
    lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetVoiceByProperties.argtypes = [ctypes.POINTER(_Voice)]
    lib.espeak_SetVoiceByProperties.restype = ctypes.c_int
    lib.espeak_ListVoices.argtypes = [ctypes.POINTER(_Voice)]
    lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [SYNTH_CALLBACK]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                 ctypes.c_uint, ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p]
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_Info.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
    lib.espeak_Info.restype = ctypes.c_char_p
    lib.espeak_Synchronize.argtypes = []
    lib.espeak_Synchronize.restype = ctypes.c_int
    data = os.environ.get("ESPEAK_DATA_PATH")
    # 1000 ms buffers: room for 220 events per callback (espeak-ng allows 200 per second + 20)
    with LOCK:
        sr = lib.espeak_Initialize(
            AUDIO_OUTPUT_SYNCHRONOUS, 1000, data.encode() if data else None,
            INITIALIZE_PHONEME_EVENTS | INITIALIZE_PHONEME_IPA | INITIALIZE_DONT_EXIT,
        )
    if sr <= 0:
        raise RuntimeError(f"libespeak-ng failed to initialise (its data folder? ESPEAK_DATA_PATH={data})")
    return lib, int(sr)


@functools.lru_cache(maxsize=None)
def voices() -> dict[str, str]:
    """Language code -> voice file, for every voice espeak-ng ships (``{"en-us": "gmw/en-US", ...}``).

    Where several voices list a language, the one espeak-ng ranks first (lowest priority number) wins.
    """
    lib, _ = library()
    best: dict[str, tuple[int, int, str]] = {}
    with LOCK:
        arr = lib.espeak_ListVoices(None)
        i = 0
        while arr[i]:
            v = arr[i].contents
            ident = v.identifier.decode("utf-8", "replace")
            # languages: repeated (priority byte, zero-terminated code), ended by a zero priority byte
            pos, k = v.languages, 0
            while pos and ctypes.string_at(pos, 1) != b"\0":
                prio = ctypes.string_at(pos, 1)[0]
                code = ctypes.string_at(pos + 1).decode("utf-8", "replace").lower()
                rank = (k > 0, prio, i)  # a voice's own first language beats any alias
                if code not in best or rank < best[code][:3]:
                    best[code] = (*rank, ident)
                pos += 2 + len(code.encode())
                k += 1
            i += 1
    return {code: r[-1] for code, r in sorted(best.items())}


def data_path() -> str:
    """espeak-ng's data folder (voices, dictionaries)."""
    lib, _ = library()
    path = ctypes.c_char_p()
    with LOCK:
        lib.espeak_Info(ctypes.byref(path))
    return path.value.decode() if path.value else ""


# Common names and ISO codes that are not espeak-ng voice codes.
_ALIASES = {
    "en": "en-us", "english": "en-us", "en_us": "en-us", "en-gb": "en-gb", "uk": "uk",
    # the plain cmn voice reads the pinyin of Chinese characters with English rules; the pinyin voice does not
    "zh": "cmn-latn-pinyin", "cmn": "cmn-latn-pinyin", "zh-cn": "cmn-latn-pinyin", "zh-hans": "cmn-latn-pinyin",
    "mandarin": "cmn-latn-pinyin", "chinese": "cmn-latn-pinyin", "zh-tw": "cmn-latn-pinyin",
    "zh-hk": "yue", "cantonese": "yue", "jp": "ja", "japanese": "ja", "german": "de", "french": "fr",
    "spanish": "es", "italian": "it", "portuguese": "pt", "pt-pt": "pt", "brazilian": "pt-br",
    "russian": "ru", "dutch": "nl", "polish": "pl", "hindi": "hi", "arabic": "ar", "swahili": "sw",
    "finnish": "fi", "turkish": "tr", "swedish": "sv", "korean": "ko", "greek": "el", "czech": "cs",
    "es-es": "es", "fa": "fa", "persian": "fa", "farsi": "fa", "nb": "nb", "no": "nb", "norwegian": "nb",
    "he": "he", "iw": "he", "in": "id", "fil": "tl",
}


def espeak_voice(lang: str) -> str:
    """espeak-ng voice code for a language name or code; ValueError for an unknown one.

    >>> espeak_voice("de_DE"), espeak_voice("English"), espeak_voice("zh")
    ('de', 'en-us', 'cmn-latn-pinyin')
    """
    if not isinstance(lang, str) or not lang.strip():
        raise ValueError(f"language must be a code like 'en' or 'de', got {lang!r}")
    key = lang.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    table = voices()
    if key in table:
        return key
    base = key.split("-")[0]
    base = _ALIASES.get(base, base)
    if base in table:
        return base
    raise ValueError(
        f"unknown language {lang!r}: espeak-ng has no voice for it "
        f"(run `espeak-ng --voices` to list the {len(table)} available codes, e.g. en, de, fr, es, cmn, ja)"
    )


_current_voice: list[str | None] = [None]


def _drain(*_args) -> int:
    return 0


_NO_AUDIO = SYNTH_CALLBACK(_drain)


def set_voice(code: str, variant: str | None = None) -> None:
    """Select the voice of a language code (``"en-us"``), optionally with a variant (``"f3"``); caller holds LOCK.

    Each voice change queues a command for the synthesizer that only a synthesis
    consumes; queued up (many g2p calls between two syntheses) they overflow its
    event list and a synthesis loses its first phoneme events.  So a change is
    made only when needed and its command consumed at once by an empty synthesis.
    """
    lib, _ = library()
    name = voices().get(code, code) + (f"+{variant}" if variant else "")
    if _current_voice[0] == name:
        return
    if lib.espeak_SetVoiceByName(name.encode()) != EE_OK:
        raise ValueError(f"espeak-ng cannot load voice {name!r} (see `espeak-ng --voices` and `--voices=variant`)")
    _current_voice[0] = name
    lib.espeak_SetSynthCallback(_NO_AUDIO)
    lib.espeak_Synth(b"\0", 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
    lib.espeak_Synchronize()


_LANG_FLAG = re.compile(r"\([a-z]{2,3}(?:-[a-z0-9-]+)?\)")
# espeak-ng writes tones of tone languages as digits, and the digit 3 of a contour
# comes out as "ɜ" after a vowel; in Chinese "s." "z." are its retroflex sibilants.
_TONE3 = re.compile(r"(?<=[\u0250-\u02afa-zː\u0300-\u036f])ɜ")
_DIGITS = re.compile(r"[0-9]")
_RETROFLEX = {"ts.": "tʂ", "tS.": "tʂ", "dz.": "dʐ", "s.": "ʂ", "z.": "ʐ"}
_TONE_LANGS = ("cmn", "yue", "hak", "zh", "vi", "th", "shn", "my")
# Some voices leak espeak's ASCII phoneme names or non-IPA look-alikes into the IPA
# output (ky "S", da "?" and Greek "ε", lb "ʦ" ...): give them their IPA symbol.
_LEAKED = str.maketrans({
    "S": "ʃ", "Z": "ʒ", "N": "ŋ", "A": "ɑ", "X": "x", "E": "ɛ", "O": "ɔ", "I": "ɪ", "U": "ʊ", "V": "ʌ",
    "T": "θ", "D": "ð", "Q": "ɒ", "R": "ʁ", "C": "ç", "@": "ə", "?": "ʔ", "ε": "ɛ", "ɩ": "ɪ", "ᵻ": "ɨ",
    "ʦ": "ts", "ʣ": "dz", "ʧ": "tʃ", "ʤ": "dʒ", "ʨ": "tɕ", "ʥ": "dʑ", "ɚ": "ɚ",
    '"': None, "#": None, "(": None, ")": None, "[": None, "]": None, "^": None, "`": None, "=": None,
    "!": None, "&": "æ", "*": None, "/": None, "<": None, ">": None, "{": None, "}": None, ";": None,
})


def clean_ipa(ipa: str, code: str) -> str:
    """Remove language-switch flags and tone numbers from espeak-ng IPA, and repair leaked ASCII names.

    >>> clean_ipa("s.ˈi.5 nˈiɜ", "cmn-latn-pinyin")
    'ʂˈi. nˈi'
    """
    ipa = _LANG_FLAG.sub("", ipa)
    if code.startswith(_TONE_LANGS):
        if code.startswith(("cmn", "zh")):
            for k, v in _RETROFLEX.items():
                ipa = ipa.replace(k, v)
        ipa = _TONE3.sub("", ipa)
    return _DIGITS.sub("", ipa).translate(_LEAKED)


def text_to_ipa(text: str, lang: str = "en-us") -> str:
    """IPA of a text from espeak-ng's own rules and dictionaries (numbers expanded, stress kept).

    Language-switch flags like ``(en)`` are removed; clauses are joined by spaces.
    """
    code = espeak_voice(lang)
    lib, _ = library()
    buf = ctypes.create_string_buffer(text.encode("utf-8"))
    ptr = ctypes.c_void_p(ctypes.addressof(buf))
    parts: list[str] = []
    with LOCK:
        set_voice(code)
        while ptr.value:
            out = lib.espeak_TextToPhonemes(ctypes.byref(ptr), CHARS_UTF8, 0x02)  # 0x02: IPA
            if out:
                parts.append(out.decode("utf-8", "replace"))
    return clean_ipa(" ".join(p.strip() for p in parts if p.strip()), code)
