"""Retention of passenger personal data (GDPR): a pure anonymiser and its job.

After ``days`` (``DRT_RETENTION__DAYS``, ``drt retention --days N``) the
dispatcher keeps only what statistics need. For rides that are final (completed,
rejected, cancelled, no-show) and older than the cut-off, every stored JSON
document (the request, the ride state, the outcome sent to the passenger) loses

- ``passenger_ref`` and any name, phone or e-mail field (set to ``null``), and
- exact coordinates: every ``{"lat", "lon"}`` object is rounded to
  :data:`COARSE_DECIMALS` decimals (about 1 km), so demand maps still work.

Driver plans, dead-letter rows and published outbox messages older than the
cut-off are deleted outright: they are operational, and the outbox holds the
original bytes. ``processed_events`` holds ids and offsets only and stays, so a
very late replay is still recognised. :meth:`dispatcher.store.Store.apply_retention`
runs the SQL; :func:`anonymise` is the pure part, tested on its own.
"""

from __future__ import annotations

from typing import Any

#: Decimals kept of anonymised coordinates (0.01 degree: about 1.1 km north-south).
COARSE_DECIMALS = 2
#: Keys whose values are personal data and are cleared.
PERSONAL_KEYS = frozenset(
    {"passenger_ref", "passenger_name", "name", "phone", "phone_number", "email", "address"}
)


def anonymise(value: Any, decimals: int = COARSE_DECIMALS) -> Any:
    """A copy of a JSON value without personal data (see the module docstring)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in PERSONAL_KEYS:
                out[key] = None
            elif key in ("lat", "lon") and isinstance(item, int | float) and "lat" in value:
                out[key] = round(float(item), decimals)
            else:
                out[key] = anonymise(item, decimals)
        return out
    if isinstance(value, list):
        return [anonymise(v, decimals) for v in value]
    return value
