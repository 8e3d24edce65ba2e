"""What a tablet shows for a vehicle, derived from its topics. No I/O.

``PlanBoard.apply`` keeps each vehicle's latest plan (highest ``plan_version``, so a
replay of the compacted driver-plans topic ends on the current one), its shift, and
which requests it has arrived for, boarded or finished, and the driver's latest break
request with what became of it (planned in a driver plan, or refused: a dead letter
of the dispatcher). ``view`` turns that into the JSON the page renders: consecutive
planned stops at one place are one stop card.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from schemas.dispatch import DeadLetterV1, DriverPlanV1, PlannedStop, StopAction
from schemas.envelope import Event
from schemas.vehicle import (
    ArrivedAtStopV1,
    BreakRequestedV1,
    NoShowV1,
    PassengerAlightedV1,
    PassengerBoardedV1,
    ShiftEndedV1,
    ShiftStartedV1,
)


@dataclass(slots=True)
class VehicleBoard:
    vehicle_id: str
    zone: str = ""
    plan: DriverPlanV1 | None = None
    shift_end: datetime | None = None
    on_shift: bool = False
    seats: int = 0
    wheelchairs: int = 0
    arrived: dict[tuple[str, StopAction], datetime] = field(default_factory=dict)
    boarded: set[str] = field(default_factory=set)
    finished: set[str] = field(default_factory=set)
    #: the latest break request (its event id and time) and why it was refused, if it was
    break_request: tuple[str, datetime] | None = None
    break_refused: str | None = None

    def stop_of(self, request_id: str, action: StopAction) -> PlannedStop | None:
        if self.plan is None:
            return None
        return next(
            (s for s in self.plan.stops if s.request_id == request_id and s.action is action),
            None,
        )


def _same_place(a: PlannedStop, b: PlannedStop) -> bool:
    return (round(a.location.lat, 5), round(a.location.lon, 5)) == (
        round(b.location.lat, 5),
        round(b.location.lon, 5),
    )


def navigation(lat: float, lon: float, name: str | None) -> dict[str, str]:
    label = quote(name or "Halt")
    return {
        "geo": f"geo:{lat:.6f},{lon:.6f}?q={lat:.6f},{lon:.6f}({label})",
        "osm": (
            "https://www.openstreetmap.org/directions?engine=fossgis_osrm_car"
            f"&route=%3B{lat:.6f}%2C{lon:.6f}"
        ),
    }


class PlanBoard:
    """Every vehicle the topics mention."""

    def __init__(self) -> None:
        self.vehicles: dict[str, VehicleBoard] = {}

    def board(self, vehicle_id: str) -> VehicleBoard:
        return self.vehicles.setdefault(vehicle_id, VehicleBoard(vehicle_id))

    def apply(self, event: Event) -> str | None:
        """Fold one event in; the id of the vehicle that changed, if any."""
        if isinstance(event, DeadLetterV1):
            return self._refused(event)
        vehicle_id = getattr(event, "vehicle_id", None)
        if not isinstance(vehicle_id, str):
            return None
        b = self.board(vehicle_id)
        b.zone = getattr(event, "zone", None) or b.zone
        match event:
            case DriverPlanV1():
                if b.plan is not None and b.plan.plan_version > event.plan_version:
                    return None
                b.plan = event
            case ShiftStartedV1():
                b.on_shift, b.shift_end = True, event.shift_end
                b.seats, b.wheelchairs = event.seats, event.wheelchairs
            case ShiftEndedV1():
                b.on_shift = False
                b.break_request, b.break_refused = None, None
            case BreakRequestedV1():
                b.break_request, b.break_refused = (str(event.event_id), event.occurred_at), None
            case ArrivedAtStopV1():
                for rid in event.request_ids:
                    action = StopAction.DROPOFF if rid in b.boarded else StopAction.PICKUP
                    b.arrived.setdefault((rid, action), event.occurred_at)
            case PassengerBoardedV1():
                b.boarded.add(event.request_id)
            case PassengerAlightedV1() | NoShowV1():
                b.finished.add(event.request_id)
            case _:
                return None
        return vehicle_id

    def _refused(self, letter: DeadLetterV1) -> str | None:
        """A dead-lettered break request of a vehicle: the dispatcher refused it."""
        try:
            original = json.loads(letter.payload)
        except ValueError:
            return None
        if not isinstance(original, dict) or original.get("type") != "break.requested":
            return None
        b = self.vehicles.get(str(original.get("vehicle_id")))
        if b is None or b.break_request is None or b.break_request[0] != original.get("event_id"):
            return None
        b.break_refused = letter.reason
        return b.vehicle_id


def break_view(b: VehicleBoard, now: datetime) -> dict[str, Any]:
    """The break as the tablet shows it: ``state`` is None, ``requested`` (not yet
    answered), ``planned``, ``running`` or ``refused`` (with ``reason``)."""
    plan = b.plan
    start, end = (plan.break_start, plan.break_end) if plan is not None else (None, None)
    out: dict[str, Any] = {
        "state": None,
        "start": None,
        "end": None,
        "location": None,
        "reason": None,
    }
    if start is not None and end is not None and end > now:
        out.update(start=start, end=end, state="running" if start <= now else "planned")
        if plan is not None and plan.break_location is not None:
            out["location"] = plan.break_location.model_dump(mode="json")
    request = b.break_request
    answered = request is None or (
        plan is not None and plan.occurred_at >= request[1] and start is not None
    )
    if b.break_refused is not None:
        if out["state"] is None:
            out.update(state="refused", reason=b.break_refused)
    elif not answered and out["state"] != "running":
        out["state"] = "requested"
    return out


def no_show_from(b: VehicleBoard, stop: PlannedStop, wait_s: int) -> datetime | None:
    """When a no-show may be reported for a pickup: ``wait_s`` after arrival (or after
    the promised window opens, if the vehicle was early), or the stop's latest
    departure if that comes first. None before arrival."""
    arrived = b.arrived.get((stop.request_id, StopAction.PICKUP))
    if arrived is None:
        return None
    start = max(arrived, stop.window_start) if stop.window_start else arrived
    at = start + timedelta(seconds=wait_s)
    if stop.latest_departure is not None:  # waiting longer would break another promise
        at = max(start, min(at, stop.latest_departure))
    return at


def view(b: VehicleBoard, wait_s: int, names: dict[str, str], now: datetime) -> dict[str, Any]:
    """The page's model of one vehicle: shift, load and stop cards, next stop first."""
    stops = [s for s in (b.plan.stops if b.plan else []) if s.request_id not in b.finished]
    picked = {s.request_id for s in stops if s.action is StopAction.PICKUP}
    onboard = [s for s in stops if s.action is StopAction.DROPOFF and s.request_id not in picked]
    cards: list[dict[str, Any]] = []
    group: list[PlannedStop] = []
    for stop in [*stops, None]:
        if stop is not None and (not group or _same_place(group[-1], stop)):
            group.append(stop)
            continue
        if group:
            first = group[0]
            loc = first.location
            name = loc.name or names.get(loc.stop_id or "") or f"{loc.lat:.5f}, {loc.lon:.5f}"
            arrived = [
                t for s in group if (t := b.arrived.get((s.request_id, s.action))) is not None
            ]
            cards.append(
                {
                    "index": len(cards),
                    "name": name,
                    "stop_id": loc.stop_id,
                    "lat": loc.lat,
                    "lon": loc.lon,
                    "eta": first.eta,
                    "window_start": first.window_start,
                    "window_end": first.window_end,
                    "arrived_at": min(arrived) if arrived else None,
                    "navigation": navigation(loc.lat, loc.lon, name),
                    "request_ids": [s.request_id for s in group],
                    "pickups": [
                        {
                            "request_id": s.request_id,
                            "seats": s.seats,
                            "wheelchairs": s.wheelchairs,
                            "boarded": s.request_id in b.boarded,
                            "no_show_from": no_show_from(b, s, wait_s),
                        }
                        for s in group
                        if s.action is StopAction.PICKUP
                    ],
                    "dropoffs": [
                        {
                            "request_id": s.request_id,
                            "seats": s.seats,
                            "wheelchairs": s.wheelchairs,
                            "onboard": s.request_id not in picked,
                        }
                        for s in group
                        if s.action is StopAction.DROPOFF
                    ],
                }
            )
        group = [stop] if stop is not None else []
    return {
        "vehicle_id": b.vehicle_id,
        "plan_version": b.plan.plan_version if b.plan else 0,
        "on_shift": b.on_shift,
        "shift_end": b.shift_end,
        "on_break": (brk := break_view(b, now))["state"] == "running",
        "break": brk,
        "capacity": {"seats": b.seats, "wheelchairs": b.wheelchairs},
        "onboard": {
            "seats": sum(s.seats for s in onboard),
            "wheelchairs": sum(s.wheelchairs for s in onboard),
        },
        "no_show_wait_s": wait_s,
        "stops": cards,
        "standby": standby_view(b, names) if not cards else None,
        # the first stop is far ahead: wait here until then (None: drive there now)
        "set_off_at": (
            b.plan.set_off_at
            if b.plan is not None and b.plan.set_off_at is not None and b.plan.set_off_at > now
            else None
        ),
    }


def standby_view(b: VehicleBoard, names: dict[str, str]) -> dict[str, Any] | None:
    """Where an idle vehicle is asked to wait (rebalancing), with navigation; None: stay."""
    loc = b.plan.standby_location if b.plan is not None else None
    if loc is None:
        return None
    name = loc.name or names.get(loc.stop_id or "") or f"{loc.lat:.5f}, {loc.lon:.5f}"
    return {
        "name": name,
        "stop_id": loc.stop_id,
        "lat": loc.lat,
        "lon": loc.lon,
        "navigation": navigation(loc.lat, loc.lon, name),
    }
