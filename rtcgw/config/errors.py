"""The one exception of the configuration layer, and the problems it carries.

A configuration is checked as a whole: the loader collects every problem it finds and raises
a single ``ConfigError`` at the end, so an operator fixes a file in one round instead of one
error per run. Each problem names the file, the key path inside it (as a TOML reader would
write it: ``realms.rtc.a_rules[1].actions[0]``) and the reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import final

__all__ = ["ConfigError", "ConfigProblem"]


@final
@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong with a configuration file.

    ``key_path`` is empty when the problem concerns the file as a whole (unreadable, TOML
    syntax); ``line`` and ``column`` are known only for TOML syntax errors.
    """

    source: str
    key_path: str
    reason: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = self.source
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        if self.key_path:
            where += f": {self.key_path}"
        return f"{where}: {self.reason}"


class ConfigError(Exception):
    """A configuration could not be loaded; ``problems`` lists every reason, in file order.

    ``str()`` gives one problem per line, ready to print as it is.
    """

    def __init__(self, problems: Iterable[ConfigProblem]) -> None:
        self.problems: tuple[ConfigProblem, ...] = tuple(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))

    def __str__(self) -> str:
        return "\n".join(str(problem) for problem in self.problems)
