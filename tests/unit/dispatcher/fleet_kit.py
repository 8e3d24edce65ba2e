"""Builders for core tests: events at fixed times in the Rendsburg region."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import timedelta
from typing import TypeVar

from dispatcher.clock import to_datetime
from dispatcher.core import Area, CoreConfig, DispatchCore
from dispatcher.geo import CrowFliesTravel, LatLon
from schemas.dispatch import RideOfferedV1, RideRejectedV1
from schemas.envelope import Event, Place
from schemas.passenger import RideRequestedV1
from schemas.vehicle import ShiftStartedV1

T0 = 1_795_000_000.0  # 2026-11-19, evening
RENDSBURG = Place(lat=54.306495, lon=9.663206)
BUEDELSDORF = Place(lat=54.315687, lon=9.677817)
FOCKBEK = Place(lat=54.30413, lon=9.601589)
JEVENSTEDT = Place(lat=54.234604, lon=9.668849)
OSTERROENFELD = Place(lat=54.292151, lon=9.697439)
AREA = Area(54.15, 54.45, 9.45, 9.85)


def answer_counts(outputs: Iterable[tuple[float, Event]]) -> Counter[str]:
    """How many times each request was answered (offered or rejected).

    An offer again that only tells the passenger another vehicle (a confirmed ride
    moved by a later plan: the same promised window and latest drop-off) is not a
    new answer; any other repeat is.
    """
    counts: Counter[str] = Counter()
    last: dict[str, Event] = {}
    for _, e in outputs:
        if not isinstance(e, RideOfferedV1 | RideRejectedV1):
            continue
        prev = last.get(e.request_id)
        last[e.request_id] = e
        if (
            isinstance(e, RideOfferedV1)
            and isinstance(prev, RideOfferedV1)
            and prev.vehicle_id != e.vehicle_id
            and (prev.pickup_window_start, prev.pickup_window_end, prev.latest_dropoff)
            == (e.pickup_window_start, e.pickup_window_end, e.latest_dropoff)
        ):
            continue
        counts[e.request_id] += 1
    return counts


def core(**kw: object) -> DispatchCore:
    config = CoreConfig(areas={"rendsburg": AREA}, **kw)  # type: ignore[arg-type]
    return DispatchCore(config, CrowFliesTravel())


def shift(
    vehicle_id: str,
    at: float = T0,
    seats: int = 4,
    wheelchairs: int = 1,
    position: Place | None = None,
    hours: float = 8,
    break_window: tuple[float, float] | None = None,
    break_s: int = 1800,
) -> ShiftStartedV1:
    """A shift of ``hours`` from ``at`` at the Rendsburg depot; with ``break_window``
    (start and end times) a break of ``break_s`` inside it."""
    brk = (
        {
            "break_window_start": to_datetime(break_window[0]),
            "break_window_end": to_datetime(break_window[1]),
            "break_duration_s": break_s,
        }
        if break_window is not None
        else {}
    )
    return ShiftStartedV1(
        occurred_at=to_datetime(at),
        source="test",
        vehicle_id=vehicle_id,
        zone="rendsburg",
        seats=seats,
        wheelchairs=wheelchairs,
        depot=RENDSBURG,
        position=position,
        shift_start=to_datetime(at),
        shift_end=to_datetime(at) + timedelta(hours=hours),
        **brk,
    )


def request(
    request_id: str,
    origin: Place = FOCKBEK,
    destination: Place = BUEDELSDORF,
    at: float = T0,
    **kw: object,
) -> RideRequestedV1:
    return RideRequestedV1.model_validate(
        {
            "occurred_at": to_datetime(at),
            "source": "test",
            "request_id": request_id,
            "passenger_ref": f"p-{request_id}",
            "zone": "rendsburg",
            "origin": origin,
            "destination": destination,
            **kw,
        }
    )


E = TypeVar("E", bound=Event)


def of_kind(outputs: list[Event], kind: type[E]) -> list[E]:
    """The outputs of one event type, in order."""
    return [e for e in outputs if isinstance(e, kind)]


def vehicle_event(kind: type[Event], at: float, vehicle_id: str = "v1", **kw: object) -> Event:
    """A vehicle event of ``kind`` at ``at`` (e.g. ``PassengerBoardedV1``, ``request_id=...``)."""
    return kind.model_validate(
        {"occurred_at": to_datetime(at), "source": "t", "zone": "rendsburg"}
        | {"vehicle_id": vehicle_id}
        | kw
    )


def latlon(p: Place) -> LatLon:
    """The core's coordinates of a message's place."""
    return LatLon(p.lat, p.lon)
