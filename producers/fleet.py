"""Simulated vehicles: drive driver plans and report what happens, as vehicle events.

Pure: time is passed in. ``advance(until)`` returns every event up to ``until`` in
time order; ``on_plan(plan, now)`` hands a vehicle its newest :class:`DriverPlanV1`
(older versions are ignored). A vehicle

* starts its shift at ``shift_start`` at the depot (``ShiftStartedV1``);
* drives straight toward its next stop, at the speed the travel model implies for
  that leg, reporting ``PositionUpdatedV1`` every ``position_every_s`` while moving;
* on arrival reports ``ArrivedAtStopV1`` for every consecutive planned stop there;
* drops off at once (``PassengerAlightedV1``); for a pickup it waits until the
  passenger is there (the promised window start, else the planned ETA) and, with
  ``board_at_eta``, until the planned ETA (leaving early would stretch the ride
  times of those already on board beyond the plan), then
  ``PassengerBoardedV1``, or ``NoShowV1`` after waiting ``no_show_wait_s`` if the
  passenger does not come (probability ``no_show_prob``, drawn per request from the seed);
* dwells the service time after each boarding or alighting;
* with nothing to do, drives to the plan's standby point if it has one (when it can
  still be back at the depot by the shift end) and waits there, else where it is;
  drives back to the depot in time for the shift end and reports ``ShiftEndedV1``.

It records tracks and driven segments (with the passengers on board) for KPIs.
"""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypedDict

from dispatcher.clock import to_datetime, to_timestamp
from dispatcher.geo import LatLon, TravelModel, interpolate
from schemas.dispatch import DriverPlanV1, PlannedStop, RideOfferedV1, StopAction
from schemas.envelope import Event, Place
from schemas.vehicle import (
    ArrivedAtStopV1,
    NoShowV1,
    PassengerAlightedV1,
    PassengerBoardedV1,
    PositionUpdatedV1,
    ShiftEndedV1,
    ShiftStartedV1,
)

SOURCE = "sim:fleet"
TimedEvent = tuple[float, Event]


