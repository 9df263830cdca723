"""The one exception type users see for expected failures."""


class PolyheadError(Exception):
    """An expected failure (bad input, bad file, bad config) with a one-line message."""


class DataError(PolyheadError):
    """Bad training data, reported with file, line and reason."""


class RunStopped(Exception):
    """A run that stopped on request (SIGTERM, SIGINT) after saving what it had: not a failure.

    `status` is the exit status the command line returns (128 + the signal number)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class StopNow(BaseException):
    """A second stop signal: leave at once, without waiting for the step or writing anything more
    (checkpoints are written atomically, so the last complete one stays readable)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped at once by a second signal {signum}")
        self.status = 128 + signum
