"""core/checks.py: the one place a range rule and its message are written."""

from __future__ import annotations

import pytest

from echo_lib.core.checks import check_int, check_number, is_int, is_number


@pytest.mark.parametrize(
    ("value", "an_int", "a_number"),
    [(3, True, True), (2.5, False, True), (True, False, False), ("3", False, False)],
)
def test_a_bool_is_neither_an_int_nor_a_number(value: object, an_int: bool, a_number: bool) -> None:
    assert (is_int(value), is_number(value)) == (an_int, a_number)


def test_range_checks_name_the_value_and_the_rule() -> None:
    assert check_int("clients", 3, 1, 10) == 3 and check_number("delay", 1, 0, 2) == 1.0
    with pytest.raises(ValueError, match=r"^clients must be an int in 1\.\.10, got 11$"):
        check_int("clients", 11, 1, 10)
    with pytest.raises(ValueError, match=r"^clients must be an int of at least 1, got True$"):
        check_int("clients", True, 1)
    with pytest.raises(ValueError, match=r"^delay must be a number in 0\.\.2, got nan$"):
        check_number("delay", float("nan"), 0, 2)
