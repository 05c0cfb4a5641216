"""The resident ID number rule (GB 11643-1999) the roster checks and the demo generates."""

import pytest

from campuses.id_numbers import id_check_digit, id_number_valid

VALID = "11010519491231002X"  # the standard's own example


def test_the_standards_examples():
    assert id_check_digit("11010519491231002") == "X"
    assert id_check_digit("44052418800101001") == "4"
    assert id_number_valid(VALID)
    assert id_number_valid("440524188001010014")


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("110105194912310021", "wrong check character"),
        ("11010519491231002x", "a lower-case x (the roster upper-cases before it checks)"),
        ("110105194902300028", "30 February"),
        ("110105194913010020", "month 13"),
        ("11010519491231002", "17 characters"),
        ("11010519491231002X0", "19 characters"),
        ("".join(chr(0x0660 + int(c)) for c in VALID[:17]) + "X", "Arabic-Indic digits"),
        ("１１０１０５１９４９１２３１００２X", "full-width digits (the roster folds them first)"),
        ("", "blank"),
    ],
)
def test_what_is_not_an_id_number(value, why):
    assert not id_number_valid(value), why


def test_every_birthday_of_a_leap_year_and_no_other_day():
    import datetime as dt

    day, valid = dt.date(2004, 1, 1), 0
    while day.year == 2004:
        body = f"120102{day:%Y%m%d}001"
        assert id_number_valid(body + id_check_digit(body))
        day += dt.timedelta(days=1)
        valid += 1
    assert valid == 366
    body = "120102200502290011"[:17]  # 2005 is not a leap year
    assert not id_number_valid(body + id_check_digit(body))


def test_a_body_of_the_wrong_length_has_no_check_digit():
    with pytest.raises(ValueError):
        id_check_digit("1234")
