import copy
import re

import pytest

from chalicelib.signup import InvalidSignupEvent, tenant_from_confirmation
from chalicelib.tenants import NewTenant
from tests.support import load_event

SUB = "5f3a1c2e-8b9d-4e7f-a123-4b5c6d7e8f90"


@pytest.fixture
def confirm_sign_up():
    return load_event("post_confirmation.json")


def with_attributes(event, **changes):
    event = copy.deepcopy(event)
    attributes = event["request"]["userAttributes"]
    for name, value in changes.items():
        if value is None:
            attributes.pop(name, None)
        else:
            attributes[name] = value
    return event


def test_given_a_confirmed_sign_up_when_read_then_the_new_tenant_is_sub_email_name(
    confirm_sign_up,
):
    assert tenant_from_confirmation(confirm_sign_up) == NewTenant(
        tenant_id=SUB, email="ada@example.com", name="Ada Ltd"
    )


def test_given_a_forgot_password_confirmation_when_read_then_none():
    assert tenant_from_confirmation(load_event("post_confirmation_forgot_password.json")) is None


@pytest.mark.parametrize(
    "source", ["PreSignUp_SignUp", "PostAuthentication_Authentication", "", None]
)
def test_given_another_trigger_source_when_read_then_none(confirm_sign_up, source):
    event = {**confirm_sign_up, "triggerSource": source}

    assert tenant_from_confirmation(event) is None


@pytest.mark.parametrize("event", [None, [], "PostConfirmation_ConfirmSignUp"])
def test_given_not_an_event_object_when_read_then_none(event):
    assert tenant_from_confirmation(event) is None


@pytest.mark.parametrize("missing", ["sub", "email"])
def test_given_a_sign_up_without_sub_or_email_when_read_then_invalid_signup_event(
    confirm_sign_up, missing
):
    with pytest.raises(InvalidSignupEvent):
        tenant_from_confirmation(with_attributes(confirm_sign_up, **{missing: None}))


@pytest.mark.parametrize("missing", ["sub", "email"])
def test_given_a_blank_sub_or_email_when_read_then_invalid_signup_event(
    confirm_sign_up, missing
):
    with pytest.raises(InvalidSignupEvent):
        tenant_from_confirmation(with_attributes(confirm_sign_up, **{missing: "  "}))


def test_given_a_sign_up_without_user_attributes_when_read_then_invalid_signup_event(
    confirm_sign_up,
):
    event = {**confirm_sign_up, "request": {}}

    with pytest.raises(InvalidSignupEvent):
        tenant_from_confirmation(event)


@pytest.mark.parametrize("name", [None, "", "   "])
def test_given_no_name_when_read_then_the_name_falls_back_to_the_email(confirm_sign_up, name):
    event = with_attributes(confirm_sign_up, name=name)

    assert tenant_from_confirmation(event).name == "ada@example.com"


@pytest.mark.parametrize(
    "sub",
    ["ada@example.com", "a b", "a:b", "a/b", "a$b", "a*b", "é-unicode", "x" * 81],
    ids=["at-sign", "space", "colon", "slash", "dollar", "star", "non-ascii", "81-chars"],
)
def test_given_a_sub_not_usable_as_an_execution_name_when_read_then_invalid_signup_event(
    confirm_sign_up, sub
):
    with pytest.raises(InvalidSignupEvent):
        tenant_from_confirmation(with_attributes(confirm_sign_up, sub=sub))


def test_given_surrounding_whitespace_when_read_then_values_are_trimmed(confirm_sign_up):
    event = with_attributes(
        confirm_sign_up, sub=f" {SUB} ", email=" ada@example.com ", name=" Ada Ltd "
    )

    assert tenant_from_confirmation(event) == NewTenant(SUB, "ada@example.com", "Ada Ltd")


# --- the door: pre sign-up -----------------------------------------------------------
def pre_sign_up(name, email="ada@example.com"):
    return {"triggerSource": "PreSignUp_SignUp",
            "request": {"userAttributes": {"email": email, "name": name}},
            "response": {"autoConfirmUser": False}}


