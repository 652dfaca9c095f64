import pytest

from selfimprove.grading.numeric import canonical_number, extract_number, numbers_equal


@pytest.mark.parametrize(
    "text, expected",
    [
        ("18 - 3 = 15. The answer is 15.", "15"),
        ("So she paid $1,234.50 in total. The answer is $1,234.50.", "1234.5"),
        ("The answer is -7 degrees.", "-7"),
        ("It costs $-3", "-3"),
        ("It costs -$3", "-3"),
        ("3-5 = -2", "-2"),
        ("answer: 12 kg", "12"),
        ("Answer = 50%", "50"),
        ("#### 1,000", "1000"),
        ("The answer is 7.0", "7"),
        ("The answer is 0.50.", "0.5"),
        ("x = 3.14159.", "3.14159"),
        ("He has 5 apples, then 8. The answer is 13! Next question 99", "13"),
        ("There are 10 of them, so 10 + 2 = 12", "12"),
        ("nothing numeric here", None),
        ("", None),
        ("The answer is unknown", None),
    ],
)
def test_extract_number(text, expected):
    assert extract_number(text) == expected


def test_answer_phrase_wins_over_later_numbers():
    assert extract_number("The answer is 4.\n\nQuestion: Tom has 9 pens") == "4"


def test_last_answer_phrase_is_used():
    assert extract_number("First the answer is 3, but wait, the answer is 5.") == "5"


def test_canonical_forms_compare_by_value():
    assert canonical_number("1,000") == "1000"
    assert canonical_number("$ 12") == "12"
    assert numbers_equal("72", "72.00")
    assert numbers_equal("-0.5", "-0.50")
    assert not numbers_equal("72", "27")
    assert not numbers_equal(None, "3")
    assert not numbers_equal("3", None)
