"""Stopping a training run cleanly on SIGTERM and SIGINT.

Spot and preemptible machines, Kubernetes and Slurm send SIGTERM some seconds before they kill a
job; Ctrl-C sends SIGINT. The first signal asks the loop to stop: it finishes the optimiser step it
is in, writes a checkpoint, says how to resume and raises RunStopped (the command line exits with
128 + the signal number: 143 for SIGTERM, 130 for SIGINT). A second signal leaves at once
(StopNow). Handlers are installed only for the duration of the run and only from the main thread
(signal handlers cannot be set elsewhere); the previous handlers are restored afterwards.
"""
from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any, Callable

from ..errors import RunStopped, StopNow

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class GracefulStop:
    """A context manager that turns the first SIGTERM/SIGINT into a request the loop polls."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "GracefulStop":
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._restore()

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            self._restore()
            raise StopNow(signum)
        self.signum = signum
        self.say(f"{signal.Signals(signum).name} received: stopping after this optimiser step with a checkpoint "
                 f"(send it again to stop at once)")

    def requested(self, accelerator: Any = None) -> int | None:
        """The signal that asked to stop, or None; with several processes, any process's request
        stops all of them at the same step (otherwise the others would wait forever)."""
        if accelerator is not None and getattr(accelerator, "num_processes", 1) > 1:
            import torch

            flag = torch.tensor([self.signum or 0], device=accelerator.device)
            got = int(accelerator.reduce(flag, reduction="max").item())
            return got or None
        return self.signum

    def stop_here(self, accelerator: Any, step: int, saved_step: int, save: Callable[[], None], where: Path) -> None:
        """Called between optimiser steps: after a stop signal, `save` a checkpoint unless the last
        one already holds `step`, then raise RunStopped (nothing to save before the first step)."""
        signum = self.requested(accelerator)
        if signum is None:
            return
        name, status = signal.Signals(signum).name, 128 + signum
        if step == 0:
            raise RunStopped(f"stopped by {name} before the first optimiser step: nothing to resume, run the command again", status)
        if saved_step != step:
            save()
        raise RunStopped(f"stopped by {name}: checkpoint of step {step} saved in {where}; "
                         f"continue with the same command plus --resume", status)
