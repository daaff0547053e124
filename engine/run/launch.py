"""`realm train --gpus N`'s launcher: torchrun, run in this process, tuned for a run that
must save its loot before it ends.

torchrun starts each rank in its own session, so a Ctrl+C reaches only this process;
torchrun passes it on (rank 0 saves loot and stops, the others follow it). Left to its
defaults it then SIGKILLed the ranks 30 s later — a big model's stop loot can take longer
— and printed a traceback under a run that had stopped cleanly. Here:

- the ranks get ``TORCH_ELASTIC_SHUTDOWN_TIMEOUT`` (default here 900 s) to finish;
- SIGHUP is ignored, as the engine ignores it: the run outlives its terminal (torchrun
  would have passed it on, and killed the ranks when they ignored it);
- the ending after a signal is one line. A rank that failed still ends in torchrun's own
  summary (``ChildFailedError``), which says which rank and why.
"""

from __future__ import annotations

import os
import signal
import sys

STOP_LOOT_SECONDS = "900"  # how long the ranks may take to stop after Ctrl+C or SIGTERM


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    os.environ.setdefault("TORCH_ELASTIC_SHUTDOWN_TIMEOUT", STOP_LOOT_SECONDS)
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.run import get_args_parser
    from torch.distributed.run import main as torchrun

    args = sys.argv[1:] if argv is None else argv
    if "--signals-to-handle" in get_args_parser()._option_string_actions:  # newer torch
        args = ["--signals-to-handle=SIGTERM,SIGINT,SIGQUIT", *args]
    try:
        torchrun(args)
    except SignalException as exc:
        print(f"realm: the ranks were sent {exc.sigval.name} and have ended", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
