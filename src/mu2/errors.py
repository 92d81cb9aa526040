"""The one exception type for problems a user can fix (bad file, bad flag, missing model).

The CLI turns it into a single line on stderr and exit code 2; the library raises it
instead of asserting on anything a user controls. Messages say what is wrong, with which
file or option, and how to fix it.
"""

from __future__ import annotations


class Mu2Error(Exception):
    """A user-fixable problem. ``str(err)`` is the one line the CLI prints."""

    def __init__(self, message: str, *, path: str | None = None, fix: str | None = None):
        self.path = path
        self.message = message
        self.fix = fix
        parts = [f"{path}: {message}" if path else message]
        if fix:
            parts.append(f"fix: {fix}")
        super().__init__(" -- ".join(parts))
