"""The masks of personal data (mediation._masks): one rule per kind of personal information.

- phone: ``*******`` and the last 4 digits, only when it has at least 11 digits; else ``***``;
- ID number: its first and last character with stars between, when it has at least 8; else ``***``;
- name: its first character and one star (陈*); a name of one character: ``***``;
- address: down to the first building (号楼/栋/幢/座), or else down to the street and its numbers,
  then ``***``; a short one (6 characters at most) or one with neither: ``***``;
- employer, health, a minor's data: ``***``;
- bank account: the last 4 digits, only when it has at least 12 digits; else ``***``.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from mediation import FieldKind
from mediation._masks import (
    FULL,
    MASKS,
    mask,
    mask_address,
    mask_bank,
    mask_id_number,
    mask_name,
    mask_phone,
)

# -- phone -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13800001502", "*******1502"),  # 11 digits: the last 4
        ("138-0000-1502", "*******1502"),  # separators are not digits
        ("+86 138 0000 1502", "*******1502"),  # 13 digits: still 7 stars and the last 4
        ("8765432", FULL),  # 7 digits (a landline without its area code): masked whole
        ("87654321", FULL),  # 8 digits
        ("1380000150", FULL),  # 10 digits
        ("无", FULL),
    ],
)
def test_phone(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked == mask(FieldKind.PHONE, phone)


def test_a_whole_mask_does_not_show_the_length() -> None:
    assert {mask_phone("1" * n) for n in range(1, 11)} == {FULL}
    assert {mask_id_number("X" * n) for n in range(1, 8)} == {FULL}
    assert {mask_bank("6" * n) for n in range(1, 12)} == {FULL}
    assert {len(mask_phone("1" + "3" * n)) for n in range(10, 20)} == {11}


# -- ID number -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("id_number", "masked"),
    [
        ("410902198001011234", "4" + "*" * 16 + "4"),
        ("41090219800101123X", "4" + "*" * 16 + "X"),
        ("G12345678", "G*******8"),  # a passport
        ("12345678", "1******8"),  # 8 characters: first and last
        ("1234567", FULL),  # 7: masked whole
        ("  41090219800101123X  ", "4" + "*" * 16 + "X"),  # surrounding blanks do not count
    ],
)
def test_id_number(id_number: str, masked: str) -> None:
    assert mask_id_number(id_number) == masked == mask(FieldKind.ID_NUMBER, id_number)


# -- name ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("陈女士", "陈*"),
        ("陈", FULL),  # one character: nothing could be hidden
        ("欧阳娜娜", "欧*"),
        ("Zhang Wei", "Z*"),
        (" 刘先生 ", "刘*"),
    ],
)
def test_name(name: str, masked: str) -> None:
    assert mask_name(name) == masked == mask(FieldKind.NAME, name)


# -- address ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        # the example: down to the building
        ("上海市浦东新区荣悦路88弄3号楼502室", "上海市浦东新区荣悦路88弄3号楼***"),
        ("濮阳市华龙区胜利路天鹅堡小区5栋2单元1502", "濮阳市华龙区胜利路天鹅堡小区5栋***"),
        ("华龙区胜利路天鹅堡二幢301室", "华龙区胜利路天鹅堡二幢***"),
        ("北京市朝阳区建国路SOHO现代城A座2108", "北京市朝阳区建国路SOHO现代城A座***"),
        # no building: down to the street and its numbers
        ("华龙区胜利路 1 号天鹅堡小区", "华龙区胜利路 1 号***"),
        ("上海市浦东新区荣悦路88弄502室", "上海市浦东新区荣悦路88弄***"),
        ("濮阳市华龙区人民大道 12 号院内东侧", "濮阳市华龙区人民大道 12 号***"),
        # short (6 characters at most): masked whole
        ("胜利路1号", FULL),
        ("3号楼502", FULL),
        ("天鹅堡小区", FULL),
        ("荣悦路88号", FULL),
        # neither a building nor a street: masked whole
        ("濮阳市华龙区天鹅堡小区东门旁", FULL),
    ],
)
def test_address(address: str, masked: str) -> None:
    assert mask_address(address) == masked == mask(FieldKind.ADDRESS, address)


def test_an_address_that_ends_at_its_building_is_cut_to_its_street() -> None:
    """The rule is "down to the building at most": an address with nothing after its building (or
    its street number) would show whole, so it is cut to its street, and a masked address never
    reads as the whole plaintext."""
    assert mask_address("上海市浦东新区荣悦路88弄3号楼") == "上海市浦东新区荣悦路***"
    assert mask_address("濮阳市华龙区胜利路123号") == "濮阳市华龙区胜利路***"
    assert mask_address("胜利路1号") == "***"  # nothing left above the building


# -- employer, health, minor, bank -------------------------------------------------------------------


@pytest.mark.parametrize("kind", [FieldKind.EMPLOYER, FieldKind.HEALTH, FieldKind.MINOR])
@pytest.mark.parametrize("value", ["天鹅堡物业公司", "高血压三级", "小明，8 岁，实验小学", "x"])
def test_masked_whole(kind: FieldKind, value: str) -> None:
    assert mask(kind, value) == FULL


@pytest.mark.parametrize(
    ("account", "masked"),
    [
        ("6222020200112233445", "****3445"),  # 19 digits
        ("6222 0202 0011 2233", "****2233"),  # 16 digits with spaces
        ("622202020011", "****0011"),  # 12 digits: the last 4
        ("62220202001", FULL),  # 11 digits: masked whole
    ],
)
def test_bank_account(account: str, masked: str) -> None:
    assert mask_bank(account) == masked == mask(FieldKind.BANK, account)


@pytest.mark.parametrize("kind", sorted(FieldKind, key=lambda k: k.value))
@pytest.mark.parametrize("blank", ["", "  ", "\u3000"])
def test_a_blank_value_has_nothing_to_hide(kind: FieldKind, blank: str) -> None:
    assert mask(kind, blank) in ("", FULL)


def test_free_text_is_masked_whole() -> None:
    assert mask(FieldKind.TEXT, "双方陈述：楼上夜间噪声") == FULL


def test_every_kind_has_a_rule_stated_in_english_and_chinese() -> None:
    assert set(MASKS) == set(FieldKind)
    for kind, rule in MASKS.items():
        assert rule.kind is kind
        english, chinese = rule.rule.split(" / ")
        assert english.strip() and re.search("[\u4e00-\u9fff]", chinese)


# -- properties ------------------------------------------------------------------------------------

_SEPARATORS = st.sampled_from(" -+()")


def _number(min_digits: int, max_digits: int) -> st.SearchStrategy[str]:
    """Digits with separators here and there, as people write a phone or an account number."""
    return st.lists(
        st.one_of(st.sampled_from("0123456789"), _SEPARATORS),
        min_size=min_digits,
        max_size=max_digits + 6,
    ).map("".join)


def _digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


def _runs(value: str, n: int) -> set[str]:
    """The runs of ``n`` consecutive characters of ``value``."""
    return {value[i : i + n] for i in range(len(value) - n + 1)}


def _shows_at_most(masked: str, value: str, n: int) -> bool:
    """No run of more than ``n`` consecutive digits of ``value`` is in ``masked`` (with its
    non-digits dropped too, so that ``13 800`` is not a way around)."""
    return not any(run in _digits(masked) for run in _runs(_digits(value), n + 1))


@given(_number(0, 20))
@example("13800001502")
@example("8765432")
@example("87654321")
def test_a_masked_phone_shows_at_most_its_last_4_digits(phone: str) -> None:
    masked = mask_phone(phone)
    assert _shows_at_most(masked, phone, 4)
    assert set(masked.replace("*", "")) <= set("0123456789")
    shown = masked.lstrip("*")
    assert shown == ("" if len(_digits(phone)) < 11 else _digits(phone)[-4:])
    if _digits(phone):
        assert phone not in masked and masked != phone


@given(_number(0, 24))
@example("6222020200112233445")
def test_a_masked_bank_account_shows_at_most_its_last_4_digits(account: str) -> None:
    masked = mask_bank(account)
    assert _shows_at_most(masked, account, 4)
    shown = masked.lstrip("*")
    assert shown == ("" if len(_digits(account)) < 12 else _digits(account)[-4:])
    if _digits(account):
        assert account not in masked and masked != account


@given(st.text("0123456789Xx", min_size=0, max_size=20))
@example("410902198001011234")
@example("41090219800101123X")
def test_a_masked_id_number_shows_its_first_and_last_character_only(id_number: str) -> None:
    masked = mask_id_number(id_number)
    visible = masked.replace("*", "")
    if len(id_number) >= 8:
        assert masked[0] + masked[-1] == id_number[0] + id_number[-1]
        assert set(masked[1:-1]) == {"*"} and len(masked) == len(id_number)
    else:
        assert masked in ("", FULL) if not id_number else masked == FULL
    assert len(visible) <= 2
    if id_number:
        assert id_number not in masked


_CJK = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5)


@given(
    region=st.text(_CJK, min_size=2, max_size=8),
    road=st.text(_CJK, min_size=1, max_size=3),
    number=st.integers(1, 999),
    building=st.integers(1, 99),
    marker=st.sampled_from(("号楼", "栋", "幢", "座")),
    room=st.integers(101, 3999),
)
def test_a_masked_address_stops_at_its_building(
    region: str, road: str, number: int, building: int, marker: str, room: int
) -> None:
    kept = f"{region}{road}路{number}号{building}{marker}"
    address = f"{kept}{room}室"
    masked = mask_address(address)
    assert masked == kept + FULL
    assert f"{room}室" not in masked and address not in masked


#: every kind but the address (whose rule keeps a prefix: see the tests above)
_KINDS = sorted((k for k in MASKS if k is not FieldKind.ADDRESS), key=lambda k: k.value)


@given(st.text(max_size=40), st.sampled_from(_KINDS))
def test_a_mask_never_shows_the_whole_value(value: str, kind: FieldKind) -> None:
    """Whatever the text, its mask is not the text itself (a value of one or two characters,
    whose first character and a star could read as the value, or one of stars, aside)."""
    masked = mask(kind, value)
    if len(value.strip()) > 2 and "*" not in value:
        assert masked != value and value.strip() not in masked
