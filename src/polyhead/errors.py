"""The one exception type users see for expected failures."""


class PolyheadError(Exception):
    """An expected failure (bad input, bad file, bad config) with a one-line message."""


class DataError(PolyheadError):
    """Bad training data, reported with file, line and reason."""
