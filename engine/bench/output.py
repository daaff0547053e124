"""How every `realm bench` measurement speaks: progress lines while it runs (not with
--json), then the result as one JSON object or as aligned "key value" lines."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def progress(as_json: bool) -> Callable[[str], None]:
    """Where progress lines go: the terminal, or nowhere when the output is JSON."""
    if as_json:
        return lambda _line: None
    return lambda line: print(line, flush=True)


def show(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
        return
    width = max((len(key) for key in result), default=0) + 2
    for key, value in result.items():
        print(f"  {key:{width}} {value}")
