"""Where galdb keeps its data and which database it talks to.

Resolution order, first match wins:

* ``GALDB_DATABASE_URL`` names an external PostgreSQL (with pgvector); otherwise
* the embedded server under ``<home>/pgdata`` is used, where ``<home>`` is ``--data-dir``,
  else ``GALDB_HOME``, else the per-user data directory (e.g. ``~/.local/share/galdb``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

DATABASE_NAME = "galdb"
READER_ROLE = "galdb_reader"
REVIEWER_ROLE = "galdb_reviewer"
OWNER_ROLE = "galdb_owner"  # group role (NOLOGIN) owning galdb's objects; see migration 0009


@dataclass(frozen=True)
class Settings:
    """Resolved settings for one process.

    Attributes
    ----------
    home : Path
        galdb's data directory (embedded server data, reader credentials, demo output).
    database_url : str or None
        An external server's URL; ``None`` means use the embedded server.
    statement_timeout_ms : int
        Timeout applied to read-only SQL issued through ``galdb sql``.
    """

    home: Path
    database_url: str | None = None
    statement_timeout_ms: int = 30_000

    @classmethod
    def from_env(cls, data_dir: str | Path | None = None) -> Settings:
        home = data_dir or os.environ.get("GALDB_HOME") or platformdirs.user_data_dir("galdb")
        timeout = int(os.environ.get("GALDB_STATEMENT_TIMEOUT_MS", "30000"))
        return cls(
            home=Path(home).expanduser().resolve(),
            database_url=os.environ.get("GALDB_DATABASE_URL") or None,
            statement_timeout_ms=timeout,
        )

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"
