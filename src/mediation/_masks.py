"""Masks: what a view shows of a personal value its viewer may not read whole.

One rule per kind of personal information (:class:`~mediation.FieldKind`, named on the workflow's
``personal`` declaration), each with the text a view states when it applied it.  A value too short
for its rule to hide anything is masked whole (:data:`FULL`), and a whole mask never shows the
value's length.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import attrs

from ._spec import FieldKind

__all__ = ["FULL", "MASKS", "Mask", "mask"]

#: a value masked whole (its length is not shown either)
FULL = "***"


@attrs.frozen
class Mask:
    kind: FieldKind
    en: str
    zh: str
    apply: Callable[[str], str]

    @property
    def rule(self) -> str:
        """The rule as a view states it: English / 中文."""
        return f"{self.en} / {self.zh}"


def mask_phone(value: str) -> str:
    if not value.strip():
        return ""
    digits = "".join(ch for ch in value if ch.isdigit())
    return "*" * 7 + digits[-4:] if len(digits) >= 11 else FULL


def mask_id_number(value: str) -> str:
    if not value.strip():
        return ""
    v = value.strip()
    return v[0] + "*" * (len(v) - 2) + v[-1] if len(v) >= 8 else FULL


def mask_name(value: str) -> str:
    if not value.strip():
        return ""
    v = value.strip()
    return v[0] + "*" if len(v) >= 2 else FULL


#: up to the first building (3号楼, 5栋, 2幢, A座): what follows (unit, floor, room) is dropped
_BUILDING = re.compile(r"^.*?(?:\d+|[A-Za-z]|[一二三四五六七八九十百零〇]+)\s*(?:号楼|栋|幢|座)")
#: or, with no building named, up to the street and its numbers (荣悦路88弄, 荣悦路88号)
_STREET = re.compile(r"^.*?(?:路|街|巷|弄|大道)(?:\s*\d+\s*(?:弄|号))*")
#: a room, unit, floor or household number: below the building, never shown
_BELOW = re.compile(r"(?:\d+|[一二三四五六七八九十]+)\s*(?:室|单元|层|户|房)")
#: the street alone, for an address that ends at its building number
_STREET_ONLY = re.compile(r"^.*?(?:路|街|巷|弄|大道)")
#: an address this short names too little to cut: masked whole
_SHORT_ADDRESS = 6


def mask_address(value: str) -> str:
    if not value.strip():
        return ""
    v = value.strip()
    if len(v) <= _SHORT_ADDRESS:
        return FULL
    found = _BUILDING.match(v) or _STREET.match(v)
    if found is None or len(found.group(0)) < 4:
        return FULL
    kept = found.group(0)
    below = _BELOW.search(kept)  # a room, unit or floor named before the building: not shown
    if below is not None:
        kept = kept[: below.start()]
        if len(kept) < 4:
            return FULL
        return kept + FULL
    if kept == v:  # the address is the building itself (路123号): show the street at most
        street = _STREET_ONLY.match(v)
        kept = street.group(0) if street is not None else ""
        if kept == v or len(kept) < 4:
            return FULL
    return kept + FULL


def mask_bank(value: str) -> str:
    if not value.strip():
        return ""
    digits = "".join(ch for ch in value if ch.isdigit())
    return "*" * 4 + digits[-4:] if len(digits) >= 12 else FULL


def mask_whole(value: str) -> str:
    return FULL


MASKS: Mapping[FieldKind, Mask] = {
    m.kind: m
    for m in (
        Mask(
            FieldKind.NAME,
            "name: its first character only (e.g. 张*)",
            "姓名：仅显示首字（如 张*）",
            mask_name,
        ),
        Mask(
            FieldKind.PHONE,
            "phone: the last 4 digits, only when it has at least 11; else masked whole",
            "电话：满 11 位的仅显示后 4 位，否则全部隐去",
            mask_phone,
        ),
        Mask(
            FieldKind.ID_NUMBER,
            "ID number: its first and last character only",
            "证件号码：仅显示首尾各 1 位",
            mask_id_number,
        ),
        Mask(
            FieldKind.ADDRESS,
            "address: down to the building at most; a short one masked whole",
            "地址：最多显示到楼栋，过短的全部隐去",
            mask_address,
        ),
        Mask(FieldKind.EMPLOYER, "employer: masked whole", "用人单位：全部隐去", mask_whole),
        Mask(FieldKind.HEALTH, "health: masked whole", "健康信息：全部隐去", mask_whole),
        Mask(FieldKind.MINOR, "minor's data: masked whole", "未成年人信息：全部隐去", mask_whole),
        Mask(
            FieldKind.BANK,
            "bank account: the last 4 digits, only when it has at least 12",
            "银行账户：满 12 位的仅显示后 4 位，否则全部隐去",
            mask_bank,
        ),
        Mask(
            FieldKind.TEXT,
            "free text: shown only to those entitled to it",
            "文字记录：仅向有权查看者显示",
            mask_whole,
        ),
    )
}


def mask(kind: FieldKind, value: str) -> str:
    """``value`` masked by the rule of its kind (empty text stays empty: nothing to hide)."""
    return MASKS[kind].apply(value) if value.strip() else ""