@dataclass(frozen=True, slots=True)
class VehicleConfig:
    """One vehicle's shift and capacity."""

    vehicle_id: str
    depot: LatLon
    shift_start: float
    shift_end: float
    seats: int = 6
    wheelchairs: int = 1
    zone: str = "rendsburg"
    #: the break must start inside this window and lasts ``break_s`` (none if None)
    break_window: tuple[float, float] | None = None
    break_s: int = 0


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch driven by one vehicle, with the riders on board (request ids)."""

    vehicle_id: str
    t0: float
    t1: float
    a: LatLon
    b: LatLon
    metres: float
    onboard: tuple[str, ...]
    persons: int


class _Common(TypedDict):
    occurred_at: datetime
    source: str
    vehicle_id: str
    zone: str


@dataclass(slots=True)
class _Leg:
    a: LatLon
    b: LatLon
    t0: float
    t1: float
    metres: float


@dataclass(slots=True)
class _Vehicle:
    cfg: VehicleConfig
    pos: LatLon
    wake_at: float
    started: bool = False
    ended: bool = False
    plan_version: int = 0
    stops: list[PlannedStop] = field(default_factory=list)
    done: set[tuple[str, str]] = field(default_factory=set)
    onboard: dict[str, int] = field(default_factory=dict)
    leg: _Leg | None = None
    next_pos_at: float = 0.0
    arrived_at: float = 0.0
    announced: set[tuple[str, str]] = field(default_factory=set)
    dwell_until: float | None = None
    track: list[tuple[float, LatLon]] = field(default_factory=list)
    max_persons: int = 0
    break_plan: tuple[float, float, LatLon] | None = None
    break_done: bool = False
    breaks: list[tuple[float, float]] = field(default_factory=list)
    standby: LatLon | None = None  # where to wait without stops (the plan's standby)
    set_off_at: float | None = None  # stay until then before driving to the first stop


def _key(p: LatLon | Place) -> tuple[float, float]:
    return (round(p.lat, 6), round(p.lon, 6))


def _ll(p: Place) -> LatLon:
    return LatLon(p.lat, p.lon)


def seeded_uniform(key: str) -> float:
    """A draw in [0, 1) fixed by ``key`` (e.g. seed and request id): the same for the
    same key, whatever else was drawn before."""
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class FleetSimulator:
    """Vehicles that follow driver plans; see the module docstring."""

    def __init__(
        self,
        vehicles: list[VehicleConfig],
        travel: TravelModel,
        seed: int = 0,
        *,
        no_show_prob: float = 0.0,
        no_show_wait_s: float = 300.0,
        position_every_s: float = 30.0,
        pickup_service_s: float = 60.0,
        dropoff_service_s: float = 30.0,
        wheelchair_service_s: float = 180.0,
        depot_margin_s: float = 60.0,
        board_at_eta: bool = True,
    ) -> None:
        self.travel = travel
        self.seed = seed
        self.no_show_prob = no_show_prob
        self.no_show_wait_s = no_show_wait_s
        self.position_every_s = position_every_s
        self.pickup_service_s = pickup_service_s
        self.dropoff_service_s = dropoff_service_s
        self.wheelchair_service_s = wheelchair_service_s
        self.depot_margin_s = depot_margin_s
        self.board_at_eta = board_at_eta
        self.vehicles = {
            c.vehicle_id: _Vehicle(cfg=c, pos=c.depot, wake_at=c.shift_start) for c in vehicles
        }
        self.segments: list[Segment] = []
        self.ready_at: dict[str, float] = {}  # passenger at the stop from (promised start)
        self.ready_until: dict[str, float] = {}  # promised window end
        self.no_shows: set[str] = set()
        self.now = min((c.shift_start for c in vehicles), default=0.0)

    # -- inputs ---------------------------------------------------------------------------

    def on_offer(self, offer: RideOfferedV1) -> None:
        """The passenger learns the promised window and comes to the stop at its start."""
        self.ready_at[offer.request_id] = to_timestamp(offer.pickup_window_start)
        self.ready_until[offer.request_id] = to_timestamp(offer.pickup_window_end)

    def on_plan(self, plan: DriverPlanV1, now: float) -> None:
        """Take a vehicle's new plan (ignored unless its version is newer)."""
        v = self.vehicles.get(plan.vehicle_id)
        if v is None or v.ended or plan.plan_version <= v.plan_version:
            return
        v.plan_version = plan.plan_version
        v.stops = [s for s in plan.stops if (s.request_id, s.action.value) not in v.done]
        v.standby = _ll(plan.standby_location) if plan.standby_location and not v.stops else None
        v.set_off_at = to_timestamp(plan.set_off_at) if plan.set_off_at is not None else None
        if not v.break_done:
            v.break_plan = None
            if plan.break_start is not None and plan.break_end is not None:
                where = plan.break_location or Place(lat=v.cfg.depot.lat, lon=v.cfg.depot.lon)
                v.break_plan = (
                    to_timestamp(plan.break_start),
                    to_timestamp(plan.break_end),
                    _ll(where),
                )
        target = v.stops[0].location if v.stops else v.standby
        if v.leg is not None and (target is None or _key(target) != _key(v.leg.b)):
            self._stop_leg(v, now)  # divert from where it is now
        if v.started and v.leg is None:
            v.wake_at = now  # re-decide at once: maybe leave, maybe stop waiting

    # -- time -----------------------------------------------------------------------------

    def next_event_at(self) -> float | None:
        """When the next vehicle has something to do (None: all shifts are over)."""
        times = [v.wake_at for v in self.vehicles.values() if not v.ended]
        return min(times) if times else None

    @property
    def finished(self) -> bool:
        return all(v.ended for v in self.vehicles.values())

    def advance(self, until: float) -> list[TimedEvent]:
        """Run every vehicle up to ``until``; the events in time order."""
        out: list[TimedEvent] = []
        heap = [(v.wake_at, vid) for vid, v in self.vehicles.items() if not v.ended]
        heapq.heapify(heap)
        while heap:
            t, vid = heapq.heappop(heap)
            v = self.vehicles[vid]
            if v.ended or t != v.wake_at:
                continue
            if t > until:
                break
            self.now = max(self.now, t)
            self._run(v, t, out)
            if not v.ended:
                if v.wake_at < t:
                    raise AssertionError(f"vehicle {vid} woke in the past")
                heapq.heappush(heap, (v.wake_at, vid))
        self.now = max(self.now, until)
        out.sort(key=lambda te: te[0])
        return out

    # -- one vehicle ----------------------------------------------------------------------

    def _emit(self, out: list[TimedEvent], t: float, event: Event) -> None:
        out.append((t, event))

    def _common(self, v: _Vehicle, t: float) -> _Common:
        return {
            "occurred_at": to_datetime(t),
            "source": SOURCE,
            "vehicle_id": v.cfg.vehicle_id,
            "zone": v.cfg.zone,
        }

    def _persons(self, v: _Vehicle) -> int:
        return sum(v.onboard.values())

    def _stop_leg(self, v: _Vehicle, t: float) -> None:
        leg = v.leg
        assert leg is not None
        t = min(max(t, leg.t0), leg.t1)
        frac = 1.0 if leg.t1 <= leg.t0 else (t - leg.t0) / (leg.t1 - leg.t0)
        here = interpolate(leg.a, leg.b, frac)
        self._record(v, leg.t0, t, leg.a, here, leg.metres * frac)
        v.pos, v.leg = here, None
        v.track.append((t, here))
        v.announced.clear()

    def _record(self, v: _Vehicle, t0: float, t1: float, a: LatLon, b: LatLon, m: float) -> None:
        if m <= 0 and t1 <= t0:
            return
        self.segments.append(
            Segment(v.cfg.vehicle_id, t0, t1, a, b, m, tuple(v.onboard), self._persons(v))
        )

    def _start_leg(self, v: _Vehicle, t: float, target: LatLon) -> None:
        seconds, metres = self.travel.leg(v.pos, target)
        v.leg = _Leg(v.pos, target, t, t + max(1, seconds), float(metres))
        v.next_pos_at = t + self.position_every_s
        v.announced.clear()

    def _leg_wake(self, v: _Vehicle) -> float:
        assert v.leg is not None
        return min(v.leg.t1, v.next_pos_at)

    def _no_show(self, request_id: str) -> bool:
        return seeded_uniform(f"{self.seed}:{request_id}") < self.no_show_prob

    def _service(self, stop: PlannedStop) -> float:
        base = self.pickup_service_s if stop.action is StopAction.PICKUP else self.dropoff_service_s
        return base + (self.wheelchair_service_s if stop.wheelchairs else 0.0)

    def _run(self, v: _Vehicle, t: float, out: list[TimedEvent]) -> None:
        c = v.cfg
        if not v.started:
            v.started = True
            v.arrived_at = t
            v.track.append((t, v.pos))
            self._emit(
                out,
                t,
                ShiftStartedV1(
                    **self._common(v, t),
                    seats=c.seats,
                    wheelchairs=c.wheelchairs,
                    depot=Place(lat=c.depot.lat, lon=c.depot.lon),
                    position=Place(lat=v.pos.lat, lon=v.pos.lon),
                    shift_start=to_datetime(c.shift_start),
                    shift_end=to_datetime(c.shift_end),
                    break_window_start=to_datetime(c.break_window[0]) if c.break_window else None,
                    break_window_end=to_datetime(c.break_window[1]) if c.break_window else None,
                    break_duration_s=c.break_s if c.break_window else 0,
                ),
            )
        if v.leg is not None:
            leg = v.leg
            if t < leg.t1:
                if t >= v.next_pos_at:
                    frac = (t - leg.t0) / (leg.t1 - leg.t0)
                    here = interpolate(leg.a, leg.b, frac)
                    v.track.append((t, here))
                    self._emit(
                        out,
                        t,
                        PositionUpdatedV1(
                            **self._common(v, t),
                            position=Place(lat=here.lat, lon=here.lon),
                            speed_kmh=min(250.0, leg.metres / (leg.t1 - leg.t0) * 3.6),
                        ),
                    )
                    v.next_pos_at = t + self.position_every_s
                v.wake_at = min(leg.t1, v.next_pos_at)
                return
            self._record(v, leg.t0, leg.t1, leg.a, leg.b, leg.metres)
            v.pos, v.leg, v.arrived_at = leg.b, None, t
            v.track.append((t, v.pos))
        self._at_rest(v, t, out)

    def _at_rest(self, v: _Vehicle, t: float, out: list[TimedEvent]) -> None:
        c = v.cfg
        while True:
            if v.dwell_until is not None and t < v.dwell_until:
                v.wake_at = v.dwell_until
                return
            v.dwell_until = None
            if self._take_break(v, t):
                return
            if not v.stops:
                if v.standby is not None and _key(v.pos) != _key(v.standby):
                    go_s, _ = self.travel.leg(v.pos, v.standby)
                    from_s, _ = self.travel.leg(v.standby, c.depot)
                    if t + go_s + from_s + self.depot_margin_s < c.shift_end:
                        self._start_leg(v, t, v.standby)
                        v.wake_at = self._leg_wake(v)
                        return
                back_s, _ = self.travel.leg(v.pos, c.depot)
                if _key(v.pos) == _key(c.depot):
                    if t >= c.shift_end:
                        v.ended = True
                        ended = ShiftEndedV1(**self._common(v, t), reason="end of shift")
                        self._emit(out, t, ended)
                        return
                    v.wake_at = c.shift_end
                    return
                leave_at = c.shift_end - back_s - self.depot_margin_s
                if t >= leave_at:
                    self._start_leg(v, t, c.depot)
                    v.wake_at = self._leg_wake(v)
                    return
                v.wake_at = leave_at
                return
            stop = v.stops[0]
            if _key(stop.location) != _key(v.pos):
                if v.set_off_at is not None and t < v.set_off_at and not v.onboard:
                    v.wake_at = v.set_off_at  # the plan says: wait here until then
                    return
                self._start_leg(v, t, _ll(stop.location))
                v.wake_at = self._leg_wake(v)
                return
            if stop_ref(stop) not in v.announced:
                here = _leading_at(v.stops, _key(v.pos))
                v.announced.update(stop_ref(s) for s in here)
                self._emit(
                    out,
                    t,
                    ArrivedAtStopV1(
                        **self._common(v, t),
                        position=Place(lat=v.pos.lat, lon=v.pos.lon, stop_id=stop.location.stop_id),
                        request_ids=[s.request_id for s in here][:50],
                    ),
                )
            rid = stop.request_id
            if stop.action is StopAction.DROPOFF:
                self._finish(v, stop)
                if rid not in v.onboard:
                    continue  # nobody to drop off (a no-show the plan still holds)
                del v.onboard[rid]
                self._emit(out, t, PassengerAlightedV1(**self._common(v, t), request_id=rid))
                v.dwell_until = t + self._service(stop)
                continue
            ready = max(v.arrived_at, self.ready_at.get(rid, _window_start(stop)))
            if self.board_at_eta:  # keep to the timetable, but never past the promise
                eta = to_timestamp(stop.eta)
                until = self.ready_until.get(rid)
                if until is None and stop.window_end is not None:
                    until = to_timestamp(stop.window_end)
                ready = max(ready, eta if until is None else min(eta, until))
            if self._no_show(rid):
                give_up = ready + self.no_show_wait_s
                if stop.latest_departure is not None:  # keep the others' promises
                    give_up = max(ready, min(give_up, to_timestamp(stop.latest_departure)))
                if t < give_up:
                    v.wake_at = give_up
                    return
                self._finish(v, stop)
                self.no_shows.add(rid)
                self._emit(out, t, NoShowV1(**self._common(v, t), request_id=rid))
                continue
            if t < ready:
                v.wake_at = ready
                return
            self._finish(v, stop)
            v.onboard[rid] = stop.seats + stop.wheelchairs
            v.max_persons = max(v.max_persons, self._persons(v))
            self._emit(out, t, PassengerBoardedV1(**self._common(v, t), request_id=rid))
            v.dwell_until = t + self._service(stop)

    def _take_break(self, v: _Vehicle, t: float) -> bool:
        """Drive to the planned break and hold it, when it comes before the next stop."""
        if v.break_plan is None or v.break_done or v.onboard:
            return False
        if not v.stops and v.standby is not None:
            return False  # waits at the standby point: the dispatcher calls it back in time
        b0, b1, where = v.break_plan
        if v.stops and to_timestamp(v.stops[0].eta) < b1 - 1:
            return False  # the break comes later
        if _key(v.pos) != _key(where):
            self._start_leg(v, t, where)
            v.wake_at = self._leg_wake(v)
            return True
        if t < b1:
            v.wake_at = b1
            return True
        v.break_done = True
        v.breaks.append((max(b0, v.arrived_at), t))
        return False

    def breaks(self) -> dict[str, list[tuple[float, float]]]:
        """Breaks each vehicle held (from arrival or the planned start, to the end)."""
        return {vid: list(v.breaks) for vid, v in self.vehicles.items()}

    def _finish(self, v: _Vehicle, stop: PlannedStop) -> None:
        v.done.add(stop_ref(stop))
        v.stops.pop(0)

    # -- records --------------------------------------------------------------------------

    def tracks(self) -> dict[str, list[tuple[float, LatLon]]]:
        """Each vehicle's positions over time (shift start, position reports, arrivals)."""
        return {vid: list(v.track) for vid, v in self.vehicles.items()}

    def max_persons(self) -> dict[str, int]:
        """The most persons each vehicle ever had on board."""
        return {vid: v.max_persons for vid, v in self.vehicles.items()}


def stop_ref(s: PlannedStop) -> tuple[str, str]:
    return (s.request_id, s.action.value)


def _leading_at(stops: list[PlannedStop], key: tuple[float, float]) -> list[PlannedStop]:
    here = []
    for s in stops:
        if _key(s.location) != key:
            break
        here.append(s)
    return here


def _window_start(stop: PlannedStop) -> float:
    if stop.window_start is not None:
        return to_timestamp(stop.window_start)
    return to_timestamp(stop.eta)
