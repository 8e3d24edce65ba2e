"""The dispatcher's functional core: events in, events out, time passed in.

``DispatchCore`` owns the fleet state and the batching policy. The shell (live
service or simulator) feeds it decoded events with ``handle``, asks it for a
``prepare``-d batch when ``due``, solves the problem wherever it likes (a process
pool, or inline), and hands the plan back to ``complete``. Nothing here awaits,
reads a clock or touches Kafka or PostgreSQL.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from dispatcher.batching import BatchPolicy
from dispatcher.clock import to_datetime, to_timestamp
from dispatcher.geo import LatLon, TravelModel
from dispatcher.planning import BatchJob, PlanningConfig, build_problem, mandatory_missing
from dispatcher.state import FleetState, Ride, RideStatus, VehicleState, VehicleStop
from schemas.dispatch import (
    DriverPlanV1,
    PlannedStop,
    RejectionReason,
    RideOfferedV1,
    RideRejectedV1,
    StopAction,
)
from schemas.envelope import Event, Place
from schemas.passenger import RideCancelledV1, RideRequestedV1, TimeType
from schemas.vehicle import (
    ArrivedAtStopV1,
    NoShowV1,
    PassengerAlightedV1,
    PassengerBoardedV1,
    PositionUpdatedV1,
    ShiftEndedV1,
    ShiftStartedV1,
)
from solvers.model import Plan, SolveStats

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Area:
    """A service area as a bounding box (WGS84)."""

    lat_min: float
    lat_max: float
    lon_min: float
    lon_max: float

    def contains(self, p: LatLon) -> bool:
        return self.lat_min <= p.lat <= self.lat_max and self.lon_min <= p.lon <= self.lon_max


@dataclass(frozen=True, slots=True)
class CoreConfig:
    """Everything the core needs to decide; built by the shell from ``Settings``."""

    planning: PlanningConfig = field(default_factory=PlanningConfig)
    batch_window_s: float = 2.0
    batch_max_size: int = 50
    areas: dict[str, Area] = field(default_factory=dict)  # empty: any zone, anywhere
    max_prebook_s: int = 7 * 24 * 3600
    past_tolerance_s: int = 300
    forget_after_s: int = 6 * 3600
    source: str = "dispatcher"


@dataclass(slots=True)
class Handled:
    """What handling one input event produced; ``dead_letter`` is a reason to reject it."""

    outputs: list[Event] = field(default_factory=list)
    dead_letter: str | None = None


def _place(p: LatLon, stop_id: str | None = None) -> Place:
    return Place(lat=p.lat, lon=p.lon, stop_id=stop_id)


class DispatchCore:
    """Fleet state + batching + turning plans into promises and driver plans."""

    def __init__(
        self, config: CoreConfig, travel: TravelModel, state: FleetState | None = None
    ) -> None:
        self.config = config
        self.travel = travel
        self.state = state or FleetState()
        self.batch = BatchPolicy(config.batch_window_s, config.batch_max_size)
        for ride in sorted(self.state.rides.values(), key=lambda r: r.received_at):
            if ride.status is RideStatus.PENDING:
                self.batch.offer(ride.request_id, ride.received_at)

    # -- input -------------------------------------------------------------------------

    def handle(self, event: Event, now: float) -> Handled:
        """Apply one decoded input event."""
        match event:
            case RideRequestedV1():
                return self._requested(event, now)
            case RideCancelledV1():
                return self._cancelled(event, now)
            case ShiftStartedV1():
                return self._shift_started(event, now)
        vehicle_id = getattr(event, "vehicle_id", None)
        vehicle = self.state.vehicles.get(vehicle_id) if vehicle_id else None
        if vehicle is None:
            return Handled(dead_letter=f"unknown vehicle {vehicle_id!r}")
        match event:
            case ShiftEndedV1():
                return self._shift_ended(vehicle, now)
            case PositionUpdatedV1():
                vehicle.position = LatLon(event.position.lat, event.position.lon)
                vehicle.position_at = now
                self.state.touch_vehicle(vehicle)
                return Handled()
            case ArrivedAtStopV1():
                return self._arrived(vehicle, event, now)
            case PassengerBoardedV1() | PassengerAlightedV1() | NoShowV1():
                return self._at_stop(vehicle, event, now)
        return Handled(dead_letter=f"the dispatcher does not handle {type(event).__name__}")

    def _reject(
        self, ride: Ride, reason: RejectionReason, message: str, now: float
    ) -> RideRejectedV1:
        ride.status = RideStatus.REJECTED
        ride.outcome_reason = reason.value
        self.state.touch_ride(ride)
        return RideRejectedV1(
            occurred_at=to_datetime(now),
            source=self.config.source,
            request_id=ride.request_id,
            zone=ride.zone,
            reason=reason,
            message=message,
        )

    def _requested(self, e: RideRequestedV1, now: float) -> Handled:
        known = self.state.rides.get(e.request_id)
        if known is not None:
            if known.event_id == str(e.event_id):
                return Handled()  # a redelivery of what we already have
            return Handled(dead_letter=f"request id {e.request_id!r} is already in use")
        pc = self.config.planning
        origin = LatLon(e.origin.lat, e.origin.lon)
        destination = LatLon(e.destination.lat, e.destination.lon)
        direct_s, _ = self.travel.leg(origin, destination)
        max_ride = round(pc.ride_alpha * direct_s + pc.ride_beta_s)
        ride = Ride(
            request_id=e.request_id,
            zone=e.zone,
            passenger_ref=e.passenger_ref,
            origin=origin,
            destination=destination,
            seats=e.seats,
            wheelchairs=e.wheelchairs,
            received_at=now,
            earliest_pickup=now,
            latest_pickup=now + pc.max_wait_s,
            latest_dropoff=None,
            direct_s=direct_s,
            max_ride_s=max_ride,
            origin_stop_id=e.origin.stop_id,
            destination_stop_id=e.destination.stop_id,
            event_id=str(e.event_id),
        )
        self.state.rides[ride.request_id] = ride
        problem = self._admission_problem(e, ride, now)
        if problem is not None:
            reason, message = problem
            return Handled([self._reject(ride, reason, message, now)])
        self.state.touch_ride(ride)
        self.batch.offer(ride.request_id, now)
        return Handled()

    def _admission_problem(
        self, e: RideRequestedV1, ride: Ride, now: float
    ) -> tuple[RejectionReason, str] | None:
        cfg, pc = self.config, self.config.planning
        if cfg.areas:
            area = cfg.areas.get(e.zone)
            if area is None:
                return RejectionReason.OUTSIDE_AREA, f"zone {e.zone!r} is not served"
            if not (area.contains(ride.origin) and area.contains(ride.destination)):
                return RejectionReason.OUTSIDE_AREA, "origin or destination outside the area"
        fleet = list(self.state.vehicles.values())
        if fleet and not any(v.seats >= e.seats and v.wheelchairs >= e.wheelchairs for v in fleet):
            return RejectionReason.CAPACITY, "no vehicle has that many seats/wheelchair places"
        if e.requested_time is not None:
            t = to_timestamp(e.requested_time)
            if t < now - cfg.past_tolerance_s:
                return RejectionReason.INVALID, "requested time is in the past"
            if t > now + cfg.max_prebook_s:
                return RejectionReason.INVALID, "requested time is too far ahead"
            if e.time_type is TimeType.DEPARTURE:
                ride.earliest_pickup = max(now, t)
                ride.latest_pickup = ride.earliest_pickup + pc.prebook_late_s
            else:
                ride.latest_dropoff = t
                service = pc.pickup_service_s + (pc.wheelchair_service_s if e.wheelchairs else 0)
                ride.latest_pickup = t - ride.direct_s - service
                ride.earliest_pickup = max(now, t - pc.arrival_early_s - ride.max_ride_s)
                if ride.latest_pickup < now:
                    return RejectionReason.NO_VEHICLE, "the arrival time cannot be reached"
        return None

    def _cancelled(self, e: RideCancelledV1, now: float) -> Handled:
        ride = self.state.rides.get(e.request_id)
        if ride is None:
            return Handled(dead_letter=f"cancellation of unknown request {e.request_id!r}")
        if ride.status.final:
            return Handled()
        if ride.status is RideStatus.ONBOARD:
            return Handled(dead_letter=f"request {e.request_id!r} is on board, too late to cancel")
        self.batch.withdraw(ride.request_id)
        ride.status = RideStatus.CANCELLED
        ride.outcome_reason = e.reason or "cancelled by passenger"
        self.state.touch_ride(ride)
        return Handled(self._drop_stops(ride, now))

    def _drop_stops(self, ride: Ride, now: float) -> list[Event]:
        vehicle = self.state.vehicles.get(ride.vehicle_id or "")
        if vehicle is None:
            return []
        changed = vehicle.remove_stop(ride.request_id, "pickup")
        changed = vehicle.remove_stop(ride.request_id, "dropoff") or changed
        return [self._new_plan_version(vehicle, now)] if changed else []

    def _shift_started(self, e: ShiftStartedV1, now: float) -> Handled:
        position = e.position or e.depot
        old = self.state.vehicles.get(e.vehicle_id)
        vehicle = VehicleState(
            vehicle_id=e.vehicle_id,
            zone=e.zone,
            seats=e.seats,
            wheelchairs=e.wheelchairs,
            depot=LatLon(e.depot.lat, e.depot.lon),
            shift_start=to_timestamp(e.shift_start),
            shift_end=to_timestamp(e.shift_end),
            position=LatLon(position.lat, position.lon),
            position_at=now,
        )
        if old is not None:  # a new shift keeps what the vehicle still has to do
            vehicle.stops, vehicle.onboard = old.stops, old.onboard
            vehicle.plan_version = old.plan_version
        self.state.vehicles[e.vehicle_id] = vehicle
        self.state.touch_vehicle(vehicle)
        return Handled()

    def _shift_ended(self, vehicle: VehicleState, now: float) -> Handled:
        vehicle.active = False
        self.state.touch_vehicle(vehicle)
        outputs: list[Event] = []
        moved = False
        for stop in list(vehicle.stops):
            ride = self.state.rides[stop.request_id]
            if ride.status is RideStatus.OFFERED:
                # Not yet boarded: re-plan on another vehicle in the next batch.
                vehicle.remove_stop(ride.request_id, "pickup")
                vehicle.remove_stop(ride.request_id, "dropoff")
                ride.status, ride.vehicle_id = RideStatus.PENDING, None
                self.state.touch_ride(ride)
                self.batch.offer(ride.request_id, now)
                moved = True
        if moved:
            outputs.append(self._new_plan_version(vehicle, now))
        return Handled(outputs)

    def _arrived(self, vehicle: VehicleState, e: ArrivedAtStopV1, now: float) -> Handled:
        vehicle.position = LatLon(e.position.lat, e.position.lon)
        vehicle.position_at = now
        ids = set(e.request_ids)
        for stop in vehicle.stops:
            if stop.request_id in ids:
                stop.arrived = True
        self.state.touch_vehicle(vehicle)
        return Handled()

    def _at_stop(
        self,
        vehicle: VehicleState,
        e: PassengerBoardedV1 | PassengerAlightedV1 | NoShowV1,
        now: float,
    ) -> Handled:
        ride = self.state.rides.get(e.request_id)
        if ride is None or ride.vehicle_id != vehicle.vehicle_id:
            return Handled(
                dead_letter=f"request {e.request_id!r} is not planned on {vehicle.vehicle_id!r}"
            )
        expected = RideStatus.ONBOARD if isinstance(e, PassengerAlightedV1) else RideStatus.OFFERED
        if ride.status is not expected:
            if ride.status.final or (
                ride.status is RideStatus.ONBOARD and isinstance(e, PassengerBoardedV1)
            ):
                return Handled()  # already done: a repeated report
            return Handled(dead_letter=f"request {e.request_id!r} is {ride.status.value}")
        if isinstance(e, PassengerBoardedV1):
            ride.status, ride.picked_up_at = RideStatus.ONBOARD, now
            vehicle.remove_stop(ride.request_id, "pickup")
            for other_id in vehicle.onboard:
                other = self.state.rides.get(other_id)
                if other is not None:
                    other.shared = ride.shared = True
                    self.state.touch_ride(other)
            vehicle.onboard.append(ride.request_id)
        elif isinstance(e, PassengerAlightedV1):
            ride.status, ride.dropped_at = RideStatus.COMPLETED, now
            vehicle.remove_stop(ride.request_id, "dropoff")
            vehicle.onboard.remove(ride.request_id)
        else:
            ride.status, ride.outcome_reason = RideStatus.NO_SHOW, "no-show"
            ride.dropped_at = now
            vehicle.remove_stop(ride.request_id, "pickup")
            vehicle.remove_stop(ride.request_id, "dropoff")
        self.state.touch_ride(ride)
        return Handled([self._new_plan_version(vehicle, now)])

    # -- batches -------------------------------------------------------------------------

    def due(self, now: float) -> bool:
        return self.batch.due(now)

    def next_due_at(self) -> float | None:
        return self.batch.next_due_at()

    def prepare(self, now: float) -> BatchJob | None:
        """Take the due batch and build its routing problem (None if nothing is due)."""
        if not self.batch.due(now):
            return None
        ids = self.batch.take()
        return build_problem(self.state, ids, now, self.travel, self.config.planning)

    def complete(self, job: BatchJob, plan: Plan, now: float) -> list[Event]:
        """Turn a plan into promises, rejections and driver plans; update the state."""
        missing = mandatory_missing(job, plan)
        if missing:
            log.warning("plan breaks promises for %s; keeping the committed routes", missing)
            plan = Plan(routes=(), unassigned=(), stats=SolveStats("keep", 0, 0.0, fallback=True))
        outputs: list[Event] = []
        new = set(job.new_ids)
        offered: dict[str, Ride] = {}
        replanned: list[VehicleState] = []
        for route in plan.routes:
            vehicle = self.state.vehicles[route.vehicle_id]
            stops: list[VehicleStop] = []
            lock = job.locked.get(route.vehicle_id)
            if lock is not None:
                stops.append(lock)
            for s in route.stops:
                current = self.state.rides.get(s.request_id)
                if current is None or current.status.final:
                    continue  # cancelled or finished while the solver ran
                if s.kind.value == "pickup" and current.status is RideStatus.ONBOARD:
                    continue
                eta = job.epoch + s.service_start
                stops.append(VehicleStop(s.request_id, s.kind.value, job.points[s.location], eta))
                ride = self.state.rides[s.request_id]
                if s.kind.value == "pickup":
                    ride.pickup_eta = eta
                else:
                    ride.dropoff_eta = eta
                if s.request_id in new:
                    offered[s.request_id] = ride
                self.state.touch_ride(ride)
            changed = tuple(s.ref for s in stops) != vehicle.stop_refs()
            vehicle.stops = stops
            self.state.touch_vehicle(vehicle)
            for ride_id in {s.request_id for s in route.stops} & new:
                self.state.rides[ride_id].vehicle_id = vehicle.vehicle_id
            if changed:
                replanned.append(vehicle)
        for ride_id in job.new_ids:
            pending = self.state.rides.get(ride_id)
            if pending is None or pending.status is not RideStatus.PENDING:
                continue  # cancelled while the solver ran
            if ride_id in offered:
                outputs.append(self._offer(pending, now))
            else:
                outputs.append(
                    self._reject(
                        pending,
                        RejectionReason.NO_VEHICLE,
                        "no vehicle can serve this ride within the time window",
                        now,
                    )
                )
        # Driver plans last: they carry the pickup windows just promised.
        outputs.extend(self._new_plan_version(v, now) for v in replanned)
        self.state.forget_final(now - self.config.forget_after_s)
        return outputs

    def _offer(self, ride: Ride, now: float) -> RideOfferedV1:
        pc = self.config.planning
        assert ride.pickup_eta is not None and ride.dropoff_eta is not None
        assert ride.vehicle_id is not None
        start = max(ride.earliest_pickup, ride.pickup_eta - pc.promise_before_s)
        end = max(start + pc.promise_window_s, ride.pickup_eta)
        service = pc.pickup_service_s + (pc.wheelchair_service_s if ride.wheelchairs else 0)
        latest = ride.latest_dropoff or end + service + ride.max_ride_s
        ride.status = RideStatus.OFFERED
        ride.promised_pickup = (start, end)
        ride.promised_dropoff = max(latest, ride.dropoff_eta)
        ride.offered_at = now
        self.state.touch_ride(ride)
        return RideOfferedV1(
            occurred_at=to_datetime(now),
            source=self.config.source,
            request_id=ride.request_id,
            zone=ride.zone,
            vehicle_id=ride.vehicle_id,
            pickup=_place(ride.origin, ride.origin_stop_id),
            dropoff=_place(ride.destination, ride.destination_stop_id),
            pickup_window_start=to_datetime(start),
            pickup_window_end=to_datetime(end),
            pickup_eta=to_datetime(ride.pickup_eta),
            dropoff_eta=to_datetime(ride.dropoff_eta),
            latest_dropoff=to_datetime(ride.promised_dropoff),
        )

    def _new_plan_version(self, vehicle: VehicleState, now: float) -> DriverPlanV1:
        vehicle.plan_version += 1
        self.state.touch_vehicle(vehicle)
        return self.driver_plan(vehicle, now)

    def driver_plan(self, vehicle: VehicleState, now: float) -> DriverPlanV1:
        """The vehicle's current plan as the event its tablet reads."""
        stops = []
        for s in vehicle.stops:
            ride = self.state.rides.get(s.request_id)
            window: tuple[datetime | None, datetime | None] = (None, None)
            if s.kind == "pickup" and ride is not None and ride.promised_pickup is not None:
                window = (
                    to_datetime(ride.promised_pickup[0]),
                    to_datetime(ride.promised_pickup[1]),
                )
            stop_id = None
            if ride is not None:
                stop_id = ride.origin_stop_id if s.kind == "pickup" else ride.destination_stop_id
            stops.append(
                PlannedStop(
                    action=StopAction(s.kind),
                    request_id=s.request_id,
                    location=_place(s.location, stop_id),
                    eta=to_datetime(s.eta),
                    window_start=window[0],
                    window_end=window[1],
                    seats=ride.seats if ride else 0,
                    wheelchairs=ride.wheelchairs if ride else 0,
                )
            )
        return DriverPlanV1(
            occurred_at=to_datetime(now),
            source=self.config.source,
            vehicle_id=vehicle.vehicle_id,
            zone=vehicle.zone,
            plan_version=max(1, vehicle.plan_version),
            stops=stops,
        )
