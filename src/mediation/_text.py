"""Bilingual text: one small value instead of pairs whose order a reader must remember."""

from __future__ import annotations

import attrs

__all__ = ["Text", "json_printable", "printable"]


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


#: what :func:`printable` escapes besides C0, DEL and C1: the bidi controls (embeddings,
#: overrides, isolates, marks) and the Unicode line and paragraph separators
_UNSAFE = frozenset(
    [
        *range(0x00, 0x20), 0x7F, *range(0x80, 0xA0),
        0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x2028, 0x2029,
    ]
)  # fmt: skip
_SHORT = {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}
_ESCAPES = {cp: _SHORT.get(cp, f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}") for cp in _UNSAFE}


def printable(text: object) -> str:
    """``text`` safe to show on a terminal, in a timeline or a report: every control character
    (C0, DEL, C1), bidi control and line separator is shown escaped (``\\n``, ``\\x1b``,
    ``\\u202e``), so that untrusted text (a case id, an actor, a payload) stays on its line and
    reads in its own order.  Anything else is unchanged; ``bytes`` and other values are shown as
    their ``repr``."""
    if not isinstance(text, str):
        text = repr(text)
    return text.translate(_ESCAPES)


def json_printable(document: str) -> str:
    """A JSON text (``json.dumps(..., ensure_ascii=False)``) with the characters
    :func:`printable` escapes, beyond the C0 controls JSON already escapes, written as ``\\uXXXX``:
    the same JSON value, safe on a terminal (those characters only occur inside strings)."""
    return document.translate(_JSON_ESCAPES)


_JSON_ESCAPES = {cp: f"\\u{cp:04x}" for cp in _UNSAFE if cp >= 0x7F}
