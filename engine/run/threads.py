"""How many CPU threads torch gets: ``train.threads``, never more than this process may run on.

More threads than cores is oversubscription: torch's intra-op threads wait on each other
and a step gets slower, not faster (`realm train --threads 999` on this 2-core machine,
the hatchling: 72-76 tokens/s as asked, ~10,400 lowered to 2). A hero's config may come from a bigger machine, so a setting above the
cores here is lowered with a warning rather than refused: the hero still starts.
"""

from __future__ import annotations

import os


def usable_cores() -> int:
    """The CPUs this process may run on (a container's or taskset's share, not the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS has no affinity call
        return max(1, os.cpu_count() or 1)


def threads_for(asked: int, cores: int) -> tuple[int, str | None]:
    """The threads to use for ``train.threads`` = ``asked`` (0: torch decides, returned
    as 0), and a warning when it had to be lowered."""
    if asked <= cores:
        return asked, None
    return cores, f"train.threads {asked} is more than the {cores} CPU cores here: using {cores}"
