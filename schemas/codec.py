"""Bytes <-> events. The only place where bytes become models.

``decode`` raises :class:`DecodeError` with a reason a person can act on; the
dispatcher sends such messages to the dead-letter topic. Old schema versions
would be upcast here, so the core only ever sees the newest.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import ValidationError

from schemas.envelope import Event
from schemas.topics import TOPIC_BY_ROLE

ErrorType = Literal["decode", "validation", "unknown_type", "semantic"]


class DecodeError(ValueError):
    """A message that cannot become an event; ``reason`` goes to the dead-letter topic."""

    def __init__(
        self, reason: str, error_type: ErrorType, raw: dict[str, Any] | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_type: ErrorType = error_type
        self.raw = raw

    @property
    def request_id(self) -> str | None:
        """The request id, if one can be read, so the passenger can still be told."""
        if self.raw is None:
            return None
        value = self.raw.get("request_id")
        if isinstance(value, str) and 0 < len(value) <= 128:
            return value
        return None


def encode(event: Event) -> bytes:
    """The JSON bytes of an event."""
    return event.model_dump_json().encode()


def decode(role: str, value: bytes | None) -> Event:
    """The event in ``value`` for a topic of ``role``, or a :class:`DecodeError`."""
    spec = TOPIC_BY_ROLE[role]
    if value is None:
        raise DecodeError("empty message (tombstone) on an event topic", "decode")
    try:
        raw = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DecodeError(f"not valid JSON: {exc}", "decode") from None
    if not isinstance(raw, dict):
        raise DecodeError(f"expected a JSON object, got {type(raw).__name__}", "decode")
    try:
        event: Event = spec.adapter.validate_python(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if any(e["type"] in {"union_tag_invalid", "union_tag_not_found"} for e in errors):
            tag = f"{raw.get('type')!r}@{raw.get('schema_version')!r}"
            known = ", ".join(
                f"{m.model_fields['type'].default}@{m.model_fields['schema_version'].default}"
                for m in spec.models
            )
            raise DecodeError(
                f"unknown event type/version {tag} on {role} topic; expected one of {known}",
                "unknown_type",
                raw,
            ) from None
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or '(root)'}: {e['msg']}" for e in errors
        )
        raise DecodeError(f"validation failed: {details}", "validation", raw) from None
    return event