@pytest.mark.parametrize("name", [
    "Ada Ltd", "Zoë & Søn — Ltd", "株式会社サンプル", "O'Brien-Smith (UK) Ltd.", "x" * 128,
    "Công ty Việt Nam", "Cafe\u0301 Noir",  # composed and decomposed accents
    "שָּׁלוֹם בע\"מ",  # Hebrew fully pointed: three marks on one letter
    "བསྒྲུབས",  # a Tibetan stack
    "ශ්\u200dරී Lanka Holdings",  # Sinhala: a ZWJ after a virama makes the letter
    "ന്\u200d Traders",  # Malayalam: a chillu letter written with a ZWJ
    "क्\u200cष Industries",  # Devanagari: a ZWNJ after a virama keeps the half form
    "می\u200cخواهم شرکت",  # Persian: a ZWNJ between two joining letters
    "I ❤️ NY Bagels", "1️⃣ Stop Shop",  # emoji with their variation selector
])
def test_given_an_ordinary_name_when_signing_up_then_the_event_passes_unchanged(name):
    from chalicelib.signup import check_sign_up

    event = pre_sign_up(name)
    assert check_sign_up(copy.deepcopy(event)) == event


@pytest.mark.parametrize("name, why", [
    ("", "required"), ("a\tb", "U+0009"), ("x" * 129, "at most 128"),
    ("Acme\x1b[2K\r\x1b[32mTotally Legit Bank\x1b[0m", "U+001B"),
    ("Acme\nLtd", "U+000A"), ("Acme \u202eknaB", "U+202E"), ("a\u2066b", "U+2066"),
    ("nul\x00", "U+0000"), ("del\x7f", "U+007F"),
    # invisible: zero-width characters, marks, separators, tags, annotations
    ("Ac\u200bme", "U+200B"), ("Ac\u200cme", "U+200C"), ("Ac\u200dme", "U+200D"),
    ("Ac\u2060me", "U+2060"), ("\ufeffAcme", "U+FEFF"), ("Acme\u200e", "U+200E"),
    ("Acme\u200f", "U+200F"), ("Acme\u2028Ltd", "U+2028"), ("Acme\u2029Ltd", "U+2029"),
    ("Acme\U000e0041\U000e0042", "U+E0041, U+E0042"), ("Acme\U000e0001", "U+E0001"),
    ("Acme\U000e007f", "U+E007F"), ("Acme\ufff9Ltd\ufffa\ufffb", "U+FFF9, U+FFFA, U+FFFB"),
    ("Acme\u3164", "U+3164"), ("Ac\u00adme", "U+00AD"), ("Ac\u034fme", "U+034F"),
    ("\ufe0fAcme", "U+FE0F"), ("Ac\u061cme", "U+061C"),
    # a joiner where no script needs one: Latin letters, emoji made one picture
    ("Bank\u200cof\u200cAmerica", "U+200C"), ("👨\u200d👩\u200d👧 Family Co", "U+200D"),
    # marks stacked past any script's need ("Zalgo")
    ("Z\u0336\u0337\u0338\u0339\u033a", "more than 4 accents or marks"),
    ("Acme" + "\u0301" * 30, "more than 4 accents or marks"),
])
def test_given_a_name_no_admin_should_see_when_signing_up_then_refused_with_why(name, why):
    from chalicelib.signup import SignUpRefused, check_sign_up

    with pytest.raises(SignUpRefused, match=re.escape(why)) as refused:
        check_sign_up(pre_sign_up(name))
    assert str(refused.value).startswith("Company name")


def test_given_a_blank_name_when_signing_up_then_refused_as_required():
    from chalicelib.signup import SignUpRefused, check_sign_up

    with pytest.raises(SignUpRefused, match="Company name is required"):
        check_sign_up(pre_sign_up("    "))


def test_given_an_email_over_254_characters_when_signing_up_then_refused():
    from chalicelib.signup import SignUpRefused, check_sign_up

    check_sign_up(pre_sign_up("Ada", "a" * 242 + "@example.com"))  # 254: fine
    with pytest.raises(SignUpRefused, match="Email must be at most 254"):
        check_sign_up(pre_sign_up("Ada", "a" * 243 + "@example.com"))


def test_given_four_marks_on_a_letter_when_signing_up_then_it_passes_and_five_do_not():
    from chalicelib.signup import SignUpRefused, check_sign_up

    check_sign_up(pre_sign_up("Acmq" + "\u0301\u0302\u0303\u0304"))  # no precomposed q
    with pytest.raises(SignUpRefused, match="more than 4"):
        check_sign_up(pre_sign_up("Acmq" + "\u0301\u0302\u0303\u0304\u0305"))


def test_given_an_invisible_character_in_the_email_when_signing_up_then_refused_naming_it():
    from chalicelib.signup import SignUpRefused, check_sign_up

    with pytest.raises(SignUpRefused, match=r"^Email must not contain invisible.*U\+200B"):
        check_sign_up(pre_sign_up("Ada", "ada\u200b@example.com"))
