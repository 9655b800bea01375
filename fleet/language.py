"""Languages: whisper's codes and names (a folder file or WHISPER_LANGUAGE may say "German" or "de"), equality, translation.

A copy of whisper's own table (whisperx.utils.LANGUAGES and TO_LANGUAGE_CODE), kept here because the core and
the director may not import whisperX; tests/unit/fleet/test_language.py checks it still equals the original.
"""

from __future__ import annotations

# code -> name, in whisper's order
LANGUAGES: dict[str, str] = {
    "en": "english",
    "zh": "chinese",
    "de": "german",
    "es": "spanish",
    "ru": "russian",
    "ko": "korean",
    "fr": "french",
    "ja": "japanese",
    "pt": "portuguese",
    "tr": "turkish",
    "pl": "polish",
    "ca": "catalan",
    "nl": "dutch",
    "ar": "arabic",
    "sv": "swedish",
    "it": "italian",
    "id": "indonesian",
    "hi": "hindi",
    "fi": "finnish",
    "vi": "vietnamese",
    "he": "hebrew",
    "uk": "ukrainian",
    "el": "greek",
    "ms": "malay",
    "cs": "czech",
    "ro": "romanian",
    "da": "danish",
    "hu": "hungarian",
    "ta": "tamil",
    "no": "norwegian",
    "th": "thai",
    "ur": "urdu",
    "hr": "croatian",
    "bg": "bulgarian",
    "lt": "lithuanian",
    "la": "latin",
    "mi": "maori",
    "ml": "malayalam",
    "cy": "welsh",
    "sk": "slovak",
    "te": "telugu",
    "fa": "persian",
    "lv": "latvian",
    "bn": "bengali",
    "sr": "serbian",
    "az": "azerbaijani",
    "sl": "slovenian",
    "kn": "kannada",
    "et": "estonian",
    "mk": "macedonian",
    "br": "breton",
    "eu": "basque",
    "is": "icelandic",
    "hy": "armenian",
    "ne": "nepali",
    "mn": "mongolian",
    "bs": "bosnian",
    "kk": "kazakh",
    "sq": "albanian",
    "sw": "swahili",
    "gl": "galician",
    "mr": "marathi",
    "pa": "punjabi",
    "si": "sinhala",
    "km": "khmer",
    "sn": "shona",
    "yo": "yoruba",
    "so": "somali",
    "af": "afrikaans",
    "oc": "occitan",
    "ka": "georgian",
    "be": "belarusian",
    "tg": "tajik",
    "sd": "sindhi",
    "gu": "gujarati",
    "am": "amharic",
    "yi": "yiddish",
    "lo": "lao",
    "uz": "uzbek",
    "fo": "faroese",
    "ht": "haitian creole",
    "ps": "pashto",
    "tk": "turkmen",
    "nn": "nynorsk",
    "mt": "maltese",
    "sa": "sanskrit",
    "lb": "luxembourgish",
    "my": "myanmar",
    "bo": "tibetan",
    "tl": "tagalog",
    "mg": "malagasy",
    "as": "assamese",
    "tt": "tatar",
    "haw": "hawaiian",
    "ln": "lingala",
    "ha": "hausa",
    "ba": "bashkir",
    "jw": "javanese",
    "su": "sundanese",
    "yue": "cantonese",
}
# Other names whisper accepts for some of them.
ALIASES: dict[str, str] = {
    "burmese": "my",
    "valencian": "ca",
    "flemish": "nl",
    "haitian": "ht",
    "letzeburgesch": "lb",
    "pushto": "ps",
    "panjabi": "pa",
    "moldavian": "ro",
    "moldovan": "ro",
    "sinhalese": "si",
    "castilian": "es",
}
_BY_NAME = {name: code for code, name in LANGUAGES.items()} | ALIASES


def language_code_or_none(value: str | None) -> str | None:
    """`language_code`, letting an unset language stay unset (detected per file)."""
    return None if value is None else language_code(value)


def language_code(value: str) -> str:
    """`de`, `DE`, `German` or `german` -> `de`; ValueError naming the value when whisper knows no such language."""
    wanted = value.strip().lower()
    if wanted in LANGUAGES:
        return wanted
    if wanted in _BY_NAME:
        return _BY_NAME[wanted]
    raise ValueError(f"unknown language {value!r}: use a code like 'de' or a name like 'German'")


def same_language(a: str | None, b: str | None) -> bool:
    """Whether two codes in any style (`de`, `ger`, `deu`; whisper's `jw`; a stream's tag) name one language."""
    if not a or not b:
        return False
    import langcodes  # imported when first asked: the director's plan of a mirror library never asks

    try:
        return langcodes.Language.get(a).language == langcodes.Language.get(b).language
    except (ValueError, LookupError):  # a tag langcodes cannot parse ("und", typos) matches nothing
        return False


def written_language(task: str, spoken: str) -> str:
    """The language a transcript is written in: English for a translation, else the spoken one."""
    return "en" if task == "translate" else spoken
