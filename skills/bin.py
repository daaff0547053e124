"""BIN: binary arithmetic in circled notation (⓪①).

Problems read ``Compute: add(①①, ①)`` and are answered ``add(①①, ①) = ①⓪⓪`` — the
reference system's format, so its frozen eval sets import unchanged. Levels widen the
numbers (2 to 32 bits) and unlock operations; a second axis, the output style, asks for
the brief answer, the answer plus a decimal check, or the work shown. From level 8 a
"symbol language" swaps ⓪① for two declared symbols so glyphs cannot be memorised.

The verifier recomputes the answer from the problem's operands (never trusting a stored
string), so any correct answer scores 1.0; a binary answer of the right length with some
wrong digits earns partial credit below 1.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from typing import Any

from skills.base import Problem, Skill, problem_rng, strip_thinking

ZERO, ONE = "⓪", "①"
SYMBOL_PAIRS = [
    ("🔴", "🔵"), ("🌕", "🌑"), ("⬜", "⬛"), ("🔶", "🔷"), ("🌸", "🌺"), ("🔥", "💧"),
    ("🍏", "🍎"), ("⭐", "🌙"), ("🐢", "🐇"), ("△", "▲"), ("○", "●"), ("□", "■"),
]  # fmt: skip

# name -> (arity, kind of operands, kind of result, function)
Op = tuple[int, str, str, Callable[..., int]]
OPS: dict[str, Op] = {
    "increment": (1, "bin", "bin", lambda a: a + 1),
    "decrement": (1, "bin", "bin", lambda a: a - 1),
    "multiply_by_2": (1, "bin", "bin", lambda a: a * 2),
    "divide_by_2": (1, "bin", "bin", lambda a: a // 2),
    "tobinary": (1, "dec", "bin", lambda a: a),
    "todecimal": (1, "bin", "dec", lambda a: a),
    "add": (2, "bin", "bin", lambda a, b: a + b),
    "subtract": (2, "bin", "bin", lambda a, b: a - b),
    "multiply": (2, "bin", "bin", lambda a, b: a * b),
    "and": (2, "bin", "bin", lambda a, b: a & b),
    "or": (2, "bin", "bin", lambda a, b: a | b),
    "xor": (2, "bin", "bin", lambda a, b: a ^ b),
    "minimum": (2, "bin", "bin", min),
    "maximum": (2, "bin", "bin", max),
    "lessthan": (2, "bin", "bool", lambda a, b: int(a < b)),
    "greaterthan": (2, "bin", "bool", lambda a, b: int(a > b)),
    "equals": (2, "bin", "bool", lambda a, b: int(a == b)),
}
SYMBOLS = {"+": "add", "-": "subtract", "×": "multiply"}
STYLES = ("brief", "verify", "work")
STYLE_TAG = {"brief": "", "verify": " [verify]", "work": " [show-work]"}

_CALL = re.compile(r"([^\s()]+)\((.*)\)")


def to_bits(value: int, zero: str = ZERO, one: str = ONE) -> str:
    return "".join(one if c == "1" else zero for c in format(value, "b"))


def from_bits(text: str, zero: str = ZERO, one: str = ONE) -> int | None:
    """Parse a number written with the two symbols; None if anything else is in it."""
    digits = []
    rest = text.strip()
    while rest:
        if rest.startswith(zero):
            digits.append("0")
            rest = rest[len(zero) :]
        elif rest.startswith(one):
            digits.append("1")
            rest = rest[len(one) :]
        else:
            return None
    return int("".join(digits), 2) if digits else None


class Bin(Skill):
    def generate(self, level: int, index: int, split: str = "train") -> Problem:
        params = self.spec.params(level)
        rng = problem_rng(self.id, level, index, split)
        op = rng.choice(params["ops"])
        arity, arg_kind, _, _ = OPS[op]
        top = 2 ** params["bits"] - 1
        args = self._operands(rng, op, arity, top)
        zero, one = ZERO, ONE
        if rng.random() < params.get("symbols", 0.0):
            zero, one = rng.choice(SYMBOL_PAIRS)
            if rng.random() < 0.5:
                zero, one = one, zero
        style = rng.choices(STYLES, weights=params["styles"])[0]
        key = {"op": op, "args": args, "zero": zero, "one": one, "style": style}
        prompt = self._prompt(key, arg_kind)
        return Problem(self.id, level, index, split, prompt, self.render_answer(key), key=json.dumps(key))

    @staticmethod
    def _operands(rng: random.Random, op: str, arity: int, top: int) -> list[int]:
        if op == "decrement":
            return [rng.randint(1, top)]
        if arity == 1:
            return [rng.randint(0, top)]
        a, b = rng.randint(0, top), rng.randint(0, top)
        if op == "subtract" and b > a:
            a, b = b, a  # unsigned: no negative results
        if op == "equals" and rng.random() < 0.5:
            b = a  # otherwise "false" would be right almost always
        return [a, b]

    @staticmethod
    def _call(key: dict[str, Any], arg_kind: str) -> str:
        zero, one = key["zero"], key["one"]
        shown = [str(a) if arg_kind == "dec" else to_bits(a, zero, one) for a in key["args"]]
        return f"{key['op']}({', '.join(shown)})"

    def _prompt(self, key: dict[str, Any], arg_kind: str) -> str:
        head = ""
        if (key["zero"], key["one"]) != (ZERO, ONE):
            head = f"Symbol Key:\n  {key['zero']} = 0 (zero bit)\n  {key['one']} = 1 (one bit)\n\n"
        return f"{head}Compute: {self._call(key, arg_kind)}{STYLE_TAG[key['style']]}"

    @staticmethod
    def result(key: dict[str, Any]) -> tuple[str, int]:
        """(kind, value) of the right answer, recomputed from the operands."""
        _, _, kind, fn = OPS[key["op"]]
        return kind, fn(*key["args"])

    def render_answer(self, key: dict[str, Any]) -> str:
        kind, value = self.result(key)
        _, arg_kind, _, _ = OPS[key["op"]]
        zero, one = key["zero"], key["one"]
        shown = {"bin": to_bits(value, zero, one), "dec": str(value), "bool": "true" if value else "false"}
        line = f"{self._call(key, arg_kind)} = {shown[kind]}"
        style = key.get("style", "brief")
        if style == "brief":
            return line
        args = ", ".join(str(a) for a in key["args"])
        check = f"check: {key['op']}({args}) = {shown['bool'] if kind == 'bool' else value}"
        if style == "verify":
            return f"{line}\n{check}"
        bits = [f"{to_bits(a, zero, one)} = {a}" for a in key["args"] if OPS[key["op"]][1] == "bin"]
        return "\n".join([line, *bits, check])

    # ------------------------------------------------------------------ scoring

    def score(self, problem: Problem, response: str) -> float:
        key = json.loads(problem.key)
        text = strip_thinking(response)
        if key.get("mode") == "results":
            got = stated_results(text)
            want = key["results"]
            hits = sum(1 for i, r in enumerate(want) if i < len(got) and got[i] == r)
            return hits / len(want)
        kind, value = self.result(key)
        call = text.find(key.get("shown_op", key["op"]))
        line = text[call:] if call >= 0 else text
        if "=" not in line:
            return 0.0
        got = line.split("=", 1)[1].strip().split("\n", 1)[0].strip().split()
        if not got:
            return 0.0
        answer = got[0].rstrip(".,;")
        if kind == "dec":
            return 1.0 if answer == str(value) else 0.0
        if kind == "bool":
            return 1.0 if answer.lower() == ("true" if value else "false") else 0.0
        parsed = from_bits(answer, key["zero"], key["one"])
        if parsed == value:
            return 1.0
        want = to_bits(value, "0", "1")
        have = "".join("1" if c == key["one"] else "0" for c in answer) if parsed is not None else ""
        if len(have) != len(want):
            return 0.0
        # Right width, some digits right: worth something, never a pass.
        return 0.5 * sum(a == b for a, b in zip(have, want, strict=True)) / len(want)

    # ------------------------------------------------------------------ reference data

    def problem_from_record(self, record: dict[str, Any]) -> Problem:
        """Also reads the reference system's records: ``{"prompt", "expected"}`` from
        ``bin/level_NN.json`` and ``{"user_prompt", "assistant_response"}`` rows."""
        if "expected" in record and "prompt" in record:
            key = parse_reference(record["prompt"], record["expected"])
            level = int(record.get("level", 1))
            return Problem(
                self.id, level, 0, "eval", record["prompt"], record["expected"], key=json.dumps(key)
            )
        if "user_prompt" in record and "assistant_response" in record:
            answer = record["assistant_response"]
            try:
                key = parse_prefix_line(answer.strip().split("\n", 1)[0])
            except ValueError:
                # A free-form worked answer (chains, shifts, explanations): score it by
                # the results it states, each "= value" of its computation lines.
                key = {"mode": "results", "results": stated_results(answer)}
                if not key["results"]:
                    raise ValueError("no '= result' in the reference answer") from None
            return Problem(self.id, 0, 0, "eval", record["user_prompt"], answer, key=json.dumps(key))
        return super().problem_from_record(record)


_RESULT = re.compile(r"=\s*([⓪①]+|-?\d+)")


def stated_results(text: str) -> list[str]:
    """Every circled or decimal value that follows an '=' (in order)."""
    return _RESULT.findall(text)


def parse_reference(prompt: str, expected: str) -> dict[str, Any]:
    """Operands of a reference problem, with its symbol key and operation aliases."""
    zero, one = ZERO, ONE
    aliases: dict[str, list[str]] = {}
    for line in prompt.splitlines():
        m = re.match(r"\s+(\S+) = ([01]) \((zero|one) bit\)", line)
        if m:
            if m.group(2) == "0":
                zero = m.group(1)
            else:
                one = m.group(1)
            continue
        m = re.match(r"\s+(\S+) = ([a-z_0-9]+)\s*$", line)
        if m:
            aliases.setdefault(m.group(1), []).append(m.group(2))
    call = expected.split(" = ", 1)[0].strip()
    m = _CALL.fullmatch(call)
    if not m:
        raise ValueError(f"cannot read the call in {expected!r}")
    shown_op = m.group(1)
    raw_args = m.group(2).split(",")
    # The reference keys sometimes give one symbol two meanings (⬆️ = increment and
    # ⬆️ = maximum): the number of operands decides.
    candidates = [op for op in aliases.get(shown_op, [shown_op]) if op in OPS]
    fitting = [op for op in candidates if OPS[op][0] == len(raw_args)]
    if not fitting:
        raise ValueError(f"unknown BIN operation {shown_op!r} with {len(raw_args)} operand(s)")
    op = fitting[0]
    _, arg_kind, _, _ = OPS[op]
    args = []
    for raw in raw_args:
        value = int(raw.strip()) if arg_kind == "dec" else from_bits(raw, zero, one)
        if value is None:
            raise ValueError(f"cannot read operand {raw!r}")
        args.append(value)
    # The answer must echo the call as shown (an alias stays an alias).
    return {"op": op, "shown_op": shown_op, "args": args, "zero": zero, "one": one, "style": "brief"}


def parse_prefix_line(line: str) -> dict[str, Any]:
    """``add ①⓪① ①① = ①⓪⓪⓪`` (the reference chat rows' answer line)."""
    left = line.split("=", 1)[0].split()
    if not left:
        raise ValueError(f"cannot read {line!r}")
    name, raw_args = left[0], left[1:]
    op = SYMBOLS.get(name, name)
    if op not in OPS:
        raise ValueError(f"unknown BIN operation {name!r}")
    _, arg_kind, _, _ = OPS[op]
    args = [int(a) if arg_kind == "dec" else from_bits(a) for a in raw_args]
    if any(a is None for a in args):
        raise ValueError(f"cannot read the operands of {line!r}")
    return {"op": op, "shown_op": name, "args": args, "zero": ZERO, "one": ONE, "style": "brief"}
