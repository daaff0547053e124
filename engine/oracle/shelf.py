"""The Oracle without the engine: answers from loot folders on disk (read-only), for
`realm oracle` while DIO is not training, and for `realm serve`.

The engine stays the single writer: this only reads the ledger (written atomically)
and loot folders. A loot pruned while it is being loaded is an error, never another
loot's answer.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from engine.model.hero import pick_device
from engine.oracle.chat import (
    LootCopies,
    OracleError,
    Settings,
    TextSink,
    Unrenderable,
    context_of,
    generate,
    load_copy,
    room_for_reply,
)
from engine.protocol.config import HeroConfig
from engine.protocol.savedir import SaveDir
from engine.store.ledger import Ledger
from engine.store.vault import Vault
from engine.train.chat import ChatRenderer, Message

BASE = "base"


@dataclass(frozen=True)
class Answer:
    loot: str
    step: int
    weights_hash: str
    text: str
    new_tokens: int
    seconds: float
    first_token_s: float | None
    prompt_tokens: int = 0
    limit: int = 0


def base_of(config: HeroConfig, save: SaveDir) -> Path:
    return Path(config.model).expanduser() if config.model else save.base_model


class ShelfOracle:
    def __init__(self, save: SaveDir, loaded: int | None = None, device: torch.device | None = None) -> None:
        if not save.config.is_file():
            raise OracleError(f"no hero at {save.root}")
        self.save = save
        self.config = HeroConfig.load(save.config)
        self.base = base_of(self.config, save)
        if not (self.base / "config.json").is_file():
            raise OracleError(f"the hero's base model is not at {self.base} yet: train first")
        self.device = device or pick_device()
        self.copies = LootCopies(loaded or self.config.oracle.loaded_loot)
        self.lock = threading.Lock()  # one generation at a time (the server has threads)
        from engine.model.tokenizer import load_tokenizer

        self.renderer = ChatRenderer(load_tokenizer(self.base))
        from transformers import AutoConfig

        self.context = context_of(AutoConfig.from_pretrained(self.base))

    def room_for_reply(self, messages: list[Message], wanted: int) -> int:
        """As many new tokens as asked, or fewer near the context's end; TooLong past it
        (checked before a stream starts, so the refusal is a 400, not a broken stream)."""
        try:
            prompt = self.renderer.prompt_ids(messages)
        except Exception as exc:  # the template is the model's own code: it raises what it likes
            raise Unrenderable(
                f"the model's chat template refuses these messages ({type(exc).__name__}: {exc})"
            ) from None
        return room_for_reply(len(prompt), self.context, wanted)

    def rows(self) -> list[dict[str, Any]]:
        if not self.save.ledger.exists():
            return []
        return Ledger(self.save.ledger, read_only=True).live_loot()

    def resolve(self, name: str) -> tuple[str, int, Path | None]:
        """(loot name, step, folder) — folder None for the base model. Strict: KeyError
        (naming what exists) for anything else."""
        if name.strip().lower() == BASE:
            return BASE, 0, None
        if not self.save.ledger.exists():
            raise KeyError(f"no loot {name!r} (loot: none yet)")
        vault = Vault(self.save.root, Ledger(self.save.ledger, read_only=True))
        row = vault.find(name)
        return row["name"], row["step"], vault.folder / row["name"]

    def model(self, name: str, folder: Path | None) -> tuple[Any, str]:
        if folder is None:
            from engine.oracle.chat import load_base

            return self.copies.get(BASE, lambda: load_base(self.base, self.device))
        if not folder.is_dir():
            raise OracleError(f"loot {name} is gone (pruned or deleted just now)")
        return self.copies.get(name, lambda: load_copy(folder, self.config, self.base, self.device))

    def ask(
        self, name: str, messages: list[Message], settings: Settings, sink: TextSink | None = None
    ) -> Answer:
        try:
            loot, step, folder = self.resolve(name)
        except KeyError as exc:
            raise OracleError(exc.args[0]) from None
        with self.lock:
            model, digest = self.model(loot, folder)
            reply = generate(model, self.renderer, messages, settings, self.device, sink)
        return Answer(loot, step, digest, **asdict(reply))  # the Reply's fields, by name
