"""Rules for the IDs people choose: apps, concepts, datasets, models, versions."""

import re

from django.core.validators import RegexValidator

# Letters, digits, "-" and "_", starting with a letter or digit: safe in URLs and CSV.
ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
ID_RE = re.compile(rf"^{ID_PATTERN}$")
ID_HELP = "Letters, digits, - and _ (up to 64 characters, starting with a letter or digit)."

validate_id = RegexValidator(ID_RE, ID_HELP)


def is_valid_id(value: str) -> bool:
    return bool(ID_RE.match(value))


def as_number(value: object) -> int | None:
    """A version number or primary key from a request: ASCII digits that fit a database
    integer, else None (so "²", "-1" or "1e9999" can't reach a query)."""
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        return None
    return int(text)
