"""One setting of a hero's config by its dotted key: read it, change it (validated like the
file), and say when a change takes effect.

Keys are ``section.field`` (``train.lr``, ``vault.keep_last``) and ``game.skills.ID`` for
a skill's weight in the mix. ``realm config get|set``, the Armory screen and the engine's
SetConfig all use this module, so they accept the same keys and refuse the same values.
Pure Python (no torch): both sides import it.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import MISSING, fields
from typing import Any

from engine.protocol.config import HeroConfig, field_help

# What the engine applies from its next step; everything else is saved and applies when
# DIO next starts (the model, the batch shape and the schedule are built once).
LIVE: frozenset[str] = frozenset(
    {
        "train.lr",
        "train.grad_clip",
        "train.weight_decay",
        "game.checkpoint_every",
        "game.eval_every",
        "game.max_steps",
        "game.quest_share",
        "game.bell",
        "evals.at_loot",
        "evals.every_steps",
        "evals.max_new_tokens",
        "sparring.problems",
        "sparring.max_age_steps",
        "oracle.max_new_tokens",
        "oracle.placement",
    }
)
LIVE_SECTIONS = ("vault", "watchdog")  # read afresh every time they are used
FIXED = {
    "name": "the hero's name is its save folder's name",
    "model": "a hero's model is chosen when it is created: make a new hero (realm play --hero NEW --model DIR)",
    "mode": "a hero's mode is chosen when it is created: make a new hero (realm play --hero NEW --mode MODE)",
}
TRUE = ("true", "yes", "on", "1")
FALSE = ("false", "no", "off", "0")


class SettingError(ValueError):
    """A key that does not exist or a value the config refuses; the message says which."""


def applies(key: str) -> str:
    """ "now" (from the next step) or "restart" (saved; the next start uses it)."""
    if key in LIVE or key.split(".")[0] in LIVE_SECTIONS:
        return "now"
    if key.startswith("game.skills."):
        return "now"  # a weight of a skill DIO already trains (a new skill: see set_value)
    return "restart"


SECTION_ORDER = ("train", "game", "vault", "evals", "watchdog", "sparring", "tasks", "oracle", "lora")


def all_keys(config: HeroConfig) -> list[str]:
    """Every settable key: the ones tuned most first (train, game), then by dataclass
    field order (skills by id)."""
    keys: list[str] = []
    for section in SECTION_ORDER:
        value = getattr(config, section)
        for f in fields(value):
            if f.name == "skills":
                keys += [f"{section}.skills.{skill}" for skill in sorted(getattr(value, f.name))]
            else:
                keys.append(f"{section}.{f.name}")
    return keys


def get_value(config: HeroConfig, key: str) -> Any:
    section, name, skill = _split(config, key)
    value = getattr(getattr(config, section), name)
    return value.get(skill, 0.0) if skill is not None else value


def describe(config: HeroConfig, key: str) -> str:
    """The field's docstring: what the setting does."""
    section, name, skill = _split(config, key)
    if skill is not None:
        return f"weight of skill {skill} in the training mix (0 = not trained)"
    cls: type = type(getattr(config, section))
    return field_help(cls).get(name, "")


def show(value: Any) -> str:
    """A value as `realm config get` prints it and `set` reads it back."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def set_value(data: dict[str, Any], key: str, text: str) -> dict[str, Any]:
    """config.json's ``data`` with ``key`` set to ``text`` (parsed to the field's type),
    validated by building the HeroConfig. Raises SettingError saying what is wrong."""
    config = _config(data)
    section, name, skill = _split(config, key)
    current = getattr(getattr(config, section), name)
    out = json.loads(json.dumps(data))  # a deep copy that stays plain JSON
    block = out.setdefault(section, {})
    if skill is not None:
        weight = _parse(text, 0.0, key)
        skills = dict(current)
        if weight == 0:
            skills.pop(skill, None)
        else:
            skills[skill] = weight
        block[name] = skills
    else:
        block[name] = _parse(text, _default(type(getattr(config, section)), name), key)
    try:
        HeroConfig.from_dict(out)
    except (ValueError, TypeError) as exc:
        raise SettingError(f"{key} = {text}: {exc}") from None
    return out


def _config(data: dict[str, Any]) -> HeroConfig:
    try:
        return HeroConfig.from_dict(data)
    except (ValueError, TypeError, KeyError) as exc:
        raise SettingError(f"the hero's config.json is not valid: {exc}") from None


def _split(config: HeroConfig, key: str) -> tuple[str, str, str | None]:
    """(section, field, skill or None) of a key, or SettingError with a suggestion."""
    if key in FIXED:
        raise SettingError(f"{key} cannot be changed: {FIXED[key]}")
    parts = key.split(".")
    if len(parts) == 3 and parts[:2] == ["game", "skills"] and parts[2]:
        return "game", "skills", parts[2]
    known = all_keys(config)
    if key == "game.skills":
        raise SettingError("set one skill's weight: game.skills.ID WEIGHT (e.g. game.skills.sy 0.3)")
    if len(parts) != 2 or key not in known:
        close = difflib.get_close_matches(key, known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else " (`realm config get` lists every key)"
        raise SettingError(f"unknown setting {key!r}{hint}")
    return parts[0], parts[1], None


def _default(cls: type, name: str) -> Any:
    spec = next(f for f in fields(cls) if f.name == name)
    return spec.default if spec.default is not MISSING else None


def _parse(text: str, like: Any, key: str) -> Any:
    """``text`` as the type of ``like`` (the field's default)."""
    word = text.strip()
    if isinstance(like, bool):
        if word.lower() in TRUE:
            return True
        if word.lower() in FALSE:
            return False
        raise SettingError(f"{key} is true or false, not {text!r}")
    try:
        if isinstance(like, int):
            number = float(word)
            if not number.is_integer():
                raise ValueError
            return int(number)
        if isinstance(like, float):
            return float(word)
    except ValueError:
        kind = "a whole number" if isinstance(like, int) else "a number"
        raise SettingError(f"{key} is {kind}, not {text!r}") from None
    return word
