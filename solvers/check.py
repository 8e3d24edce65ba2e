"""An independent plan checker: every rule of the model, recomputed from scratch.

:func:`check_plan` shares no code with the solvers (it imports only the model),
so a bug in the scheduler or a solver's reading of its own model shows up here
rather than in front of a passenger. It returns human-readable violations; an
empty list means the plan is feasible for the problem.
"""

from __future__ import annotations

from solvers.model import Plan, Problem, Request, Route, StopKind, Vehicle


def check_plan(problem: Problem, plan: Plan) -> list[str]:
    """Every way ``plan`` breaks the rules of ``problem``; ``[]`` when it is feasible.

    Checked: known vehicles and requests, one route per vehicle; each request
    served at most once and with both stops on one vehicle (pickup first),
    mandatory requests (``penalty=None``) served, passengers on board dropped by
    their vehicle; allowed vehicles; stop locations; seat and wheelchair
    capacity; time windows; ride times; travel times against the matrix (no
    arrival earlier than the departure before it plus the travel time, no
    service before arrival); departure = service start + service; route
    distance; start not before the vehicle is free; end depot by the shift end;
    route duration.
    """
    out: list[str] = []
    requests = {r.id: r for r in problem.requests}
    vehicles = {v.id: v for v in problem.vehicles}
    seen_vehicles: set[str] = set()
    served_on: dict[str, str] = {}
    for route in plan.routes:
        v = vehicles.get(route.vehicle_id)
        if v is None:
            out.append(f"route for unknown vehicle {route.vehicle_id}")
            continue
        if route.vehicle_id in seen_vehicles:
            out.append(f"vehicle {v.id} has more than one route")
        seen_vehicles.add(route.vehicle_id)
        for s in route.stops:
            if s.request_id in requests:
                prev = served_on.get(s.request_id)
                if prev is not None and prev != v.id:
                    out.append(f"request {s.request_id} split over {prev} and {v.id}")
                served_on[s.request_id] = v.id
        out.extend(_check_route(problem, v, route, requests))
    unassigned = {u.request_id for u in plan.unassigned}
    for u in plan.unassigned:
        if u.request_id not in requests:
            out.append(f"unassigned unknown request {u.request_id}")
        if u.request_id in served_on:
            out.append(f"request {u.request_id} both served and unassigned")
    for r in problem.requests:
        if r.id in served_on:
            continue
        if r.penalty is None:
            out.append(f"mandatory request {r.id} not served")
        elif r.id not in unassigned:
            out.append(f"request {r.id} neither served nor unassigned")
    for v in problem.vehicles:
        onboard = [r.id for r in problem.requests if r.onboard_vehicle == v.id]
        if onboard and v.id not in seen_vehicles:
            out.append(f"vehicle {v.id} has passengers on board but no route")
    return out


