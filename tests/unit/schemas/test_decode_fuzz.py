"""Fuzzing every input topic's decoder: bad bytes fail as DecodeError, never otherwise."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.codec import DecodeError, decode
from schemas.envelope import Event
from tests.bad_inputs import INPUT_ROLES, BadInput, decode_failure, valid_request, valid_shift

pytestmark = pytest.mark.fuzz

json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(bad=decode_failure())
def test_bad_input_is_a_decode_error_with_a_reason(bad: BadInput):
    """Malformed bytes, unknown types/versions, missing fields, NaN or out-of-range
    coordinates and impossible seat counts are refused with a reason."""
    with pytest.raises(DecodeError) as info:
        decode(bad.role, bad.value)
    assert info.value.reason
    assert info.value.error_type in ("decode", "validation", "unknown_type")


@settings(max_examples=300)
@given(role=st.sampled_from(INPUT_ROLES), data=st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_the_decoder(role: str, data: bytes):
    """Any bytes either decode to an event or raise DecodeError."""
    try:
        assert isinstance(decode(role, data), Event)
    except DecodeError as exc:
        assert exc.reason


@settings(max_examples=300)
@given(
    role=st.sampled_from(INPUT_ROLES),
    field=st.text(max_size=12) | st.sampled_from(["seats", "origin", "zone", "type", "event_id"]),
    value=json_values,
)
def test_mutated_valid_events_never_crash_the_decoder(role: str, field: str, value: object):
    """A valid event with one field replaced by any JSON value decodes or fails cleanly."""
    now = datetime.now(UTC)
    raw = valid_request("r-1", now) if role == "requests" else valid_shift("v-1", now)
    raw[field] = value
    try:
        decode(role, json.dumps(raw).encode())
    except DecodeError as exc:
        assert exc.reason


@settings(max_examples=100)
@given(bad=decode_failure())
def test_request_id_is_readable_when_present(bad: BadInput):
    """A refused request that names a request id exposes it, so the passenger hears back."""
    try:
        raw = json.loads(bad.value)
    except (ValueError, UnicodeDecodeError):
        raw = None
    with pytest.raises(DecodeError) as info:
        decode(bad.role, bad.value)
    if isinstance(raw, dict) and isinstance(raw.get("request_id"), str) and raw["request_id"]:
        assert info.value.request_id == raw["request_id"]
