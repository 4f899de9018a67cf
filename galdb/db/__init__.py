"""Database access: settings, the embedded server, connections and migrations."""

from galdb.db.connect import connect, database_url
from galdb.db.settings import Settings

__all__ = ["Settings", "connect", "database_url"]
