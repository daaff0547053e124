"""`realm play --web`: the same Textual app in a browser, served by textual-serve.

Each browser tab runs its own `realm play --hero NAME` (textual-serve starts one per
connection, with Textual's web driver) and that attaches to the hero's engine like a
terminal would, so several tabs, a terminal and the CLI can watch the same DIO. The
engine is started here first, so the page has a hero to show as soon as it opens.
"""

from __future__ import annotations

import shlex
import sys

from engine.protocol.savedir import SaveDir

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def app_command(save: SaveDir) -> str:
    """The shell command textual-serve runs for each browser connection."""
    argv = [sys.executable, "-m", "tui.cli", "play", "--hero", save.name, "--saves", str(save.root.parent)]
    return shlex.join(argv)


def address(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def check_address(host: str, port: int) -> None:
    """Refuse what cannot work before anything starts: a port out of range, one in use."""
    import socket

    if not 1 <= port <= 65535:
        raise SystemExit(f"realm: --port {port} must be 1..65535")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise SystemExit(
                f"realm: cannot serve on {address(host, port)}: {exc.strerror or exc}. "
                "Pick another with --port (or --host)."
            ) from None


def serve(save: SaveDir, host: str, port: int) -> None:
    """Serve until Ctrl+C (the engine goes on training either way)."""
    from textual_serve.server import Server

    url = address(host, port)
    print(f"Serving {save.name.upper()} at {url}  (open it in a browser; Ctrl+C stops serving)", flush=True)
    if host not in LOCAL_HOSTS:
        print(
            f"  Note: {host} is reachable from other machines and the page has no login; anyone who can "
            "open it can pause, stop or change the hero. Over SSH prefer the default host and "
            f"`ssh -L {port}:localhost:{port} HOST`.",
            flush=True,
        )
    Server(app_command(save), host=host, port=port, title=f"Realm of Training — {save.name.upper()}").serve()
