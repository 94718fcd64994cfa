"""The one exception family a user can cause; the CLI prints it as one line and exits non-zero."""


class R1kitError(Exception):
    """A problem with the user's input or setup, with a message that names the fix."""
