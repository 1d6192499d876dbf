"""A one-line progress bar on a terminal, for long work (replay, reconcile, statements)."""

from __future__ import annotations

import sys
import time
from typing import IO

__all__ = ["ProgressBar"]



class ProgressBar:
    """A one-line progress bar on a terminal (stderr); silent when not a tty."""

    def __init__(self, total: int, stream: IO[str] | None = None, *, label: str = "replay",
                 enabled: bool | None = None, unit: str = "tickets") -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.total = max(1, total)
        self.label = label
        self.unit = unit
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.started = time.monotonic()
        self._last = 0.0

    def update(self, done: int, tickets: int, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        share = min(1.0, done / self.total)
        width = 30
        filled = int(share * width)
        elapsed = now - self.started
        rate = tickets / elapsed if elapsed > 0 else 0.0
        eta = (elapsed / share - elapsed) if share > 0 else 0.0
        bar = "█" * filled + "░" * (width - filled)
        self.stream.write(f"\r{self.label} {bar} {share:4.0%} {tickets:,} {self.unit} {rate:,.0f}/s "
                          f"eta {eta:3.0f}s ")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
