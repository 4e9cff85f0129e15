"""Transcript normalization: from written text to the words a speaker says.

`words` turns a transcript into lowercase word tokens: Unicode NFKC, curly
quotes, punctuation and markup (``[laughter]``, ``<unk>``) removed,
apostrophes inside words kept (``don't``).  For English, numbers, money,
percentages, ordinals, years, times and common abbreviations are written out
(``$5.50`` -> ``five dollars fifty cents``).  Other languages keep their digits:
espeak-ng reads numbers in each language itself.  Japanese, written without spaces, is cut
into words by its dictionary (`toolkit.phonemes.japanese`).

Example
-------
>>> words("Dr. Smith paid $5.50 on May 3rd, 1999!")
['doctor', 'smith', 'paid', 'five', 'dollars', 'fifty', 'cents', 'on', 'may', 'third', 'nineteen', 'ninety', 'nine']
>>> words("Don’t panic: 42% of “them” left.")
["don't", 'panic', 'forty', 'two', 'percent', 'of', 'them', 'left']
>>> words("Straße 12, Köln", lang="de")
['straße', '12', 'köln']
>>> words("今日は東京に行きます。", lang="ja")     # doctest: +SKIP
['今日', 'は', '東京', 'に', '行き', 'ます']
"""
from __future__ import annotations

import re
import unicodedata

from toolkit.phonemes.japanese import has_japanese_script, is_japanese, japanese_words

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
         "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = [(10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand")]
_ORDINAL_WORDS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                  "nine": "ninth", "twelve": "twelfth"}

# Abbreviations written with a period, and what is said.
_ABBREVIATIONS = {
    "mr": "mister", "mrs": "missus", "ms": "miz", "dr": "doctor", "prof": "professor", "jr": "junior",
    "sr": "senior", "st": "saint", "mt": "mount", "ft": "fort", "gen": "general", "capt": "captain",
    "col": "colonel", "lt": "lieutenant", "sgt": "sergeant", "gov": "governor", "rev": "reverend",
    "vs": "versus", "etc": "et cetera", "approx": "approximately", "dept": "department", "est": "established",
    "ave": "avenue", "blvd": "boulevard", "rd": "road", "inc": "incorporated", "ltd": "limited",
    "co": "company", "corp": "corporation", "jan": "january", "feb": "february", "mar": "march",
    "apr": "april", "jun": "june", "jul": "july", "aug": "august", "sep": "september", "sept": "september",
    "oct": "october", "nov": "november", "dec": "december", "no": "number",
}
_DOTTED = {"e.g.": "for example", "i.e.": "that is", "a.m.": "a m", "p.m.": "p m", "u.s.": "u s",
           "u.k.": "u k", "u.s.a.": "u s a", "et al.": "et al"}
_CURRENCY = {"$": ("dollar", "dollars", "cent", "cents"), "£": ("pound", "pounds", "penny", "pence"),
             "€": ("euro", "euros", "cent", "cents"), "¥": ("yen", "yen", "", ""),
             "₹": ("rupee", "rupees", "paisa", "paise")}
_SYMBOLS_EN = {"&": " and ", "@": " at ", "+": " plus ", "=": " equals ", "%": " percent ", "°": " degrees "}
_QUOTES = str.maketrans({"‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'", "`": "'", "´": "'",
                         "“": '"', "”": '"', "„": '"', "‟": '"', "«": '"', "»": '"', "″": '"',
                         "–": " ", "—": " ", "―": " ", "‐": "-", "‑": "-", "…": " ", "\u00a0": " "})
_MARKUP = re.compile(r"\[[^\]]*\]|<[^>]*>|\{[^}]*\}")


def number_to_words(n: int) -> str:
    """Cardinal number in English words.

    >>> number_to_words(1234567)
    'one million two hundred thirty four thousand five hundred sixty seven'
    """
    if n < 0:
        return "minus " + number_to_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + number_to_words(rest))
    for value, name in _SCALES:
        if n >= value:
            head, rest = divmod(n, value)
            return number_to_words(head) + " " + name + ("" if rest == 0 else " " + number_to_words(rest))
    raise AssertionError("unreachable")


def ordinal_to_words(n: int) -> str:
    """Ordinal number in English words.

    >>> ordinal_to_words(21), ordinal_to_words(100)
    ('twenty first', 'one hundredth')
    """
    parts = number_to_words(n).split()
    last = parts[-1]
    if last in _ORDINAL_WORDS:
        parts[-1] = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        parts[-1] = last[:-1] + "ieth"
    else:
        parts[-1] = last + "th"
    return " ".join(parts)


