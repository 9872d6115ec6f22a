"""The one exception type whose message is shown to users as a single line, how lines are made single, and the
checks of configured values that raise it."""

from __future__ import annotations

from typing import Any, Iterable, Optional

# Set by `sim --debug`: show full tracebacks instead of one-line errors.
DEBUG_ENV = "SIM_DEBUG"


class SimError(Exception):
    """A problem the user can fix: bad input, a missing file, an unusable database."""


def one_line(text: str, limit: int | None = None) -> str:
    """`text` with all whitespace runs folded to single spaces, cut to `limit` characters."""
    line = " ".join(text.split())
    return line if limit is None or len(line) <= limit else line[: limit - 1] + "…"


def require_positive(setting: str, value: Optional[float], null_means: Optional[str] = None) -> None:
    """Refuse a size, count or duration that is not above zero; `setting` is its full key, e.g. `backend.n_ctx`.
    With `null_means` (what null stands for, e.g. `no cap`), null is accepted and the message says so.

    Backends, scenarios and analyzers share it so that every bad number reads the same: `KEY must be positive, got
    VALUE`."""
    if value is None and null_means is not None:
        return
    if value is None or not value > 0:  # written with `not` so that nan is refused too
        also = f" (or null for {null_means})" if null_means is not None else ""
        raise SimError(f"{setting} must be positive{also}, got {value}")


def require_one_of(setting: str, value: Any, choices: Iterable[str]) -> None:
    """Refuse a value that is none of `choices`, naming them."""
    choices = list(choices)
    if value not in choices:
        raise SimError(f"{setting} must be one of {', '.join(choices)}, got {value!r}")


def require_score(setting: str, value: float, highest: float = 1.0, what: str = "") -> None:
    """Refuse a threshold outside (0, highest], the range of the score it cuts (`what` says which, if not obvious)."""
    if not 0 < value <= highest:  # written with `not` so that nan is refused too
        raise SimError(f"{setting} must be in (0, {highest:g}]{what}, got {value}")


def require_at_least(setting: str, value: float, minimum: float) -> None:
    """Refuse a number below `minimum` (0: `must not be negative`); `setting` is its full key."""
    if not value >= minimum:
        wanted = "must not be negative" if minimum == 0 else f"must be at least {minimum}"
        raise SimError(f"{setting} {wanted}, got {value}")
