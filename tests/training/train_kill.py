"""Run the `polyhead` command line and hard-kill it right after the checkpoint of step N is written.

    python tests/training/train_kill.py N train CONFIG --output DIR ...

A test's stand-in for a power cut or an out-of-memory kill: SIGKILL, so no `finally`, no
atexit and no Ctrl-C checkpoint runs. Under `accelerate launch` every process kills itself
after that same checkpoint. The loop has no hook for this: the script wraps the loop's
top-level `save_checkpoint` from outside.
"""
from __future__ import annotations

import os
import signal
import sys

from polyhead.cli.main import main
from polyhead.training import loop


def run(kill_at: int, argv: list[str]) -> int:
    """Run the CLI with argv; SIGKILL this process once the checkpoint at step kill_at exists."""
    save = loop.save_checkpoint

    def save_then_die(run: loop.Run, state: loop.TrainState) -> None:
        save(run, state)
        if state.global_step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    loop.save_checkpoint = save_then_die
    return main(argv)


if __name__ == "__main__":
    sys.exit(run(int(sys.argv[1]), sys.argv[2:]))