def _check_route(
    problem: Problem, v: Vehicle, route: Route, requests: dict[str, Request]
) -> list[str]:
    out: list[str] = []
    where = f"vehicle {v.id}"
    dur, dist = problem.duration, problem.distance
    if route.start_time < v.start_time:
        out.append(f"{where}: leaves at {route.start_time} before it is free at {v.start_time}")
    seats = sum(r.seats for r in requests.values() if r.onboard_vehicle == v.id)
    chairs = sum(r.wheelchairs for r in requests.values() if r.onboard_vehicle == v.id)
    if seats > v.seats or chairs > v.wheelchairs:
        out.append(f"{where}: over capacity at the start ({seats} seats, {chairs} wheelchairs)")
    picked: dict[str, int] = {}  # request id -> departure from its pickup
    dropped: set[str] = set()
    here, free_at = v.start, route.start_time
    distance = 0
    for s in route.stops:
        r = requests.get(s.request_id)
        at = f"{where}: {s.request_id} {s.kind.value}"
        if r is None:
            out.append(f"{at}: unknown request")
            continue
        if r.allowed_vehicles is not None and v.id not in r.allowed_vehicles:
            out.append(f"{at}: vehicle not allowed")
        pickup = s.kind is StopKind.PICKUP
        loc = r.pickup if pickup else r.dropoff
        if s.location != loc:
            out.append(f"{at}: location {s.location}, request says {loc}")
        window = r.pickup_window if pickup else r.dropoff_window
        service = r.pickup_service if pickup else r.dropoff_service
        earliest_arrival = free_at + dur[here][loc]
        if s.arrival < earliest_arrival:
            out.append(f"{at}: arrives {s.arrival}, cannot before {earliest_arrival}")
        if s.service_start < s.arrival:
            out.append(f"{at}: service at {s.service_start} before arrival {s.arrival}")
        if not window.earliest <= s.service_start <= window.latest:
            out.append(
                f"{at}: service at {s.service_start} outside [{window.earliest}, {window.latest}]"
            )
        if s.departure != s.service_start + service:
            out.append(f"{at}: departs {s.departure}, service ends {s.service_start + service}")
        distance += dist[here][loc]
        here, free_at = loc, max(s.departure, s.service_start + service)
        if pickup:
            if r.onboard_vehicle is not None:
                out.append(f"{at}: picked up although already on board")
            if s.request_id in picked:
                out.append(f"{at}: picked up twice")
            picked[s.request_id] = s.departure
            seats += r.seats
            chairs += r.wheelchairs
            if seats > v.seats:
                out.append(f"{at}: {seats} seats > {v.seats}")
            if chairs > v.wheelchairs:
                out.append(f"{at}: {chairs} wheelchairs > {v.wheelchairs}")
        else:
            if s.request_id in dropped:
                out.append(f"{at}: dropped off twice")
            dropped.add(s.request_id)
            if r.onboard_vehicle is not None:
                if r.onboard_vehicle != v.id:
                    out.append(f"{at}: passenger is on board {r.onboard_vehicle}")
                start = r.picked_up_at
            else:
                start = picked.get(s.request_id)
                if start is None:
                    out.append(f"{at}: drop-off before pickup")
            if start is not None and r.max_ride_time is not None:
                ride = s.service_start - start
                if ride > r.max_ride_time:
                    out.append(f"{at}: ride time {ride} > {r.max_ride_time}")
            seats -= r.seats
            chairs -= r.wheelchairs
    out.extend(
        f"{where}: {rid} picked up but never dropped off" for rid in picked if rid not in dropped
    )
    out.extend(
        f"{where}: on-board passenger {r.id} never dropped off"
        for r in requests.values()
        if r.onboard_vehicle == v.id and r.id not in dropped
    )
    back = free_at + dur[here][v.end]
    distance += dist[here][v.end]
    if route.end_time < back:
        out.append(f"{where}: back at {route.end_time}, cannot before {back}")
    if route.end_time > v.end_time:
        out.append(f"{where}: back at {route.end_time} after shift end {v.end_time}")
    if v.max_duration is not None and route.end_time - route.start_time > v.max_duration:
        out.append(f"{where}: duration {route.end_time - route.start_time} > {v.max_duration}")
    if route.distance != distance:
        out.append(f"{where}: distance {route.distance}, stops give {distance}")
    return out


def plan_cost(problem: Problem, plan: Plan) -> int:
    """The model's objective for ``plan``: distance + fixed costs + penalties.

    An unserved mandatory request counts nothing here; :func:`check_plan` reports it.
    """
    vehicles = {v.id: v for v in problem.vehicles}
    cost = 0
    for route in plan.routes:
        if route.stops:
            cost += route.distance + vehicles[route.vehicle_id].fixed_cost
        else:
            cost += route.distance
    requests = {r.id: r for r in problem.requests}
    for u in plan.unassigned:
        r = requests.get(u.request_id)
        if r is not None and r.penalty is not None:
            cost += r.penalty
    return cost
