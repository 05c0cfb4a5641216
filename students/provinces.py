"""Provincial-level divisions of China (省级行政区) for a student's place of origin (生源地).

The 34 divisions with their GB/T 2260 codes: 23 provinces (Taiwan included), 5
autonomous regions, 4 municipalities and 2 special administrative regions.  A roster
gives 生源地 either as a six-digit administrative code (``370202``) or as a province
name (``山东省``, ``山东``); :func:`resolve_hometown` turns either into the pair
(province code, city code) stored on :class:`students.models.Student`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.utils.translation import gettext as _


@dataclass(frozen=True)
class Province:
    """One provincial-level division: its two-digit prefix, full name and short name."""

    prefix: str
    name: str
    short_name: str

    @property
    def code(self) -> str:
        """The six-digit code of the province itself (``370000``)."""
        return f"{self.prefix}0000"


PROVINCES: tuple[Province, ...] = (
    Province("11", "北京市", "北京"),
    Province("12", "天津市", "天津"),
    Province("13", "河北省", "河北"),
    Province("14", "山西省", "山西"),
    Province("15", "内蒙古自治区", "内蒙古"),
    Province("21", "辽宁省", "辽宁"),
    Province("22", "吉林省", "吉林"),
    Province("23", "黑龙江省", "黑龙江"),
    Province("31", "上海市", "上海"),
    Province("32", "江苏省", "江苏"),
    Province("33", "浙江省", "浙江"),
    Province("34", "安徽省", "安徽"),
    Province("35", "福建省", "福建"),
    Province("36", "江西省", "江西"),
    Province("37", "山东省", "山东"),
    Province("41", "河南省", "河南"),
    Province("42", "湖北省", "湖北"),
    Province("43", "湖南省", "湖南"),
    Province("44", "广东省", "广东"),
    Province("45", "广西壮族自治区", "广西"),
    Province("46", "海南省", "海南"),
    Province("50", "重庆市", "重庆"),
    Province("51", "四川省", "四川"),
    Province("52", "贵州省", "贵州"),
    Province("53", "云南省", "云南"),
    Province("54", "西藏自治区", "西藏"),
    Province("61", "陕西省", "陕西"),
    Province("62", "甘肃省", "甘肃"),
    Province("63", "青海省", "青海"),
    Province("64", "宁夏回族自治区", "宁夏"),
    Province("65", "新疆维吾尔自治区", "新疆"),
    Province("71", "台湾省", "台湾"),
    Province("81", "香港特别行政区", "香港"),
    Province("82", "澳门特别行政区", "澳门"),
)

PROVINCE_BY_PREFIX: dict[str, Province] = {p.prefix: p for p in PROVINCES}
PROVINCE_BY_NAME: dict[str, Province] = {
    **{p.name: p for p in PROVINCES},
    **{p.short_name: p for p in PROVINCES},
}
# Longest names first so that "黑龙江省哈尔滨市" is not read as a shorter prefix.
_NAMES_LONGEST_FIRST = sorted(PROVINCE_BY_NAME, key=len, reverse=True)
_CODE_RE = re.compile(r"^\d{6}$")


class HometownError(ValueError):
    """The value names no known province and is no valid administrative code."""


def resolve_hometown(value: str) -> tuple[str, str]:
    """Return ``(province_code, city_code)`` for a 生源地 value; ``("", "")`` for blank.

    A six-digit code gives province = first two digits + ``0000`` and city = first four
    digits + ``00`` (blank when the code is the province itself).  A name gives the
    province only; a name followed by more text (``山东省青岛市``) is read by its
    province prefix.  Raises :class:`HometownError` for anything else."""
    value = (value or "").strip()
    if not value:
        return "", ""
    if _CODE_RE.match(value):
        province = PROVINCE_BY_PREFIX.get(value[:2])
        if province is None:
            raise HometownError(_("行政区划代码 %(code)s 的前两位不是有效的省级代码") % {"code": value})
        city = f"{value[:4]}00"
        return province.code, "" if city == province.code else city
    province = PROVINCE_BY_NAME.get(value)
    if province is None:
        for name in _NAMES_LONGEST_FIRST:
            if value.startswith(name):
                province = PROVINCE_BY_NAME[name]
                break
    if province is None:
        raise HometownError(_("应为6位行政区划代码或省份名称(如 370202 或 山东省)"))
    return province.code, ""


def hometown_label(province_code: str, city_code: str) -> str:
    """The 生源地 value written to an export: the most precise code held, so that it
    imports back to the same pair."""
    return city_code or province_code or ""
