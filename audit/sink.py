"""Checkpoint sinks: where signed checkpoints are published outside the database.

A copy outside the DB is what makes a wholesale rewrite of the DB detectable: the rewritten log
cannot reproduce the roots of checkpoints that were already published. Implementations override
:meth:`CheckpointSink.publish` and :meth:`CheckpointSink.read_all`; they are chosen by name through
:data:`SINKS`. The embedded default appends to a JSONL file; a cluster would publish to object
storage with retention locks or to a transparency witness.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from pathlib import Path

from audit.canonical import canonical_json
from audit.checkpoint import Checkpoint


class CheckpointSink(ABC):
    """Receives every signed checkpoint after the transaction that made it has committed."""

    @abstractmethod
    def publish(self, checkpoint: Checkpoint) -> None:
        """Durably record ``checkpoint`` (append-only)."""

    @abstractmethod
    def read_all(self) -> list[Checkpoint]:
        """Every checkpoint published so far, in publication order; ValueError if unreadable."""


class NullSink(CheckpointSink):
    """Publishes nowhere (tests of the DB-only path)."""

    def publish(self, checkpoint: Checkpoint) -> None:
        return None

    def read_all(self) -> list[Checkpoint]:
        return []


class JsonlFileSink(CheckpointSink):
    """One canonical JSON checkpoint per line, appended with O_APPEND and fsync."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def publish(self, checkpoint: Checkpoint) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = canonical_json(checkpoint.to_dict()) + b"\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def read_all(self) -> list[Checkpoint]:
        if not self.path.exists():
            return []
        found = []
        with open(self.path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                if not line.endswith(b"\n"):
                    break  # a torn final write from a crash: that checkpoint was never acknowledged
                try:
                    found.append(Checkpoint.from_dict(json.loads(line)))
                except (ValueError, TypeError) as exc:
                    raise ValueError(f"{self.path}:{number}: unreadable checkpoint: {exc}") from exc
        return found


SINKS: dict[str, type[CheckpointSink]] = {"file": JsonlFileSink, "none": NullSink}
