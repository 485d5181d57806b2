"""Bilingual text: one small value instead of pairs whose order a reader must remember."""

from __future__ import annotations

import attrs

__all__ = ["Text"]


@attrs.frozen
class Text:
    """A message in Chinese and English, always named: ``Text(zh="…", en="…")``."""

    zh: str
    en: str

    def __str__(self) -> str:
        return self.en

    def in_(self, lang: str) -> str:
        """The text in ``lang`` (``"zh"`` or anything else for English)."""
        return self.zh if lang == "zh" else self.en
