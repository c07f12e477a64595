"""Exceptions with a meaning for the command line: a usage error exits with status 2, an
interrupted run with status 3 (incomplete)."""


class UsageError(ValueError):
    """The caller asked for something that cannot be done as asked (bad option, unknown name).

    The message says what to fix; the CLI prints it on one line and exits with status 2.
    """


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived: the run stops, and what it gathered is reported.  A
    BaseException, like KeyboardInterrupt, so that no `except Exception` swallows it."""
