"""ARI: small-number arithmetic, the built-in training stream until richer skills land.

Short prompts (``17+5=``) so many examples pack into one row and the hatchling's
loss falls visibly within minutes on a CPU.
"""

from __future__ import annotations

import re

from skills.base import Problem, Skill, problem_rng, strip_thinking

# level -> (largest operand, operators)
_LEVELS: dict[int, tuple[int, str]] = {
    1: (9, "+"),
    2: (19, "+"),
    3: (49, "+-"),
    4: (99, "+-"),
    5: (999, "+-"),
}
_NUMBER = re.compile(r"-?\d+")


class Arith(Skill):
    id = "ari"
    name = "Arithmetic"
    max_level = len(_LEVELS)

    def generate(self, level: int, index: int, split: str = "train") -> Problem:
        if level not in _LEVELS:
            raise ValueError(f"ari has levels 1..{self.max_level}, not {level}")
        rng = problem_rng(self.id, level, index, split)
        largest, operators = _LEVELS[level]
        a, b = rng.randint(0, largest), rng.randint(0, largest)
        op = rng.choice(operators)
        if op == "-" and b > a:
            a, b = b, a  # keep answers non-negative at these levels
        answer = a + b if op == "+" else a - b
        return Problem(self.id, level, index, split, f"{a}{op}{b}=", str(answer))

    def score(self, problem: Problem, response: str) -> float:
        numbers = _NUMBER.findall(strip_thinking(response))
        return 1.0 if numbers and numbers[0] == problem.answer else 0.0
