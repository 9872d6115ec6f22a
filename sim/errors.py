"""The one exception type whose message is shown to users as a single line, and how lines are made single."""

# Set by `sim --debug`: show full tracebacks instead of one-line errors.
DEBUG_ENV = "SIM_DEBUG"


class SimError(Exception):
    """A problem the user can fix: bad input, a missing file, an unusable database."""


def one_line(text: str, limit: int | None = None) -> str:
    """`text` with all whitespace runs folded to single spaces, cut to `limit` characters."""
    line = " ".join(text.split())
    return line if limit is None or len(line) <= limit else line[: limit - 1] + "…"


def require_positive(setting: str, value: float) -> None:
    """Refuse a size, count or duration that is not above zero; `setting` is its full key, e.g. `backend.n_ctx`.

    Backends and analyzers share it so that every bad number reads the same: `KEY must be positive, got VALUE`."""
    if not value > 0:  # written with `not` so that nan is refused too
        raise SimError(f"{setting} must be positive, got {value}")


def require_score(setting: str, value: float, highest: float = 1.0, what: str = "") -> None:
    """Refuse a threshold outside (0, highest], the range of the score it cuts (`what` says which, if not obvious)."""
    if not 0 < value <= highest:  # written with `not` so that nan is refused too
        raise SimError(f"{setting} must be in (0, {highest:g}]{what}, got {value}")


def require_at_least(setting: str, value: float, minimum: float) -> None:
    """Refuse a number below `minimum` (0: `must not be negative`); `setting` is its full key."""
    if not value >= minimum:
        wanted = "must not be negative" if minimum == 0 else f"must be at least {minimum}"
        raise SimError(f"{setting} {wanted}, got {value}")
