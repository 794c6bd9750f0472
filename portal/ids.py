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
