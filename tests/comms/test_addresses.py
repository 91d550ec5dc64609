"""Address rules: the fast email path never accepts what Django's validator rejects."""

import pytest
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator

from comms import errors
from comms.addresses import _SIMPLE_EMAIL, normalise_email, normalise_phone

SAMPLES = [
    "a@example.com", "first.last+tag@sub.example.co.uk", "x@localhost", "a@b.c", "a@-bad.com", "a@bad-.com",
    "a..b@example.com", ".a@example.com", "a.@example.com", "a@example.123", "a@[127.0.0.1]", '"quoted x"@example.com',
    "o'brien@example.ie", "a@example.com\n", "a b@example.com", "a@exa_mple.com", "a@" + "l" * 64 + ".com",
    "UPPER@EXAMPLE.COM", "a@xn--bcher-kva.example", "a@example.c0m", "#!$%&'*+-/=?^_`{}|~@example.org",
]


@pytest.mark.parametrize("address", SAMPLES)
def test_fast_path_is_a_subset_of_djangos_validator(address):
    if _SIMPLE_EMAIL.match(address):
        EmailValidator()(address)  # must not raise


@pytest.mark.parametrize("address", SAMPLES)
def test_normalise_email_agrees_with_django(address):
    try:
        EmailValidator()(address.strip())
        django_ok = True
    except ValidationError:
        django_ok = False
    try:
        normalise_email(address)
        ours_ok = True
    except errors.InvalidAddress:
        ours_ok = False
    assert ours_ok == (django_ok and "\n" not in address.strip())


def test_normalisation():
    assert normalise_email("  Ada@Example.COM ") == "Ada@example.com"
    assert normalise_email("a@Bücher.example") == "a@xn--bcher-kva.example"
    assert normalise_phone("+442071838750") == "+442071838750"
    with pytest.raises(errors.InvalidAddress):
        normalise_phone("+1555")
