"""SY: syllacrostic word puzzles.

Each clue shows a hidden word's syllable slots and a hint; a shuffled bank of syllable
tiles must be spent (each tile at most once, decoys left over) to spell every word.
Levels add words, syllables per word, rarer words, tiles shared between words, decoy
("red herring") tiles, and weaken the hints. No offline dictionary of definitions can
be installed here, so the hint ladder is built from what the word table knows
(spelling, pronunciation from CMU, frequency from wordfreq):

    hint 0  letters, first and last letter, and a rhyme ("rhymes with DAYS")
    hint 1  letters, first letter, and a rhyme
    hint 2  letters and first letter
    hint 3  a letter pattern with about a third of the letters shown
    hint 4  the number of letters only
    hint 5  nothing but the syllable slots

Answers follow the reference JSON contract ``{"solutions": [{"ans_num", "syllables",
"answer"}], "inventory_check": {...}}``; the reference system's other layouts (maps,
markdown tables, "al + ways = ALWAYS" lines) are read too. The verifier accepts ANY
assignment that satisfies the puzzle: each answer a real word (the word table, or the
puzzle's own words for reference puzzles) that fits its clue and can be spelled from
tiles still in the bank, each tile used at most once; partial credit per word.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from skills.base import Problem, Skill, problem_rng, strip_thinking

WORDS_FILE = Path(__file__).resolve().parent / "data" / "sy_words.tsv"


@dataclass(frozen=True)
class Word:
    word: str
    syllables: tuple[str, ...]
    zipf: float
    rhyme: str


@cache
def word_table() -> tuple[Word, ...]:
    """All words, most frequent first (the file's order)."""
    rows = []
    for line in WORDS_FILE.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        word, syllables, zipf, rhyme = line.split("\t")
        rows.append(Word(word, tuple(syllables.split("-")), float(zipf), rhyme))
    return tuple(rows)


@cache
def known_words() -> frozenset[str]:
    return frozenset(w.word for w in word_table())


@cache
def rhymes() -> dict[str, str]:
    return {w.word: w.rhyme for w in word_table()}


@cache
def pool(max_rank: int, fewest: int, most: int) -> tuple[Word, ...]:
    """Words a level draws from (cached: generation runs in the training hot path)."""
    return tuple(w for w in word_table()[:max_rank] if fewest <= len(w.syllables) <= most)


@cache
def rhyme_groups() -> dict[str, tuple[str, ...]]:
    groups: dict[str, list[str]] = {}
    for w in word_table():
        groups.setdefault(w.rhyme, []).append(w.word)
    return {k: tuple(v) for k, v in groups.items()}


def clue_for(word: Word, hint: int, rng: random.Random) -> dict[str, Any]:
    """The checkable facts a clue gives (the verifier holds answers to them)."""
    w = word.word
    clue: dict[str, Any] = {"slots": len(word.syllables)}
    if hint <= 4:
        clue["letters"] = len(w)
    if hint <= 2:
        clue["first"] = w[0]
    if hint == 0:
        clue["last"] = w[-1]
    if hint <= 1:
        partners = [
            x for x in rhyme_groups()[word.rhyme] if x != w and not x.endswith(w) and not w.endswith(x)
        ]
        if partners:
            clue["rhymes_with"] = rng.choice(sorted(partners)[:20])
    if hint == 3:
        shown = sorted(rng.sample(range(len(w)), max(1, len(w) // 3)))
        clue["pattern"] = "".join(w[i] if i in shown else "_" for i in range(len(w)))
    return clue


def describe(clue: dict[str, Any]) -> str:
    parts = []
    if "pattern" in clue:
        parts.append(" ".join(clue["pattern"].upper()))
    elif "letters" in clue:
        parts.append(f"{clue['letters']} letters")
    if "first" in clue:
        parts.append(f"starts with {clue['first'].upper()}")
    if "last" in clue:
        parts.append(f"ends with {clue['last'].upper()}")
    if "rhymes_with" in clue:
        parts.append(f"rhymes with {clue['rhymes_with'].upper()}")
    slots = " ".join(["___"] * clue["slots"])
    return f"{slots} ({', '.join(parts)})" if parts else slots


def fits(answer: str, clue: dict[str, Any], syllables: int) -> bool:
    w = answer.lower()
    if syllables != clue["slots"]:
        return False
    if "letters" in clue and len(w) != clue["letters"]:
        return False
    if "first" in clue and not w.startswith(clue["first"]):
        return False
    if "last" in clue and not w.endswith(clue["last"]):
        return False
    if "pattern" in clue:
        pattern = clue["pattern"]
        if len(w) != len(pattern) or any(p != "_" and p != c for p, c in zip(pattern, w, strict=True)):
            return False
    if "rhymes_with" in clue:
        table = rhymes()
        if w not in table or table.get(clue["rhymes_with"]) != table[w]:
            return False
    return True


class Sy(Skill):
    def generate(self, level: int, index: int, split: str = "train") -> Problem:
        params = self.spec.params(level)
        rng = problem_rng(self.id, level, index, split)
        words = self._pick_words(rng, params)
        clues = [clue_for(w, int(params["hint"]), rng) for w in words]
        tiles = [s for w in words for s in w.syllables]
        used = set(tiles)
        decoys: list[str] = []
        while len(decoys) < int(params["red_herrings"]):
            other = rng.choice(word_table()[: int(params["max_rank"])])
            tile = rng.choice(other.syllables)
            if tile not in used and tile not in decoys:
                decoys.append(tile)
        bank = tiles + decoys
        rng.shuffle(bank)
        key = {"clues": clues, "bank": bank, "words": [w.word for w in words], "decoys": decoys,
               "format": str(params.get("format", "contract"))}  # fmt: skip
        return Problem(self.id, level, index, split, self.render_prompt(key), self.render_answer(key, words),
                       key=json.dumps(key))  # fmt: skip

    @staticmethod
    def _pick_words(rng: random.Random, params: dict[str, Any]) -> list[Word]:
        lo, hi = params["syllables"]
        words = pool(int(params["max_rank"]), int(lo), int(hi))
        chosen: list[Word] = []
        while len(chosen) < int(params["words"]):
            pick = rng.choice(words)
            if chosen and rng.random() < float(params["shared"]):
                # Prefer a word that shares a tile with one already chosen: a few tries.
                tiles = {s for w in chosen for s in w.syllables}
                for _ in range(200):
                    if tiles & set(pick.syllables):
                        break
                    pick = rng.choice(words)
            if pick.word not in {w.word for w in chosen}:
                chosen.append(pick)
        return chosen

    @staticmethod
    def render_prompt(key: dict[str, Any]) -> str:
        lines = ["SY puzzle: spell each hidden word from the syllable tiles. Each tile at most once."]
        if key["decoys"]:
            lines.append(f"{len(key['decoys'])} tile(s) belong to no word: list them as unused_tiles.")
        lines += [f"{i}. {describe(c)}" for i, c in enumerate(key["clues"], 1)]
        # Quoted as in the answer, so a tile is the same tokens in both places.
        lines.append("Tiles: " + json.dumps(key["bank"], ensure_ascii=False))
        if key.get("format") == "tiles":
            lines.append('Answer as JSON: {"solutions": [{"ans_num", "syllables"}]}')
        else:
            lines.append(
                'Answer as JSON: {"solutions": [{"ans_num", "syllables", "answer"}], "inventory_check"}'
            )
        return "\n".join(lines)

    @staticmethod
    def render_answer(key: dict[str, Any], words: list[Word]) -> str:
        if key.get("format") == "tiles":
            # The compact answer of the low levels: the word is its tiles joined, so
            # DIO picks and orders tiles and never has to spell a tile in capitals.
            tiles = [{"ans_num": i, "syllables": list(w.syllables)} for i, w in enumerate(words, 1)]
            return json.dumps({"solutions": tiles}, ensure_ascii=False)
        solutions = [
            {"ans_num": i, "syllables": list(w.syllables), "answer": w.word.upper()}
            for i, w in enumerate(words, 1)
        ]
        used = sum(len(w.syllables) for w in words)
        inventory = {"total_tiles": len(key["bank"]), "used": used, "unused_tiles": key["decoys"]}
        return json.dumps({"solutions": solutions, "inventory_check": inventory}, ensure_ascii=False)

    # ------------------------------------------------------------------ scoring

    def score(self, problem: Problem, response: str) -> float:
        key = json.loads(problem.key)
        clues: list[dict[str, Any]] = key["clues"]
        answers = read_answers(strip_thinking(response))
        bank = Counter(t.lower() for t in key["bank"])
        reference = set(key.get("words") or [])  # reference puzzles: their own words are valid
        options: list[list[list[str]]] = []
        for clue, answer in zip(clues, answers, strict=False):
            word = answer.lower()
            valid = word in known_words() or word in reference
            splits = all_splits(word, bank, clue["slots"]) if valid else []
            options.append([t for t in splits if fits(word, clue, len(t))])
        return best_assignment(options, bank) / len(clues)

    def readable(self, problem: Problem, response: str) -> bool:
        """One answer per clue, in any layout the verifier reads (right or wrong)."""
        clues = json.loads(problem.key)["clues"]
        return len(read_answers(strip_thinking(response))) >= len(clues)

    # ------------------------------------------------------------------ reference data

    def problem_from_record(self, record: dict[str, Any]) -> Problem:
        """Reads the reference system's SY records (``sy/level_N.jsonl``)."""
        if "syllable_bank" in record and "words" in record:
            clues = [{"slots": int(w["syllable_count"])} for w in record["words"]]
            key = {
                "clues": clues,
                "bank": list(record["syllable_bank"]),
                "words": [w["label"].lower() for w in record["words"]],
                "decoys": list(record.get("red_herrings", [])),
            }
            answer = record.get("solution") or ""
            return Problem(self.id, int(record.get("level", 0)), 0, "eval", record["prompt"], str(answer),
                           key=json.dumps(key))  # fmt: skip
        return super().problem_from_record(record)


_CAPS = re.compile(r"\b[A-Z]{2,}\b")


def all_splits(word: str, bank: Counter[str], pieces: int, limit: int = 16) -> list[list[str]]:
    """Ways to spell ``word`` with exactly ``pieces`` tiles of ``bank`` (at most ``limit``)."""
    if pieces == 0:
        return [[]] if not word else []
    out: list[list[str]] = []
    for tile in sorted(t for t in bank if bank[t] > 0 and word.startswith(t)):
        bank[tile] -= 1
        for rest in all_splits(word[len(tile) :], bank, pieces - 1, limit - len(out)):
            out.append([tile, *rest])
        bank[tile] += 1
        if len(out) >= limit:
            break
    return out


def best_assignment(options: list[list[list[str]]], bank: Counter[str]) -> int:
    """The most answers that can be spelled at once, each tile used at most once."""
    if not options:
        return 0
    first, rest = options[0], options[1:]
    best = best_assignment(rest, bank)  # this answer left out
    for tiles in first:
        need = Counter(tiles)
        if all(bank[t] >= n for t, n in need.items()):
            bank.subtract(need)
            best = max(best, 1 + best_assignment(rest, bank))
            bank.update(need)
        if best == len(options):
            break
    return best


def read_answers(text: str) -> list[str]:
    """The answers, in clue order, from the JSON contract or any of the reference
    system's other layouts (maps, tables, bullet lists, "x + y = WORD" lines): the
    ``solutions`` entries by ``ans_num`` when present, else the last all-caps word of
    every line or ``;``-separated segment, in order."""
    start = text.find("{") if "{" in text else text.find("[")
    data: Any = None
    if start >= 0:
        try:
            data, _ = json.JSONDecoder().raw_decode(text[start:])
        except ValueError:
            data = None
    if isinstance(data, dict) and isinstance(data.get("solutions"), list):
        entries = [e for e in data["solutions"] if isinstance(e, dict) and _entry_word(e) is not None]
        if entries:
            entries.sort(key=lambda e: int(e.get("ans_num", 0)) if str(e.get("ans_num", "")).isdigit() else 0)
            return [str(_entry_word(e)) for e in entries]
    if data is None and '"solutions"' in text:
        # JSON cut or broken after some answers: read each solution that is whole.
        fields = _broken_solutions(text)
        if fields:
            return fields
    strings = list(_strings(data)) if data is not None else [text]
    answers = []
    for chunk in strings:
        for segment in re.split(r"[\n;]", chunk):
            caps = _CAPS.findall(segment)
            if caps:
                answers.append(caps[-1])
    return answers


def _entry_word(entry: dict[str, Any]) -> str | None:
    """A solution's word: its ``answer``, or its ``syllables`` joined (the compact answer)."""
    if "answer" in entry:
        return str(entry["answer"])
    tiles = entry.get("syllables")
    if isinstance(tiles, list) and tiles and all(isinstance(t, str) for t in tiles):
        return "".join(tiles)
    return None


_SOLUTION = re.compile(r"\{[^{}]*\}")


def _broken_solutions(text: str) -> list[str]:
    """The words of every whole ``{...}`` solution object in text whose JSON is broken."""
    words = []
    for match in _SOLUTION.finditer(text):
        try:
            entry = json.loads(match.group(0))
        except ValueError:
            continue
        word = _entry_word(entry) if isinstance(entry, dict) else None
        if word is not None:
            words.append(word)
    return words


def _strings(data: Any) -> Any:
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for value in data.values():
            yield from _strings(value)
    elif isinstance(data, list):
        for value in data:
            yield from _strings(value)
