"""The Textual review app (``galdb review``)."""
