"""The one exception type users see for expected failures."""


class PolyheadError(Exception):
    """An expected failure (bad input, bad file, bad config) with a one-line message."""
