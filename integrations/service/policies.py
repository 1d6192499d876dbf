"""The running service's policies: loaded once, reloaded when the files change, never lost.

A reload that finds errors keeps the last good policies and reports the errors (log and
`/healthz`), so a typo in production changes nothing until it is fixed.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Callable

from plugin.engine import Engine
from plugin.manager import get_plugin_manager
from plugin.model import Policies
from plugin.policy import PolicyErrors, load_policies

log = logging.getLogger("policydesk.policies")


class PolicyHolder:
    """Holds the current `Engine`; `reload_if_changed` swaps it only for valid policies."""

    def __init__(self, directory: str, on_refused: Callable[[list[str]], None] | None = None) -> None:
        self.directory = directory
        self.on_refused = on_refused
        self.pm = get_plugin_manager()
        self._lock = threading.Lock()
        self.errors: list[str] = []
        self._stamp = self._files_stamp()
        self._engine = Engine(load_policies(directory), self.pm)  # the first load must succeed

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def policies(self) -> Policies:
        return self._engine.policies

    def _files_stamp(self) -> tuple[tuple[str, int, int], ...]:
        files = sorted(Path(self.directory).glob("*.yaml"))
        return tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files if f.exists())

    def reload_if_changed(self) -> bool:
        """Reload when a policy file changed; ``True`` when new policies took effect."""
        with self._lock:
            stamp = self._files_stamp()
            if stamp == self._stamp:
                return False
            self._stamp = stamp
            try:
                policies = load_policies(self.directory)
            except PolicyErrors as errors:
                self.errors = [str(e) for e in errors.errors]
                log.error("policy reload refused (%d error(s)), keeping the last good policies: %s",
                          len(self.errors), " | ".join(self.errors[:20]))
                if self.on_refused is not None:
                    self.on_refused(self.errors)
                return False
            self._engine = Engine(policies, self.pm)
            self.errors = []
            log.info("policies reloaded from %s", self.directory)
            return True
