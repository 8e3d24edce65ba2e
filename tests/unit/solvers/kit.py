"""Hand-made and random problems for the solver tests."""

from __future__ import annotations

import math
import random

from solvers.model import Problem, Request, RouteHint, StopKind, StopRef, TimeWindow, Vehicle


def line_problem(
    requests: tuple[Request, ...],
    vehicles: tuple[Vehicle, ...] | None = None,
    n: int = 10,
) -> Problem:
    """Locations 0..n-1 on a line, 10 s and 100 m apart; one vehicle at 0 by default."""
    duration = tuple(tuple(10 * abs(i - j) for j in range(n)) for i in range(n))
    distance = tuple(tuple(100 * abs(i - j) for j in range(n)) for i in range(n))
    if vehicles is None:
        vehicles = (Vehicle("v", start=0, end=0, seats=2, wheelchairs=1),)
    return Problem(duration, distance, vehicles, requests, name="line")


def random_problem(
    seed: int,
    n_requests: int,
    n_vehicles: int,
    *,
    onboard: int = 0,
    wheelchairs: bool = True,
    ride_limits: bool = True,
    hint: bool = False,
) -> Problem:
    """A small random dial-a-ride problem (Euclidean seconds, metres = 10 x seconds).

    Requests are optional (penalties); passengers on board (``onboard`` of
    them, on the first vehicles) are mandatory with loose limits, so a feasible
    plan always exists. Vehicles start at their own place and time (mid-route).
    """
    rng = random.Random(seed)
    n_loc = 2 * n_vehicles + 2 * n_requests + 2 * onboard + 1
    pts = [(rng.uniform(0, 600), rng.uniform(0, 600)) for _ in range(n_loc)]
    duration = tuple(tuple(math.ceil(math.dist(a, b)) for b in pts) for a in pts)
    distance = tuple(tuple(10 * math.ceil(math.dist(a, b)) for b in pts) for a in pts)
    depot = n_loc - 1
    vehicles = tuple(
        Vehicle(
            f"v{k}",
            start=k,
            end=depot,
            start_time=rng.randrange(0, 300),
            end_time=20_000,
            seats=rng.choice((2, 3, 4)),
            wheelchairs=rng.choice((0, 1)) if wheelchairs else 0,
            max_duration=rng.choice((None, 15_000)),
            fixed_cost=rng.choice((0, 0, 500)),
        )
        for k in range(n_vehicles)
    )
    requests: list[Request] = []
    loc = n_vehicles
    for i in range(onboard):
        v = vehicles[i % n_vehicles]
        requests.append(
            Request(
                f"o{i}",
                pickup=loc,
                dropoff=loc + 1,
                seats=1,
                dropoff_service=rng.randrange(0, 60),
                max_ride_time=8_000 if ride_limits else None,
                onboard_vehicle=v.id,
                picked_up_at=max(0, v.start_time - rng.randrange(0, 200)),
            )
        )
        loc += 2
    for i in range(n_requests):
        p, d = loc, loc + 1
        loc += 2
        earliest = rng.randrange(0, 3000)
        width = rng.choice((300, 900, 5000))
        chair = wheelchairs and rng.random() < 0.2
        direct = duration[p][d]
        requests.append(
            Request(
                f"r{i}",
                pickup=p,
                dropoff=d,
                pickup_window=TimeWindow(earliest, earliest + width),
                dropoff_window=rng.choice(
                    (TimeWindow(), TimeWindow(0, earliest + width + 3 * direct + 600))
                ),
                seats=0 if chair else rng.choice((1, 1, 2)),
                wheelchairs=1 if chair else 0,
                pickup_service=rng.randrange(0, 90),
                dropoff_service=rng.randrange(0, 90),
                max_ride_time=(int(1.5 * direct) + 300) if ride_limits else None,
                penalty=rng.choice((5_000, 50_000, 500_000)),
                allowed_vehicles=(
                    tuple(sorted({rng.choice(vehicles).id, vehicles[0].id}))
                    if rng.random() < 0.2
                    else None
                ),
            )
        )
    hints: tuple[RouteHint, ...] = ()
    if hint and requests:
        r = requests[-1]
        hints = (
            RouteHint(
                vehicles[-1].id,
                (StopRef(r.id, StopKind.PICKUP), StopRef(r.id, StopKind.DROPOFF)),
            ),
        )
    return Problem(duration, distance, vehicles, tuple(requests), hint=hints, name=f"rand{seed}")
