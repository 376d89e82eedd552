"""The one exception type for problems the user can fix.

Library code raises `KerasmlError` with a message that says what is wrong and what to do;
the CLI prints it as a single `error:` line and exits with code 2, never with a traceback.
"""


class KerasmlError(Exception):
    """Bad input or environment: one line for the user, exit code 2."""
