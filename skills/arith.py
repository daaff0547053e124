"""ARI: small-number decimal arithmetic (``17+5=`` → ``22``), a fast warm-up skill.

Short prompts pack many examples per row, so the hatchling's loss falls visibly within
minutes on a CPU.
"""

from __future__ import annotations

import json
import re

from skills.base import Problem, Skill, problem_rng, strip_thinking

_NUMBER = re.compile(r"-?\d+")


class Arith(Skill):
    def generate(self, level: int, index: int, split: str = "train") -> Problem:
        params = self.spec.params(level)
        rng = problem_rng(self.id, level, index, split)
        largest, operators = int(params["largest"]), str(params["ops"])
        a, b = rng.randint(0, largest), rng.randint(0, largest)
        op = rng.choice(operators)
        if op == "-" and b > a:
            a, b = b, a  # keep answers non-negative at these levels
        answer = a + b if op == "+" else a - b
        key = json.dumps({"answer": answer})
        return Problem(self.id, level, index, split, f"{a}{op}{b}=", str(answer), key=key)

    def score(self, problem: Problem, response: str) -> float:
        numbers = _NUMBER.findall(strip_thinking(response))
        return 1.0 if numbers and int(numbers[0]) == json.loads(problem.key)["answer"] else 0.0
