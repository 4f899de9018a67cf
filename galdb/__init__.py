"""galdb: a catalog of galaxy images in PostgreSQL with pgvector.

The library API lives in the subpackages (``galdb.db``, ``galdb.ingest``, ``galdb.search``,
``galdb.sim``); the ``galdb`` command-line tool in ``galdb.cli`` is a thin layer over it.
"""

__version__ = "0.1.0"
