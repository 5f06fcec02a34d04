"""The exception types for bad input: the CLI prints the message and exits 2."""


class DsdError(Exception):
    """Bad input from the user: a message that says what is wrong and how to fix it."""


class ParamError(DsdError):
    """A bad value of one named parameter, in the library's terms.

    The CLI maps the parameter to its flag (`group_w` -> `--group-w`); a notebook user
    sees the parameter's own name.
    """

    def __init__(self, param: str, what: str):
        super().__init__(f"{param}: {what}")
        self.param, self.what = param, what

    def as_flag(self) -> str:
        return f"--{self.param.replace('_', '-')}: {self.what}"
