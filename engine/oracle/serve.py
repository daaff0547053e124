"""`realm serve`: DIO for every other tool, over an OpenAI-compatible HTTP API.

``python -m engine.oracle.serve --save-dir DIR [--host H] [--port P]`` (`realm serve`
starts it). FastAPI + uvicorn do the HTTP; the answers come from ``ShelfOracle``, which
reads loot from disk (the engine may be training meanwhile; it stays the only writer).

- ``GET /v1/models``: ``HERO@step-000200`` for every loot, plus ``HERO@latest``,
  ``HERO@best-METRIC`` and ``HERO@base``; ``GET /v1/models/ID`` one of them.
- ``POST /v1/chat/completions``: with or without ``stream``; ``stop``, ``seed``,
  ``temperature``, ``top_p``, ``max_tokens`` honoured, ``n`` > 1 and tool turns refused
  (engine/oracle/chat_request.py); the reply says which loot, step and weights answered
  (``realm`` in the body). The model is ``HERO@LOOT``, ``HERO`` (latest) or a bare loot
  name; an unknown one is a 404 listing the ones there are.
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
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.oracle.chat_request import ChatRequest, RequestError, StopFilter, read_chat
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
    from engine.oracle.shelf import ShelfOracle

    oracle = ShelfOracle(save, loaded=loaded)
    models = Models(oracle, oracle.config.name)
    app = FastAPI(title=f"Realm of Training: {models.hero}")

    @app.middleware("http")
    async def bearer(request: Request, call_next: Any) -> Any:
        given = request.headers.get("authorization", "")
        if not secrets.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return error(401, f"a bearer token is required: the one in {save.serve_token}", "invalid_api_key")
        return await call_next(request)

    @app.get("/v1/models")
    def list_models() -> dict[str, Any]:
        now = int(time.time())
        return {"object": "list", "data": [models.card(m, now) for m in models.ids()]}

    @app.get("/v1/models/{model_id:path}")
    def one_model(model_id: str) -> Any:
        """One model (``client.models.retrieve``): any name a chat request accepts."""
        try:
            name, _step = models.find(model_id)
        except KeyError:
            return models.not_found(model_id)
        return models.card(f"{models.hero}@{name}", int(time.time()))

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        return await chat_reply(request, oracle, models)

    @app.exception_handler(StarletteHTTPException)
    async def not_found(_request: Request, exc: StarletteHTTPException) -> Any:
        # OpenAI-shaped, so a client shows the reason instead of failing to parse it
        routes = "GET /v1/models, GET /v1/models/ID, POST /v1/chat/completions"
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
        return error(exc.status_code, f"{exc.detail}: this server answers {routes}", code)

    @app.exception_handler(Exception)
    async def failed(_request: Request, exc: Exception) -> Any:
        # a bug or a loot that breaks mid-answer: still JSON a client can show, not "Internal Server Error"
        body = {
            "error": {"message": f"the server failed: {type(exc).__name__}: {exc}", "type": "server_error"}
        }
        return JSONResponse(status_code=500, content=body)

    return app


class Models:
    """The model ids a client may name (HERO@LOOT, HERO, a bare loot name) and the loot each is."""

    def __init__(self, oracle: Any, hero: str) -> None:
        self.oracle, self.hero = oracle, hero

    def ids(self) -> list[str]:
        from engine.store import commands as vault_commands

        rows = self.oracle.rows()
        best = [f"best-{metric.replace('_', '-')}" for metric, _ in vault_commands.best_by_metric(rows)]
        return [f"{self.hero}@{r['name']}" for r in rows] + [
            f"{self.hero}@{x}" for x in ("latest", *best, "base")
        ]

    def find(self, model_id: str) -> tuple[str, int]:
        """(loot name, step); KeyError for a model there is not."""
        name, step, _folder = self.oracle.resolve(loot_of(model_id, self.hero))
        return name, step

    def not_found(self, model_id: str) -> Any:
        return error(
            404, f"no model {model_id!r}; models: {', '.join(self.ids())}", "model_not_found", "model"
        )

    @staticmethod
    def card(model_id: str, now: int) -> dict[str, Any]:
        return {"id": model_id, "object": "model", "created": now, "owned_by": "realm"}


async def chat_reply(request: Request, oracle: Any, models: Models) -> Any:
    """POST /v1/chat/completions: checked, then answered whole or streamed."""
    from engine.oracle.chat import OracleError, TooLong, Unrenderable

    try:
        body = await request.json()
    except ValueError as exc:
        return error(400, f"the body is not JSON ({exc})", "bad_request")
    try:
        asked = read_chat(body, oracle.config.oracle.max_new_tokens)
    except RequestError as exc:
        return error(400, str(exc), "bad_request", exc.param)
    try:
        name, step = models.find(asked.model)
    except KeyError:
        return models.not_found(asked.model)
    try:
        await run_in_threadpool(oracle.room_for_reply, asked.messages, asked.settings.max_new_tokens)
    except TooLong as exc:
        return error(400, str(exc), "context_length_exceeded", "messages")
    except Unrenderable as exc:
        return error(400, str(exc), "invalid_messages", "messages")
    served = f"{models.hero}@{name}"
    chat_id = f"chatcmpl-{uuid.uuid4().hex[:12]}"
    if asked.stream:
        return StreamingResponse(stream(oracle, name, asked, served, chat_id), media_type="text/event-stream")
    try:
        answer = await run_in_threadpool(oracle.ask, name, asked.messages, asked.settings)
    except OracleError as exc:
        return error(409, str(exc), "loot_unavailable", "model")
    stops = StopFilter(asked.settings.stop)
    text = stops.cut(answer.text)
    return {
        "id": chat_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": served,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish_reason(answer.new_tokens, answer.limit, stops.stopped),
            }
        ],
        "usage": usage_of(answer),
        "realm": {"loot": answer.loot, "step": step, "weights_hash": answer.weights_hash},
    }


def loot_of(model: str, hero: str) -> str:
    """The loot a model id names: HERO@NAME, HERO (its latest), or a bare loot name
    (step-000200, latest, best-bin, base), as clients configured by hand send."""
    owner, at, name = model.partition("@")
    if at:
        if owner != hero:
            raise KeyError(model)
        return name
    return "latest" if model == hero else model


def usage_of(answer: Any) -> dict[str, int]:
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.new_tokens,
        "total_tokens": answer.prompt_tokens + answer.new_tokens,
    }


def finish_reason(new_tokens: int, limit: int, stopped: bool) -> str:
    """ "length" when the reply used every token it was allowed (max_tokens, or the
    context's end), unless a stop sequence ended it first."""
    return "length" if not stopped and new_tokens >= limit else "stop"


def stream(oracle: Any, name: str, asked: ChatRequest, model: str, chat_id: str) -> Iterator[str]:
    """Server-sent events in OpenAI's chunk format; the generation runs on a thread and
    hands each piece over a queue."""
    from engine.oracle.chat import OracleError

    pieces: queue.Queue[tuple[str, Any]] = queue.Queue()

    def run() -> None:
        try:
            answer = oracle.ask(name, asked.messages, asked.settings, lambda text: pieces.put(("text", text)))
            pieces.put(("done", answer))
        except OracleError as exc:
            pieces.put(("error", str(exc)))
        except Exception as exc:  # anything else must still end the stream: the client would wait forever
            pieces.put(("error", f"the answer failed ({type(exc).__name__}: {exc})"))

    threading.Thread(target=run, daemon=True).start()
    created = int(time.time())

    def chunk(delta: dict[str, str] | None, finish: str | None, extra: dict[str, Any] | None = None) -> str:
        """One event; ``delta`` None: a chunk with no choices (the usage chunk)."""
        choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
        body = {
            "id": chat_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": choices,
            **(extra or {}),
        }
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""}, None)
    stops = StopFilter(asked.settings.stop)
    while True:
        kind, value = pieces.get()
        if kind == "text":
            sendable = stops.feed(value)
            if sendable:
                yield chunk({"content": sendable}, None)
        elif kind == "error":
            yield f"data: {json.dumps({'error': {'message': value, 'code': 'loot_unavailable'}})}\n\n"
            break
        else:
            rest = stops.flush()
            if rest:
                yield chunk({"content": rest}, None)
            realm = {"loot": value.loot, "step": value.step, "weights_hash": value.weights_hash}
            finish = finish_reason(value.new_tokens, value.limit, stops.stopped)
            if asked.usage_chunk:
                yield chunk({}, finish, {"realm": realm})
                yield chunk(None, None, {"usage": usage_of(value)})
            else:
                yield chunk({}, finish, {"realm": realm, "usage": usage_of(value)})
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
