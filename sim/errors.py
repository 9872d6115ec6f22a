"""The one exception type whose message is shown to users as a single line."""


class SimError(Exception):
    """A problem the user can fix: bad input, a missing file, an unusable database."""
