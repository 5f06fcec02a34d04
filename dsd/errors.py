"""The one exception type for bad input: the CLI prints its message and exits 2."""


class DsdError(Exception):
    """Bad input from the user: a message that says what is wrong and how to fix it."""
