"""Errors a user sees as one clear line."""


class KgragError(Exception):
    """A user-facing failure: the CLI prints its message alone and exits non-zero."""
