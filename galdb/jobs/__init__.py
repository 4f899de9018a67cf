"""Background jobs in PostgreSQL: the queue (``queue``), the worker (``worker``) and one module
per job kind, registered in :data:`galdb.jobs.kinds.KINDS`."""
