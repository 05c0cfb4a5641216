"""Resident ID numbers (居民身份证号码, GB 11643-1999): 17 digits — the place code, the
date of birth (positions 7-14) and a sequence — then a check character over the
weighted digits.  The one definition of the rule, for the roster's checks
(:mod:`students.roster`) and the demo university's generated numbers
(:mod:`campuses.demo`)."""

from __future__ import annotations

import datetime as dt
import functools
import operator
import re

ID_NUMBER_RE = re.compile(r"^\d{17}[\dX]$", re.ASCII)  # ASCII digits: another script's are not a number
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECKS = "10X98765432"
#: Each position's weighted value of each digit: a check sum is 17 lookups (a roster
#: of 100,000 students checks 100,000 numbers).
_WEIGHTED = tuple({str(d): d * w for d in range(10)} for w in _WEIGHTS)


def id_check_digit(body: str) -> str:
    """The check character (0-9 or X) for the first 17 digits ``body``."""
    if len(body) != len(_WEIGHTS):
        raise ValueError(f"an ID number's body has 17 digits, not {len(body)}")
    return _CHECKS[sum(map(operator.getitem, _WEIGHTED, body)) % 11]


def id_number_valid(value: str) -> bool:
    """17 ASCII digits, a real date of birth at positions 7-14, and the matching check
    character (0-9 or an upper-case X)."""
    if not ID_NUMBER_RE.match(value) or not _real_date(value[6:14]):
        return False
    return id_check_digit(value[:17]) == value[17]


@functools.lru_cache(maxsize=65536)
def _real_date(yyyymmdd: str) -> bool:
    """Is ``yyyymmdd`` (eight digits) a date?  Kept: a roster's students share a few
    thousand birthdays."""
    try:
        dt.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        return False
    return True
