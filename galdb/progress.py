"""How long-running library calls report progress; the CLI draws it as a rich progress bar."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Receives the size of the job (``None`` when unknown) and then its advances."""

    def start(self, total: int | None, description: str = "") -> None: ...

    def advance(self, n: int = 1) -> None: ...


class NoProgress:
    """The default: report nothing."""

    def start(self, total: int | None, description: str = "") -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass
