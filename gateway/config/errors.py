"""The error every configuration problem ends in."""


class ConfigError(Exception):
    """The configuration cannot be used: every problem found, one line each, naming the key and what is wrong."""

    def __init__(self, lines: str | list[str]) -> None:
        self.problems = [lines] if isinstance(lines, str) else list(lines)
        super().__init__("\n".join(self.problems))
