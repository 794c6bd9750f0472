"""The secret key of a server that was given none: made once, kept in the data folder."""

import os
import secrets
import tempfile
from pathlib import Path


def load_or_create(path: Path) -> str:
    """The key stored in `path`, written there first (readable by its owner only) if missing.

    Several processes may start at once: the key is written to a private temporary file
    and linked into place, which fails if another process got there first, so every
    process ends up with the same key.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".secret-")
        try:
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_urlsafe(50))
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
    return path.read_text().strip()
