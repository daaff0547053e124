"""Is one loot really better than another on a suite? A paired comparison.

Per question: fixed (A wrong, B right), broken (A right, B wrong), both right, both
wrong ("right" = a score of at least 0.5, so keyword scores count too). The exact
two-sided sign test over the discordant questions (fixed vs broken) says how likely a
split at least this lopsided is if neither loot were better; with fewer than 6
discordant questions even a 6-0 split cannot reach p < 0.05, and we say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb

RIGHT = 0.5
MIN_DISCORDANT = 6  # 2 * 0.5**5 = 0.0625 > 0.05: fewer can never be significant


@dataclass(frozen=True)
class Paired:
    fixed: tuple[str, ...]
    broken: tuple[str, ...]
    both_right: tuple[str, ...]
    both_wrong: tuple[str, ...]
    mean_a: float
    mean_b: float
    p_value: float
    verdict: str


def sign_test(wins: int, losses: int) -> float:
    """Exact two-sided binomial test of wins vs losses at p = 0.5."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    tail = sum(comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired(ids: list[str], a: list[float], b: list[float]) -> Paired:
    if not (len(ids) == len(a) == len(b)) or not ids:
        raise ValueError("a paired comparison needs the same questions, scored twice")
    groups: dict[tuple[bool, bool], list[str]] = {}
    for qid, x, y in zip(ids, a, b, strict=True):
        groups.setdefault((x >= RIGHT, y >= RIGHT), []).append(qid)
    fixed, broken = groups.get((False, True), []), groups.get((True, False), [])
    p = sign_test(len(fixed), len(broken))
    if len(fixed) + len(broken) < MIN_DISCORDANT:
        verdict = (
            f"too few questions differ ({len(fixed) + len(broken)}) to tell: "
            f"at least {MIN_DISCORDANT} must, for a sign test to reach p < 0.05"
        )
    elif p < 0.05:
        better = "B" if len(fixed) > len(broken) else "A"
        verdict = f"{better} is better (p = {p:.3g})"
    else:
        verdict = f"no real difference (p = {p:.3g})"
    return Paired(
        tuple(fixed),
        tuple(broken),
        tuple(groups.get((True, True), [])),
        tuple(groups.get((False, False), [])),
        sum(a) / len(a),
        sum(b) / len(b),
        p,
        verdict,
    )
