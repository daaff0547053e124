"""A headless game for `realm bench --game`: `python -m tui.headless SAVE_DIR [--first-frame]`.

With ``--first-frame`` it prints the wall-clock time (time.time()) of its first
rendered frame and exits; otherwise it plays attached to the engine (rendering every
event, as on a screen) until the engine stops.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from engine.protocol import messages as p
from engine.protocol.savedir import SaveDir
from tui.app import RealmApp
from tui.link import EngineControl
from tui.messages import EngineMessage


class FirstFrameApp(RealmApp):
    def on_ready(self) -> None:
        print(f"first_frame {time.time():.6f}", flush=True)
        self.exit("bench")


class WatchingApp(RealmApp):
    async def on_engine_message(self, message: EngineMessage) -> None:
        await super().on_engine_message(message)
        if isinstance(message.event, p.Stopped):
            self.exit("stopped")


def main() -> int:
    control = EngineControl(SaveDir(Path(sys.argv[1])))
    if "--first-frame" in sys.argv:
        FirstFrameApp(connector=control.connect, engine_alive=lambda: False).run(headless=True, size=(80, 24))
        return 0
    WatchingApp(connector=control.connect).run(headless=True, size=(80, 24))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