def year_to_words(n: int) -> str:
    """How a year is said: 1999 -> nineteen ninety nine, 1905 -> nineteen oh five, 2005 -> two thousand five.

    >>> year_to_words(1999), year_to_words(1900), year_to_words(2021)
    ('nineteen ninety nine', 'nineteen hundred', 'twenty twenty one')
    """
    if not 1000 <= n <= 9999 or 2000 <= n <= 2009 or n % 1000 == 0:
        return number_to_words(n)
    head, tail = divmod(n, 100)
    if tail == 0:
        return number_to_words(head) + " hundred"
    if tail < 10:
        return number_to_words(head) + " oh " + _ONES[tail]
    return number_to_words(head) + " " + number_to_words(tail)


def _digits(s: str) -> str:
    return " ".join(_ONES[int(d)] for d in s)


# Longer digit strings are read digit by digit (a serial number, not a quantity anyone says); it also
# keeps Python's int() far from its 4300-digit limit.
MAX_NUMBER_DIGITS = 15


def _cardinal(digits: str) -> str:
    digits = digits.replace(",", "") or "0"
    return _digits(digits) if len(digits) > MAX_NUMBER_DIGITS else number_to_words(int(digits))


def _decimal(int_part: str, frac: str | None) -> str:
    whole = _cardinal(int_part)
    return whole if not frac else f"{whole} point {_digits(frac)}"


def _money(m: re.Match) -> str:
    one, many, sub_one, sub_many = _CURRENCY[m.group("cur")]
    if len(m.group("int").replace(",", "")) > MAX_NUMBER_DIGITS:
        return f"{_cardinal(m.group('int'))} {many}"
    whole = int(m.group("int").replace(",", ""))
    frac = m.group("frac")
    scale = m.group("scale")
    if scale:  # $1.5 million -> one point five million dollars
        return f"{_decimal(m.group('int'), frac)} {scale.lower()} {many}"
    out = f"{number_to_words(whole)} {one if whole == 1 else many}"
    if frac and sub_one:
        cents = int((frac + "0")[:2])
        if cents:
            out += f" {number_to_words(cents)} {sub_one if cents == 1 else sub_many}"
    return out


_MONEY = re.compile(r"(?P<cur>[$£€¥₹])\s?(?P<int>\d[\d,]*)(?:\.(?P<frac>\d+))?"
                    r"(?:\s?(?P<scale>thousand|million|billion|trillion)\b)?", re.I)
_PERCENT = re.compile(r"(\d[\d,]*)(?:\.(\d+))?\s?%")
_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.I)
_DECADE = re.compile(r"(?<![\w.])'?(\d{2}|1\d{3}|20\d{2})'?s\b")
_TIME = re.compile(r"\b(\d{1,2}):(\d{2})\b")
_NUMBER = re.compile(r"(?<![\w.])-?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?")


def _decade(m: re.Match) -> str:
    text = m.group(1)
    said = year_to_words(int(text)) if len(text) == 4 else number_to_words(int(text))
    head, _, last = said.rpartition(" ")
    last = last[:-1] + "ies" if last.endswith("y") else last + "s"  # ninety -> nineties, hundred -> hundreds
    return f"{head} {last}".strip()


def _time(m: re.Match) -> str:
    h, mi = int(m.group(1)), int(m.group(2))
    if mi == 0:
        return f"{number_to_words(h)} o'clock"
    return f"{number_to_words(h)} {'oh ' + _ONES[mi] if mi < 10 else number_to_words(mi)}"


def _number(m: re.Match) -> str:
    text, frac = m.group(1), m.group(2)
    sign = "minus " if m.group(0).startswith("-") else ""
    if frac is None and "," not in text and len(text) == 4 and 1000 <= int(text) <= 2099:
        return sign + year_to_words(int(text))
    if frac is None and len(text) > 1 and text.startswith("0"):
        return sign + _digits(text.replace(",", ""))  # 007, zip codes: digit by digit
    return sign + _decimal(text, frac)


def _abbreviation(m: re.Match) -> str:
    word, following = m.group(1), m.group(2)
    key = word.lower()
    if key == "st" and not following.lstrip()[:1].isupper():
        return "street" + following  # "Main St." vs "St. Louis"
    if key == "no" and not following.lstrip()[:1].isdigit():
        return m.group(0)
    return _ABBREVIATIONS[key] + following


_ABBREV_RE = re.compile(r"\b(" + "|".join(sorted(_ABBREVIATIONS, key=len, reverse=True)) + r")\.(\s*\S?)", re.I)


