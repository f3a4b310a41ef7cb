"""Errors the user can act on.

Anything raised as a `UserError` reaches the terminal as one line and exit code 2, never as a
traceback; the message must say what is wrong and what to do about it, and must never contain
the API key.
"""


class UserError(Exception):
    """A problem with input, devices, key or model that the user can fix."""

    exit_code = 2


class BadArgs(ValueError):
    """A function call's arguments are malformed (the model's, checked by a tool or the
    guide); the message tells the model what to send."""
