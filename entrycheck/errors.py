"""User-facing errors: each one becomes a single stderr line and exit code 2."""


class EntrycheckError(Exception):
    """A problem with the user's input (image, entry, function, rule file)."""
