"""The one exception type for user mistakes; the CLI prints it as a single ``Error: …`` line."""


class LabkitError(Exception):
    """A problem the user can fix (bad option, missing file, data not on disk)."""
