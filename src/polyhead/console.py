"""What polyhead tells a person: status lines on stderr and progress bars. One copy of each.

stdout stays machine-readable (embeddings, predictions); everything for people goes to stderr.
"""
from __future__ import annotations

import sys
from typing import Any

PROG = "polyhead"


def say(message: str, prog: str = PROG) -> None:
    """A status line on stderr, prefixed with the program name, flushed at once."""
    print(f"{prog}: {message}", file=sys.stderr, flush=True)


class NullBar:
    """A progress bar that shows nothing (progress off, or not the main process)."""

    n = 0

    def update(self, n: int = 1) -> None:
        """Count n more items, silently."""
        self.n += n

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        """Ignore a status text."""

    def close(self) -> None:
        """Nothing to close."""

    def __enter__(self) -> "NullBar":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def progress(
    total: int | None, enabled: bool, desc: str, unit: str = "text", initial: int = 0, position: int | None = None
) -> Any:
    """A tqdm bar on stderr when enabled, else a NullBar; both work as context managers."""
    if not enabled:
        bar = NullBar()
        bar.n = initial
        return bar
    from tqdm.auto import tqdm

    return tqdm(
        total=total, initial=initial, desc=desc, unit=unit, unit_scale=unit != "batch", position=position,
        dynamic_ncols=True, smoothing=0.1,
    )


def auto_precision_note(chosen: str) -> str:
    """Why `auto` chose `chosen`, and how to get exact fp32 when it did not."""
    if chosen == "fp32":
        return "auto: no native bf16 here, so exact fp32"
    return "auto; use --precision fp32 for exact fp32"


def announce_precision(encoder: Any, requested: str) -> None:
    """Say which precision `auto` chose, so a user who needs exact fp32 knows to ask for it."""
    if requested == "auto":
        say(f"precision {encoder.precision} on {encoder.device.type} ({auto_precision_note(encoder.precision)})")
