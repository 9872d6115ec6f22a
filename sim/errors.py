"""The one exception type whose message is shown to users as a single line, and how lines are made single."""

# Set by `sim --debug`: show full tracebacks instead of one-line errors.
DEBUG_ENV = "SIM_DEBUG"


class SimError(Exception):
    """A problem the user can fix: bad input, a missing file, an unusable database."""


def one_line(text: str, limit: int | None = None) -> str:
    """`text` with all whitespace runs folded to single spaces, cut to `limit` characters."""
    line = " ".join(text.split())
    return line if limit is None or len(line) <= limit else line[: limit - 1] + "…"
