"""Errors a user can act on, each with the exit status the CLI gives it.

Bad input (a manifest field, a model name, a shape) exits 2 before anything starts; a failed
experiment exits 1. Messages are one line naming what was wrong and what was expected.
"""


class HarnessError(Exception):
    """Base of the errors the CLI reports as one line instead of a traceback."""

    exit_code = 1


class BadInput(HarnessError):
    """The user asked for something that cannot be done as asked; nothing was started."""

    exit_code = 2


class ExperimentFailed(HarnessError):
    """The request was valid but running it failed."""

    exit_code = 1
