"""The batching policy: a time window from the oldest request, or a size cap."""

from __future__ import annotations

from dispatcher.batching import BatchPolicy


def test_due_after_window_from_first_request():
    """A batch is due once the window has passed since its oldest request."""
    policy = BatchPolicy(window_s=2.0, max_size=10)
    assert not policy.due(0.0)
    policy.offer("a", 10.0)
    policy.offer("b", 11.5)
    assert not policy.due(11.9)
    assert policy.due(12.0)
    assert policy.take() == ["a", "b"]
    assert not policy.due(100.0)


def test_size_cap_makes_batch_due_and_overflow_stays():
    """A full batch is due at once; what is over the cap waits for the next one."""
    policy = BatchPolicy(window_s=60.0, max_size=3)
    for i, rid in enumerate("abcde"):
        policy.offer(rid, float(i))
    assert policy.due(4.0)
    assert policy.take() == ["a", "b", "c"]
    assert policy.pending == ("d", "e")
    assert policy.due(60.0)  # overflow keeps the old window


def test_withdraw_and_duplicates():
    """A cancelled request leaves the batch; offering the same id twice keeps one."""
    policy = BatchPolicy(window_s=1.0)
    policy.offer("a", 0.0)
    policy.offer("a", 0.5)
    assert len(policy) == 1
    assert policy.withdraw("a")
    assert not policy.withdraw("a")
    assert policy.next_due_at() is None