# Byte order marks, longest first (UTF-32's little-endian mark starts with UTF-16's).
_BOMS = ((b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xef\xbb\xbf", "utf-8"),
         (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


def decode_text(raw: bytes, name: str, fallback: str | None = None) -> str:
    """The text of a file's bytes: UTF-8, or UTF-8/16/32 after a byte order mark (what Windows
    Notepad and Praat save), else ``fallback`` (e.g. "latin-1") when given.  Binary data (NUL or
    other control bytes) is refused with a ValueError naming ``name``.

    >>> decode_text("hé".encode("utf-16"), "t.txt")
    'hé'
    """
    for bom, enc in _BOMS:
        if raw.startswith(bom):
            try:
                text = raw[len(bom):].decode(enc)
            except UnicodeDecodeError as e:
                raise ValueError(f"{name}: broken {enc.upper()} text (byte {e.start + len(bom)})") from None
            break
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            if b"\x00" in raw[:4096] or fallback is None:
                kind = "binary data, not text" if b"\x00" in raw[:4096] else \
                    f"not UTF-8 text (byte {e.start} is 0x{raw[e.start]:02x}); save it as UTF-8"
                raise ValueError(f"{name}: {kind}") from None
            text = raw.decode(fallback)
    control = sum(unicodedata.category(c) == "Cc" and c not in "\t\n\r\f\v" for c in text[:65536])
    if control > max(2, len(text[:65536]) // 1000):
        raise ValueError(f"{name}: binary data, not text ({control} control characters)")
    return text


def read_transcript(path) -> str:
    """A transcript file's text (see `decode_text`); ValueError naming the file when it cannot be read.

    >>> read_transcript("missing.txt")
    Traceback (most recent call last):
    ...
    ValueError: missing.txt: cannot read transcript (No such file or directory)
    """
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ValueError(f"{path}: cannot read transcript ({e.strerror or e})") from None
    return decode_text(raw, str(path))


def normalize(text: str, lang: str = "en") -> str:
    """The transcript as lowercase words separated by single spaces (see `words`).

    >>> normalize("It's 9:05, Mr. O’Neil — 2nd call!")
    "it's nine oh five mister o'neil second call"
    """
    return " ".join(words(text, lang))


def words(text: str, lang: str = "en") -> list[str]:
    """Lowercase spoken word tokens of a transcript (numbers written out for English).

    >>> words("Main St. & 5th Ave.: $1.5 million, 3.14, 1,000 or -7")
    ['main', 'street', 'and', 'fifth', 'avenue', 'one', 'point', 'five', 'million', 'dollars', 'three', 'point', 'one', 'four', 'one', 'thousand', 'or', 'minus', 'seven']
    """
    toks = tokens(text, lang)
    if is_japanese(lang):  # written without spaces: each run of kanji and kana cut into its words
        return [w for t in toks for w in (japanese_words(t) if has_japanese_script(t) else [t])]
    return toks


def tokens(text: str, lang: str = "en") -> list[str]:
    """What `words` gives, before Japanese runs are cut into words (elsewhere the same).

    >>> tokens("今日は、東京!", lang="ja")
    ['今日は', '東京']
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    s = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    s = _MARKUP.sub(" ", s)  # [laughter], <unk>, {noise}: not words anyone reads
    english = lang.lower().replace("_", "-").split("-")[0] in ("en", "english")
    if english:
        s = _expand_english(s)
    s = s.lower()
    # keep letters, marks and digits; apostrophes only inside words
    s = "".join(ch if (unicodedata.category(ch)[0] in "LMN" or ch in "'-") else " " for ch in s)
    s = s.replace("-", " ")
    out = []
    for tok in s.split():
        tok = tok.strip("'")
        if tok:
            out.append(tok)
    return out


def _expand_english(s: str) -> str:
    low = s.lower()
    for dotted, said in sorted(_DOTTED.items(), key=lambda kv: -len(kv[0])):
        idx = low.find(dotted)
        while idx >= 0:
            s = s[:idx] + " " + said + " " + s[idx + len(dotted):]
            low = s.lower()
            idx = low.find(dotted, idx + len(said) + 2)
    s = _ABBREV_RE.sub(_abbreviation, s)
    s = _MONEY.sub(lambda m: " " + _money(m) + " ", s)
    s = _PERCENT.sub(lambda m: " " + _decimal(m.group(1), m.group(2)) + " percent ", s)
    s = _ORDINAL.sub(lambda m: " " + (ordinal_to_words(int(m.group(1))) if len(m.group(1)) <= MAX_NUMBER_DIGITS
                                      else _cardinal(m.group(1)) + " " + m.group(2)) + " ", s)
    s = _DECADE.sub(lambda m: " " + _decade(m) + " ", s)
    s = _TIME.sub(lambda m: " " + _time(m) + " ", s)
    s = _NUMBER.sub(lambda m: " " + _number(m) + " ", s)
    for sym, said in _SYMBOLS_EN.items():
        s = s.replace(sym, said)
    return s
