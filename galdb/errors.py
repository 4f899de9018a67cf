"""Domain errors with stable codes, shared by the library and the CLI.

The CLI turns a :class:`GaldbError` into a one-line message and the exit status
:attr:`GaldbError.exit_code`; anything else is a bug and keeps its traceback.
"""


class GaldbError(Exception):
    """An error the user can act on; ``str(err)`` is the whole message."""

    exit_code = 1


class DatabaseError(GaldbError):
    """The database cannot be reached, started or migrated."""

    exit_code = 3


class ReadOnlyViolation(GaldbError):
    """A statement given to the read-only SQL interface tried to write or escape."""

    exit_code = 4


class IngestFailed(GaldbError):
    """An ingest stored nothing at all (every input was bad or missing)."""

    exit_code = 5
