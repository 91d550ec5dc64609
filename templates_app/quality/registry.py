"""The rule registry: each rule has a stable id (callers and overrides key on it), a level and a check.

A check takes the rendered email of one locale and yields findings; it never raises on odd input
(the runner turns a crash into a warning so a lint bug cannot block a submit).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from templates_app.quality import tree

Level = Literal["warning", "error"]
MAX_PER_RULE = 10  # per rule and locale: enough to find the pattern, small enough to store and read


@dataclass
class Email:
    """One locale's email as the recipient gets it: rendered with the sample variables."""

    locale: str
    subject: str
    html: str
    text: str

    @cached_property
    def doc(self) -> tree.Document:
        return tree.parse(self.html)


@dataclass(frozen=True)
class Rule:
    id: str
    level: Level
    title: str
    check: Callable[[Email], Iterable["Hit"]] = field(compare=False)


@dataclass(frozen=True)
class Hit:
    """What a check reports: the element (a locator a reviewer can find) and a human message."""

    element: str
    message: str


RULES: dict[str, Rule] = {}


def rule(rule_id: str, level: Level, title: str) -> Callable:
    """Register a check under a stable id; a second rule with the same id is a programming error."""

    def register(check: Callable[[Email], Iterable[Hit]]) -> Callable[[Email], Iterable[Hit]]:
        if rule_id in RULES:
            raise ValueError(f"lint rule {rule_id} registered twice")
        RULES[rule_id] = Rule(rule_id, level, title, check)
        return check

    return register
