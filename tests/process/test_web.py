"""`realm play --web` in a real headless browser: the page opens, the Tavern renders,
space typed into the page pauses the real engine and the page shows PAUSED.

The terminal is drawn on a canvas, so the page's text is read from what the browser
received over the websocket (the ANSI stream xterm.js draws); screenshots go to
test-artifacts/ for a person to look at. Chromium is Debian's (/usr/bin/chromium, which
.ci/run installs); playwright drives it and downloads nothing.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, make_hero, realm, wait_until

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Chromium's own calls home are refused on a closed network (and slow its start).
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"
ANSI = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")


class PageText:
    """Everything the page's terminal was sent, as text (escape codes dropped)."""

    def __init__(self) -> None:
        self.raw = bytearray()

    def add(self, payload: bytes | str) -> None:
        self.raw += payload.encode() if isinstance(payload, str) else payload

    def since(self, mark: int) -> str:
        return ANSI.sub("", bytes(self.raw[mark:]).decode("utf-8", errors="ignore"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_on_page(page: object, predicate: object, timeout: float, what: str, text: PageText) -> None:
    """Like wait_until, but lets playwright deliver the page's events meanwhile (its sync
    API only dispatches them inside its own calls)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        page.wait_for_timeout(200)  # type: ignore[attr-defined]
    raise AssertionError(f"timed out waiting for {what}; the page got: {text.since(0)[-1500:]!r}")


def test_the_tavern_plays_in_a_real_browser(tmp_path: Path, hatchling_dir: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("needs Debian's chromium (apt-get install chromium; .ci/run installs it)")
    save, _ = make_hero(tmp_path / "saves", hatchling_dir)
    saves, port = str(save.root.parent), free_port()
    cmd = [sys.executable, "-m", "tui.cli", "play", "--web", "--port", str(port), "--saves", saves]
    server = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        wait_until(lambda: listening(port) or server.poll() is not None, 60, "the web server")
        assert server.poll() is None, server.stdout.read() if server.stdout else ""
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1200, "height": 720})
            text = PageText()
            page.on("websocket", lambda ws: ws.on("framereceived", text.add))
            page.goto(f"http://127.0.0.1:{port}/")
            # The Tavern, with the engine up: the hero card and the status word.
            tavern = lambda: "TRAINING" in text.since(0) and "Level" in text.since(0)  # noqa: E731
            wait_on_page(page, tavern, 180, "the Tavern", text)
            page.screenshot(path=str(ARTIFACTS / "web-tavern.png"))
            mark = len(text.raw)
            page.locator(".xterm-helper-textarea").focus()
            page.keyboard.press("Space")
            wait_on_page(page, lambda: "PAUSED" in text.since(mark), 60, "PAUSED in the page", text)
            page.wait_for_timeout(1000)  # a frame or two, for the screenshot
            page.screenshot(path=str(ARTIFACTS / "web-paused.png"))
            browser.close()
        # The browser's key reached the real engine, not only the page.
        wait_until(lambda: json.loads(save.status.read_text()).get("state") == "paused", 30, "hero.json")
        assert (ARTIFACTS / "web-paused.png").stat().st_size > 10_000  # a drawn page, not a blank one
    finally:
        realm("stop", "--saves", saves)
        server.terminate()
        server.wait(30)
