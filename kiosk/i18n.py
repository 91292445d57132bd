"""Message catalogs (gettext): every text a person reads goes through :func:`Translator.text`.

Catalogs live in ``kiosk/locale/<lang>/LC_MESSAGES/<domain>.po``, one domain per package
(``kiosk``, ``screens``, ``idreader``, ``smartcard``, ``cardprinter``, ``receipt``, ``pinpad``,
``camera``, ``backend``, ``outbox`` …). The msgid is a stable message key
(``idreader.sam_not_authorized``); the msgstr is the text in that language. All domains of a
language are merged; a key missing in a language falls back to zh_CN, then to the key itself
(which a test forbids for keys used in code).
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Iterable
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).parent / "locale"
DEFAULT_LANGUAGE = "zh_CN"


def po_files(language: str, locale_dir: Path = LOCALE_DIR) -> list[Path]:
    return sorted((locale_dir / language / "LC_MESSAGES").glob("*.po"))


def read_catalog(path: Path, language: str) -> list[tuple[str, str]]:
    """The (key, text) pairs of one .po file that have both."""
    with path.open("rb") as f:
        catalog = read_po(f, locale=language.split("_")[0])
    return [(str(m.id), str(m.string)) for m in catalog if m.id and m.string]


def load_messages(language: str, locale_dir: Path = LOCALE_DIR) -> dict[str, str]:
    """All keys → texts of one language, across domains. A key defined twice is an error."""
    messages: dict[str, str] = {}
    for path in po_files(language, locale_dir):
        for key, text in read_catalog(path, language):
            if key in messages and messages[key] != text:
                raise ValueError(f"message key {key!r} defined twice ({path.name})")
            messages[key] = text
    return messages


def compile_catalog(language: str, locale_dir: Path = LOCALE_DIR) -> gettext.GNUTranslations:
    """Builds a GNUTranslations object from the .po files (no .mo files to keep in sync)."""
    from babel.messages.catalog import Catalog

    catalog = Catalog(locale=language.split("_")[0])
    for key, text in load_messages(language, locale_dir).items():
        catalog.add(key, text)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


class Translator:
    """Translates message keys into one language, with zh_CN as the fallback."""

    def __init__(self, languages: Iterable[str] = (DEFAULT_LANGUAGE, "en"), locale_dir: Path = LOCALE_DIR):
        self._catalogs = {lang: compile_catalog(lang, locale_dir) for lang in languages}
        self.language = DEFAULT_LANGUAGE if DEFAULT_LANGUAGE in self._catalogs else next(iter(self._catalogs))

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self._catalogs)

    def set_language(self, language: str) -> None:
        if language not in self._catalogs:
            raise ValueError(f"no catalog for {language!r}")
        self.language = language

    def text(self, key: str, language: str | None = None, **values: object) -> str:
        """The text for ``key``; ``{name}`` placeholders are filled from ``values``."""
        lang = language or self.language
        found = self._catalogs[lang].gettext(key)
        if found == key and lang != DEFAULT_LANGUAGE and DEFAULT_LANGUAGE in self._catalogs:
            found = self._catalogs[DEFAULT_LANGUAGE].gettext(key)
        return found.format(**values) if values else found

    def has(self, key: str, language: str) -> bool:
        return self._catalogs[language].gettext(key) != key
