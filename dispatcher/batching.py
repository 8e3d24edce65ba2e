"""When to run the solver: a time window after the first pending request, or a size cap."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class BatchPolicy:
    """Collects request ids; ``due(now)`` once the window has passed or the batch is full.

    Pure: time is passed in. ``window_s`` counts from the oldest pending request,
    so a steady trickle cannot postpone a batch forever.
    """

    window_s: float = 2.0
    max_size: int = 50
    _pending: list[str] = field(default_factory=list)
    _opened_at: float | None = None

    def offer(self, request_id: str, now: float) -> None:
        if request_id in self._pending:
            return
        if not self._pending:
            self._opened_at = now
        self._pending.append(request_id)

    def withdraw(self, request_id: str) -> bool:
        if request_id not in self._pending:
            return False
        self._pending.remove(request_id)
        if not self._pending:
            self._opened_at = None
        return True

    def due(self, now: float) -> bool:
        if not self._pending:
            return False
        if len(self._pending) >= self.max_size:
            return True
        assert self._opened_at is not None
        return now - self._opened_at >= self.window_s

    def next_due_at(self) -> float | None:
        """When the current batch will be due by time (None if empty)."""
        return None if self._opened_at is None else self._opened_at + self.window_s

    def take(self) -> list[str]:
        """Up to ``max_size`` oldest requests; the rest keep their window (so stay due)."""
        batch, self._pending = self._pending[: self.max_size], self._pending[self.max_size :]
        if not self._pending:
            self._opened_at = None
        return batch

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def pending(self) -> tuple[str, ...]:
        return tuple(self._pending)
