"""Exceptions with a meaning for the command line: a usage error exits with status 2."""


class UsageError(ValueError):
    """The caller asked for something that cannot be done as asked (bad option, unknown name).

    The message says what to fix; the CLI prints it on one line and exits with status 2.
    """
