"""`realm serve` with the official openai client as a real client."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, make_hero, run_worker

openai = pytest.importorskip("openai")
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path, hatchling_dir: Path) -> Iterator[tuple[str, str, Path]]:
    save, config = make_hero(tmp_path, hatchling_dir)
    run_worker(save, config, max_steps=20)  # loot at 10 and 20
    port = free_port()
    cmd = [sys.executable, "-m", "tui.cli", "serve", "--saves", str(tmp_path), "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the server did not start: {proc.stdout.read() if proc.stdout else ''}"
                    ) from None
                time.sleep(0.3)
        yield f"http://127.0.0.1:{port}/v1", save.serve_token.read_text().strip(), save.serve_token
    finally:
        proc.terminate()
        proc.wait(30)


def test_the_openai_client_lists_chats_and_streams_from_named_loot(server: tuple[str, str, Path]) -> None:
    url, token, token_file = server
    assert token_file.stat().st_mode & 0o777 == 0o600
    client = openai.OpenAI(base_url=url, api_key=token, max_retries=0)
    ids = [m.id for m in client.models.list().data]
    assert {"dio@step-000010", "dio@step-000020", "dio@latest", "dio@base"} <= set(ids)

    reply = client.chat.completions.create(
        model="dio@step-000010", messages=[{"role": "user", "content": "0b1 + 0b1 = ?"}], max_tokens=12
    )
    assert reply.model == "dio@step-000010" and reply.choices[0].message.role == "assistant"
    extra = reply.model_extra or {}
    assert extra["realm"]["step"] == 10 and len(extra["realm"]["weights_hash"]) == 16
    latest = client.chat.completions.create(
        model="dio@latest", messages=[{"role": "user", "content": "0b1 + 0b1 = ?"}], max_tokens=12
    )
    assert (latest.model, latest.model_extra["realm"]["step"]) == ("dio@step-000020", 20)  # type: ignore[index]
    assert latest.model_extra["realm"]["weights_hash"] != extra["realm"]["weights_hash"]  # type: ignore[index]

    pieces = client.chat.completions.create(
        model="dio@step-000010",
        messages=[{"role": "user", "content": "0b1 + 0b1 = ?"}],
        max_tokens=12,
        stream=True,
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in pieces)
    assert text == reply.choices[0].message.content  # greedy: the same words, streamed

    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="dio@step-999999", messages=[{"role": "user", "content": "hi"}])
    assert "dio@step-000010" in str(missing.value)  # the 404 lists what exists
    wrong = openai.OpenAI(base_url=url, api_key="not-the-token", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()


def test_other_clients_fields_bare_names_stop_and_errors(
    server: tuple[str, str, Path], hatchling_dir: Path
) -> None:
    """What clients configured by hand send: a bare loot name, stop sequences, usage and
    finish_reason as OpenAI reports them, and a 400 naming what cannot be honoured."""
    url, token, _token_file = server
    client = openai.OpenAI(base_url=url, api_key=token, max_retries=0)
    ask = [{"role": "user", "content": "0b1 + 0b1 = ?"}]
    full = client.chat.completions.create(model="step-000010", messages=ask, max_tokens=12)  # type: ignore[arg-type]
    assert full.model == "dio@step-000010"
    assert full.choices[0].finish_reason == "length"  # 12 tokens: cut by max_tokens
    assert full.usage is not None and full.usage.completion_tokens == 12 and full.usage.prompt_tokens > 0
    assert client.chat.completions.create(model="dio", messages=ask, max_tokens=2).model == "dio@step-000020"  # type: ignore[arg-type]

    text = full.choices[0].message.content or ""
    assert len(text) >= 5
    stop = text[3:5]
    cut = client.chat.completions.create(model="step-000010", messages=ask, max_tokens=12, stop=[stop])  # type: ignore[arg-type]
    assert cut.choices[0].message.content == text[: text.find(stop)]
    assert cut.choices[0].finish_reason == "stop"
    streamed = client.chat.completions.create(
        model="step-000010",
        messages=ask,  # type: ignore[arg-type]
        max_tokens=12,
        stop=stop,
        stream=True,
    )
    chunks = list(streamed)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == text[: text.find(stop)]
    assert chunks[-1].choices[0].finish_reason == "stop"
    # Usage asked for: a last chunk of its own with no choices, as OpenAI sends it.
    counted = list(
        client.chat.completions.create(
            model="step-000010",
            messages=ask,  # type: ignore[arg-type]
            max_tokens=12,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert counted[-1].choices == [] and counted[-1].usage is not None
    assert counted[-1].usage.completion_tokens == 12 and counted[-2].choices[0].finish_reason == "length"
    assert all(c.usage is None for c in counted[:-1])

    # The model's context bounds prompt + reply: past it, a 400 before anything streams;
    # near its end, the reply gets what is left and ends with "length".
    context = json.loads((hatchling_dir / "config.json").read_text())["max_position_embeddings"]
    probe = client.chat.completions.create(
        model="step-000010",
        messages=[{"role": "user", "content": "x " * 100}],  # type: ignore[arg-type]
        max_tokens=1,
    )
    assert probe.usage is not None
    per_x = (probe.usage.prompt_tokens - 2) / 100  # about: the template adds a few tokens
    near_end = [{"role": "user", "content": "x " * int((context - 40) / per_x)}]
    close = client.chat.completions.create(
        model="step-000010", messages=near_end, max_tokens=400, temperature=1
    )  # type: ignore[arg-type]
    assert close.usage is not None and close.usage.prompt_tokens < context
    room = context - close.usage.prompt_tokens
    assert room < 400 and close.usage.completion_tokens <= room
    if close.usage.completion_tokens == room:
        assert close.choices[0].finish_reason == "length"
    past = [{"role": "user", "content": "x " * int(2 * context / per_x)}]
    for streamed_too in (False, True):
        with pytest.raises(openai.BadRequestError, match="the model's context is") as over:
            client.chat.completions.create(model="dio", messages=past, stream=streamed_too)  # type: ignore[arg-type, call-overload]
        assert over.value.code == "context_length_exceeded"

    with pytest.raises(openai.BadRequestError, match="n must be 1"):
        client.chat.completions.create(model="dio", messages=ask, n=2)  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError, match="the role must be"):
        client.chat.completions.create(
            model="dio", messages=[{"role": "tool", "content": "x", "tool_call_id": "1"}]
        )
    assert client.models.retrieve("dio@latest").id == "dio@step-000020"  # what it names now
    assert client.models.retrieve("step-000010").id == "dio@step-000010"
    with pytest.raises(openai.NotFoundError, match="no model 'nope'"):
        client.models.retrieve("nope")
    with pytest.raises(openai.NotFoundError, match="this server answers"):
        client.completions.create(
            model="dio", prompt="hi"
        )  # no legacy completions: said so, in OpenAI's shape
