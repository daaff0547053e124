"""`realm serve`: DIO for every other tool, over an OpenAI-compatible HTTP API.

``python -m engine.oracle.serve --save-dir DIR [--host H] [--port P]`` (`realm serve`
starts it). FastAPI + uvicorn do the HTTP; the answers come from ``ShelfOracle``, which
reads loot from disk (the engine may be training meanwhile; it stays the only writer).

- ``GET /v1/models``: ``HERO@step-000200`` for every loot, plus ``HERO@latest``,
  ``HERO@best-METRIC`` and ``HERO@base``.
- ``POST /v1/chat/completions``: with or without ``stream``; the reply says which loot,
  step and weights answered (``realm`` in the body, ``x-realm-*`` headers). An unknown
  model is a 404 listing the ones there are.
- Bound to 127.0.0.1 unless ``--host`` says otherwise; every request needs
  ``Authorization: Bearer TOKEN``, the token generated into the save folder (mode 0600).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from engine.protocol.savedir import SaveDir

DEFAULT_PORT = 8765


def load_or_create_token(save: SaveDir) -> str:
    path = save.serve_token
    if path.is_file() and path.read_text().strip():
        return path.read_text().strip()
    token = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # never readable by others
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    path.chmod(0o600)
    return token


def error(status: int, message: str, code: str, param: str | None = None) -> Any:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}
    return JSONResponse(status_code=status, content=body)


def build_app(save: SaveDir, token: str, loaded: int = 2) -> Any:
    from engine.oracle.chat import OracleError, Settings
    from engine.oracle.shelf import ShelfOracle
    from engine.store import commands as vault_commands

    oracle = ShelfOracle(save, loaded=loaded)
    hero = oracle.config.name
    app = FastAPI(title=f"Realm of Training: {hero}")

    def model_ids() -> list[str]:
        rows = oracle.rows()
        best = [f"best-{metric.replace('_', '-')}" for metric, _ in vault_commands.best_by_metric(rows)]
        return [f"{hero}@{r['name']}" for r in rows] + [f"{hero}@{x}" for x in ("latest", *best, "base")]

    @app.middleware("http")
    async def bearer(request: Request, call_next: Any) -> Any:
        given = request.headers.get("authorization", "")
        if not secrets.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return error(401, f"a bearer token is required: the one in {save.serve_token}", "invalid_api_key")
        return await call_next(request)

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        now = int(time.time())
        return {
            "object": "list",
            "data": [{"id": m, "object": "model", "created": now, "owned_by": "realm"} for m in model_ids()],
        }

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        try:
            body = await request.json()
            messages = [{"role": m["role"], "content": content_text(m["content"])} for m in body["messages"]]
            model = str(body["model"])
        except (ValueError, KeyError, TypeError) as exc:
            return error(400, f"a chat request needs model and messages ({exc})", "bad_request")
        if not messages or messages[-1]["role"] != "user":
            return error(400, "the last message must be the user's", "bad_request", "messages")
        wanted = model.split("@", 1)[1] if "@" in model else "latest"
        if model.split("@", 1)[0] != hero:
            return error(
                404, f"no model {model!r}; models: {', '.join(model_ids())}", "model_not_found", "model"
            )
        try:
            name, step, _folder = oracle.resolve(wanted)
        except KeyError:
            return error(
                404, f"no model {model!r}; models: {', '.join(model_ids())}", "model_not_found", "model"
            )
        settings = Settings(
            temperature=float(body.get("temperature") or 0.0),
            top_p=float(body.get("top_p") or 1.0),
            max_new_tokens=int(
                body.get("max_completion_tokens")
                or body.get("max_tokens")
                or oracle.config.oracle.max_new_tokens
            ),
            seed=int(body.get("seed") or 0),
        )
        served = f"{hero}@{name}"
        chat_id = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        if body.get("stream"):
            return StreamingResponse(
                stream(oracle, name, messages, settings, served, chat_id), media_type="text/event-stream"
            )
        try:
            answer = oracle.ask(name, messages, settings)
        except OracleError as exc:
            return error(409, str(exc), "loot_unavailable", "model")
        usage = {
            "prompt_tokens": 0,
            "completion_tokens": answer.new_tokens,
            "total_tokens": answer.new_tokens,
        }
        return {
            "id": chat_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": served,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer.text},
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
            "realm": {"loot": answer.loot, "step": step, "weights_hash": answer.weights_hash},
        }

    return app


def content_text(content: Any) -> str:
    """OpenAI content: a string, or a list of parts of which the text parts count."""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def stream(
    oracle: Any, name: str, messages: list[dict[str, str]], settings: Any, model: str, chat_id: str
) -> Iterator[str]:
    """Server-sent events in OpenAI's chunk format; the generation runs on a thread and
    hands each piece over a queue."""
    from engine.oracle.chat import OracleError

    pieces: queue.Queue[tuple[str, Any]] = queue.Queue()

    def run() -> None:
        try:
            answer = oracle.ask(name, messages, settings, lambda text: pieces.put(("text", text)))
            pieces.put(("done", answer))
        except OracleError as exc:
            pieces.put(("error", str(exc)))

    threading.Thread(target=run, daemon=True).start()
    created = int(time.time())

    def chunk(delta: dict[str, str], finish: str | None, extra: dict[str, Any] | None = None) -> str:
        body = {
            "id": chat_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **(extra or {}),
        }
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""}, None)
    while True:
        kind, value = pieces.get()
        if kind == "text":
            yield chunk({"content": value}, None)
        elif kind == "error":
            yield f"data: {json.dumps({'error': {'message': value, 'code': 'loot_unavailable'}})}\n\n"
            break
        else:
            realm = {"loot": value.loot, "step": value.step, "weights_hash": value.weights_hash}
            yield chunk({}, "stop", {"realm": realm})
            break
    yield "data: [DONE]\n\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.oracle.serve")
    parser.add_argument("--save-dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--loaded", type=int, default=2, help="loot kept loaded (least recently used dropped)"
    )
    args = parser.parse_args(argv)
    from engine.run.main import quiet_libraries

    quiet_libraries()
    import uvicorn

    from engine.oracle.chat import OracleError

    save = SaveDir(args.save_dir)
    try:
        app = build_app(save, load_or_create_token(save), args.loaded)
    except OracleError as exc:
        print(f"realm serve: {exc}", file=sys.stderr)
        return 1
    print(
        f"Serving {save.root.name} at http://{args.host}:{args.port}/v1 (token: {save.serve_token})",
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
