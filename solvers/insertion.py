"""Cheapest feasible insertion: the baseline, the fallback and the warm start.

:func:`insertion_solve` builds a plan request by request: every request goes
to the vehicle and the pair of positions (pickup, drop-off) that add the least
cost while the whole route stays feasible (checked by
:class:`~solvers.schedule.Scheduler`, ride times included). It starts from
``problem.hint`` (hinted routes are kept when feasible, repaired otherwise),
serves passengers on board and mandatory requests first, then the optional
ones by pickup time. A short remove-and-reinsert pass improves the result
while the time limit allows. Everything is deterministic for a seed; the seed
only breaks ties in the order of requests.

:func:`insert_request` is the cheap path for the dispatcher: put ONE request
into existing routes, keeping the order of the stops already planned.
"""

from __future__ import annotations

import random
import time
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from solvers.base import SolverError
from solvers.model import (
    Plan,
    Problem,
    Request,
    Route,
    SolveLimits,
    SolveStats,
    StopKind,
    StopRef,
    Unassigned,
    Vehicle,
)
from solvers.schedule import Infeasible, Scheduler, Sequenced, Times

P, D = StopKind.PICKUP, StopKind.DROPOFF
#: Ruin-and-recreate iterations (and share of the time limit) spent on placing
#: mandatory requests the insertion could not place.
REPAIR_ITERATIONS = 300
REPAIR_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class _Move:
    cost: int
    vehicle_id: str
    stops: list[Sequenced]
    times: Times


class InsertionState:
    """Routes under construction: stop sequences per vehicle with their schedules."""

    def __init__(self, problem: Problem, wait_cost: float = 0.0) -> None:
        self.problem = problem
        #: cost per second a new request's drop-off comes after its earliest possible
        #: time, in distance units (metres), added to the distance an insertion adds
        #: (see :func:`insert_request`); 0: cheapest by distance alone
        self.wait_cost = wait_cost
        self.scheduler = Scheduler(problem)
        self.vehicles = {v.id: v for v in problem.vehicles}
        self.seqs: dict[str, list[Sequenced]] = {v.id: [] for v in problem.vehicles}
        self.times: dict[str, Times | None] = {v.id: None for v in problem.vehicles}
        self.unassigned: dict[str, str] = {}
        self.evaluations = 0
        self._bounds_cache: dict[str, tuple[list[int], ...]] = {}
        self._columns: dict[int, tuple[list[int], list[int]]] = {}
        #: every route as :meth:`exchange_tails` last left it at a local optimum (no
        #: tail exchange between two of these saves distance and stays feasible)
        self._tails_done: dict[str, tuple[tuple[str, StopKind], ...]] = {}
        self._tails_info: dict[str, tuple[list[Sequenced], tuple[Any, ...]]] = {}
        dist = problem.distance
        longest = max((max(row) for row in dist), default=0)
        stops = 2 * len(problem.requests) + 2 * len(problem.vehicles)
        fixed = sum(v.fixed_cost for v in problem.vehicles)
        #: what an unserved mandatory request costs in :meth:`total_cost`
        self.mandatory_penalty = max(1_000_000, 2 * (longest * stops + fixed) + 1)

    # -- cost ------------------------------------------------------------------

    def route_cost(self, vehicle: Vehicle, stops: Sequence[Sequenced]) -> int:
        """Distance of the route plus the vehicle's fixed cost when it is used."""
        dist = self.problem.distance
        here = vehicle.start
        total = 0
        for r, kind in stops:
            loc = r.pickup if kind is P else r.dropoff
            total += dist[here][loc]
            here = loc
        total += dist[here][vehicle.end]
        return total + (vehicle.fixed_cost if stops else 0)

    def total_cost(self) -> int:
        """Objective of the current routes (penalties of unserved requests included;
        with a ``wait_cost``, each drop-off's delay over its earliest possible too)."""
        cost = sum(self.route_cost(v, self.seqs[v.id]) for v in self.problem.vehicles)
        if self.wait_cost:
            cost += round(self.wait_cost * self.dropoff_delays())
        for rid in self.unassigned:
            r = self.scheduler.requests[rid]
            cost += r.penalty if r.penalty is not None else self.mandatory_penalty
        return cost

    def dropoff_delays(self) -> int:
        """Seconds every planned drop-off comes after the earliest it could (picked up
        when the window opens and driven straight there), summed over the routes."""
        dur = self.problem.duration
        total = 0
        for v in self.problem.vehicles:
            seq = self.seqs[v.id]
            if not seq:
                continue
            times = self.times[v.id]
            if times is None:
                timed = self.evaluate(v, seq)
                if isinstance(timed, Infeasible):  # every route here was accepted before
                    raise SolverError(f"route of {v.id} became infeasible: {timed}")
                times = self.times[v.id] = timed
            for k, (r, kind) in enumerate(seq):
                if kind is P:
                    continue
                earliest = r.dropoff_window.earliest
                if r.onboard_vehicle is None:
                    ready = r.pickup_window.earliest + r.pickup_service
                    earliest = max(earliest, ready + dur[r.pickup][r.dropoff])
                total += max(0, times.start[k + 1] - earliest)
        return total

    # -- moves -----------------------------------------------------------------

    def set_route(
        self, vehicle_id: str, stops: list[Sequenced], *, well_formed: bool = False
    ) -> bool:
        """Replace a route if the new sequence is feasible (``well_formed``: pairing,
        precedence, capacity and vehicle are known to hold, e.g. after removing
        requests; only times are checked)."""
        if well_formed:
            self.evaluations += 1
            times = self.scheduler.earliest(self.vehicles[vehicle_id], stops)
        else:
            times = self.evaluate(self.vehicles[vehicle_id], stops)
        if isinstance(times, Infeasible):
            return False
        self.seqs[vehicle_id] = stops
        self.times[vehicle_id] = times
        self._bounds_cache.pop(vehicle_id, None)
        return True

    def restore(self, seqs: Mapping[str, list[Sequenced]], unassigned: Mapping[str, str]) -> None:
        """Reset to a snapshot (times are recomputed lazily; unchanged routes keep theirs)."""
        old = self.seqs
        self.seqs = {vid: list(seq) for vid, seq in seqs.items()}
        for vid, seq in self.seqs.items():
            if old.get(vid) != seq:
                self.times[vid] = None
                self._bounds_cache.pop(vid, None)
        self.unassigned = dict(unassigned)

    def evaluate(self, vehicle: Vehicle, stops: Sequence[Sequenced]) -> Times | Infeasible:
        self.evaluations += 1
        return self.scheduler.times(vehicle, stops, fast=True)

    def _column(self, x: int) -> tuple[list[int], list[int]]:
        """Travel times and distances from every location to ``x``."""
        col = self._columns.get(x)
        if col is None:
            col = self._columns[x] = (
                [row[x] for row in self.problem.duration],
                [row[x] for row in self.problem.distance],
            )
        return col

    def allowed(self, r: Request) -> list[Vehicle]:
        if r.onboard_vehicle is not None:
            v = self.vehicles.get(r.onboard_vehicle)
            return [v] if v is not None else []
        ids = r.allowed_vehicles
        return [
            v
            for v in self.problem.vehicles
            if (ids is None or v.id in ids)
            and r.seats <= v.seats
            and r.wheelchairs <= v.wheelchairs
        ]

    def _bounds(self, v: Vehicle, seq: Sequence[Sequenced]) -> tuple[list[int], ...]:
        """:meth:`_simple_bounds`, then the earliest and the latest feasible schedule."""
        simple = self._simple_bounds(v, seq)
        early, late = simple[2], simple[3]
        # the same bounds with ride times and the route duration: the earliest and the
        # latest feasible schedule of the route (an insertion only adds constraints)
        known = self.times.get(v.id) if seq is self.seqs.get(v.id) else None
        schedule = known if known is not None or not seq else self.scheduler.earliest(v, seq)
        tight_early = schedule.start if isinstance(schedule, Times) else early
        tight_late = self.scheduler.latest(v, seq) if seq else None
        return (*simple, tight_early, late if tight_late is None else tight_late)

    def _simple_bounds(self, v: Vehicle, seq: Sequence[Sequenced]) -> tuple[list[int], ...]:
        """Locations, service, earliest and latest service starts, no-wait chain times,
        seats and wheelchairs after each stop, arc distances.

        Earliest starts ignore ride times, latest starts ignore ride times and
        later waiting: both are necessary conditions used to skip hopeless
        insertions before the exact scheduler sees them.
        """
        dur = self.problem.duration
        n = len(seq)
        loc = [v.start] * (n + 2)
        svc = [0] * (n + 2)
        early = [v.start_time] * (n + 2)
        late = [v.end_time] * (n + 2)
        for k, (x, kind) in enumerate(seq, start=1):
            if kind is P:
                loc[k], svc[k] = x.pickup, x.pickup_service
                early[k], late[k] = x.pickup_window.earliest, x.pickup_window.latest
            else:
                loc[k], svc[k] = x.dropoff, x.dropoff_service
                early[k], late[k] = x.dropoff_window.earliest, x.dropoff_window.latest
        loc[n + 1] = v.end
        chain = [0] * (n + 2)
        for k in range(1, n + 2):
            step = svc[k - 1] + dur[loc[k - 1]][loc[k]]
            chain[k] = chain[k - 1] + step
            early[k] = max(early[k], early[k - 1] + step)
        for k in range(n, -1, -1):
            late[k] = min(late[k], late[k + 1] - svc[k] - dur[loc[k]][loc[k + 1]])
        # load after position k (k=0: the start, passengers on board)
        seats = [0] * (n + 1)
        chairs = [0] * (n + 1)
        ns = nc = 0
        for x, kind in seq:
            if kind is D and x.onboard_vehicle is not None:
                ns += x.seats
                nc += x.wheelchairs
        seats[0], chairs[0] = ns, nc
        for k, (x, kind) in enumerate(seq, start=1):
            if kind is P:
                ns += x.seats
                nc += x.wheelchairs
            else:
                ns -= x.seats
                nc -= x.wheelchairs
            seats[k], chairs[k] = ns, nc
        dist = self.problem.distance
        arc = [dist[loc[k]][loc[k + 1]] for k in range(n + 1)]
        return loc, svc, early, late, chain, seats, chairs, arc

    def best_move(
        self, r: Request, bound: int | None = None, vehicles: Sequence[Vehicle] | None = None
    ) -> _Move | None:
        """The cheapest feasible insertion of ``r`` (cost below ``bound`` if given),
        into one of ``vehicles`` if given (else any allowed vehicle)."""
        dist = self.problem.distance
        dur = self.problem.duration
        #: (cost, order, vehicle, pickup position, drop-off position, delay cost in it)
        candidates: list[tuple[int, int, str, int, int, int]] = []
        order = 0
        p, d = r.pickup, r.dropoff
        ep, lp = r.pickup_window.earliest, r.pickup_window.latest
        ed, ld = r.dropoff_window.earliest, r.dropoff_window.latest
        sp, sd = r.pickup_service, r.dropoff_service
        ride_max = r.max_ride_time
        pd, t_pd = dist[p][d], dur[p][d]
        to_d, dist_to_d = self._column(d)
        wait_cost = self.wait_cost
        # windows tightened by what the other stop and the ride time imply (Cordeau's
        # preprocessing): one window of a DARP request is often the whole day
        if r.onboard_vehicle is None:
            if ride_max is not None:
                ep = max(ep, ed - sp - ride_max)
            lp = min(lp, ld - sp - t_pd)
            ed = max(ed, ep + sp + t_pd)
            if ride_max is not None:
                ld = min(ld, lp + sp + ride_max)
        for v in self.allowed(r) if vehicles is None else vehicles:
            seq = self.seqs[v.id]
            n = len(seq)
            cached = self._bounds_cache.get(v.id)
            if cached is None:
                cached = self._bounds_cache[v.id] = self._bounds(v, seq)
            locs, svc, _e, _l, chain, seats, chairs, arc, early, late = cached
            base = 0 if seq else v.fixed_cost
            vid = v.id
            if r.onboard_vehicle is not None:
                for j in range(n + 1):
                    a, b = locs[j], locs[j + 1]
                    t_d = max(ed, early[j] + svc[j] + dur[a][d])
                    if t_d > ld or t_d + sd + dur[d][b] > late[j + 1]:
                        continue
                    delta = dist[a][d] + dist[d][b] - arc[j] + base
                    candidates.append((delta, order, vid, -1, j, 0))
                    order += 1
                continue
            cap_s = v.seats - r.seats
            cap_c = v.wheelchairs - r.wheelchairs
            dist_p, dist_d, dur_p, dur_d = dist[p], dist[d], dur[p], dur[d]
            # latest starts only grow along the route: before the first stop that may
            # start after the pickup's service no pickup fits
            first = bisect_left(late, ep + sp, 1, n + 2) - 1
            for i in range(first if first > 0 else 0, n + 1):
                ei = early[i]
                if ei > lp:
                    break  # earliest starts only grow along the route
                a, b = locs[i], locs[i + 1]
                t_p = ei + svc[i] + dur[a][p]
                if t_p < ep:  # noqa: PLR1730 (hot loop: no call)
                    t_p = ep
                if t_p > lp:
                    continue
                max_s, max_c = seats[i], chairs[i]
                if max_s > cap_s or max_c > cap_c:
                    continue
                # j == i: drop-off right after the pickup
                t_d = t_p + sp + t_pd
                if t_d < ed:  # noqa: PLR1730 (hot loop: no call)
                    t_d = ed
                if (
                    t_d <= ld
                    and t_d + sd + dur_d[b] <= late[i + 1]
                    and (ride_max is None or t_pd <= ride_max)
                ):
                    delay = round(wait_cost * (t_d - ed)) if wait_cost else 0
                    delta = dist[a][p] + pd + dist_d[b] - arc[i] + delay
                    candidates.append((delta + base, order, vid, i, i, delay))
                    order += 1
                if i == n or t_p + sp + dur_p[b] > late[i + 1]:
                    continue
                dp = dist[a][p] + dist_p[b] - arc[i] + base
                ride0 = dur_p[b] - chain[i + 1]
                for j in range(i + 1, n + 1):
                    ej = early[j]
                    if ej > ld:
                        break
                    sj, cj = seats[j], chairs[j]
                    if sj > max_s:  # noqa: PLR1730 (hot loop: no call)
                        max_s = sj
                    if cj > max_c:  # noqa: PLR1730 (hot loop: no call)
                        max_c = cj
                    if max_s > cap_s or max_c > cap_c:
                        break
                    lj = locs[j]
                    if ride_max is not None and ride0 + chain[j] + svc[j] + to_d[lj] > ride_max:
                        break
                    t_d = ej + svc[j] + to_d[lj]
                    if t_d < ed:  # noqa: PLR1730 (hot loop: no call)
                        t_d = ed
                    if t_d > ld or t_d + sd + dur_d[locs[j + 1]] > late[j + 1]:
                        continue
                    delay = round(wait_cost * (t_d - ed)) if wait_cost else 0
                    delta = dp + dist_to_d[lj] + dist_d[locs[j + 1]] - arc[j] + delay
                    candidates.append((delta, order, vid, i, j, delay))
                    order += 1
        candidates.sort()
        # pairs built above are well formed (capacity checked): times only; a passenger
        # on board adds load from the start on, which the loop above does not check
        earliest = self.scheduler.earliest if r.onboard_vehicle is None else self.evaluate
        # A candidate's delay is costed at its earliest drop-off; the schedule may be
        # later (waiting for a window on the way), so with a wait cost the cost in
        # the list is a lower bound: look on until it reaches the best found.
        best: _Move | None = None
        for delta, _, vid, i, j, delayed in candidates:
            if bound is not None and delta >= bound:
                break
            if best is not None and delta >= best.cost:
                break
            seq = self.seqs[vid]
            if i < 0:
                new = [*seq[:j], (r, D), *seq[j:]]
            else:
                new = [*seq[:i], (r, P), *seq[i:j], (r, D), *seq[j:]]
            self.evaluations += 1
            times = earliest(self.vehicles[vid], new)
            if isinstance(times, Infeasible):
                continue
            if not wait_cost or i < 0:
                return _Move(delta, vid, new, times) if best is None else best
            cost = delta - delayed + round(wait_cost * (times.start[j + 2] - ed))
            if (bound is None or cost < bound) and (best is None or cost < best.cost):
                best = _Move(cost, vid, new, times)
        return best

    def _cached_bounds(self, v: Vehicle) -> tuple[list[int], ...]:
        cached = self._bounds_cache.get(v.id)
        if cached is None:
            cached = self._bounds_cache[v.id] = self._bounds(v, self.seqs[v.id])
        return cached

    def _tail_info(self, v: Vehicle) -> tuple[Any, ...]:
        """What :meth:`exchange_tails` needs of a route, kept while the route is unchanged
        (a changed route is a new list: routes are replaced, never edited in place)."""
        seq = self.seqs[v.id]
        kept = self._tails_info.get(v.id)
        if kept is not None and kept[0] is seq:
            return kept[1]
        cached = self._bounds_cache.get(v.id)
        simple = cached[:8] if cached is not None else self._simple_bounds(v, seq)
        locs, svc, early, late, _chain, seats, chairs, arc = simple
        n = len(locs) - 2
        prefix = [0] * (n + 1)
        for k in range(1, n + 1):
            prefix[k] = prefix[k - 1] + arc[k - 1]
        cuts = [k for k in range(n + 1) if seats[k] == 0 and chairs[k] == 0]
        # earliest departure after each cut, latest start of each stop (both
        # without ride times: a necessary condition for the joined routes)
        out = [early[k] + svc[k] for k in range(n + 1)]
        cost = self.route_cost(v, seq)
        # both non-decreasing along the route: bisectable
        out_cut = [out[k] for k in cuts]
        late_next = [late[k + 1] for k in cuts]
        info = (v, locs, n, prefix, cuts, cost, out, late, out_cut, late_next)
        self._tails_info[v.id] = (seq, info)
        return info

    def exchange_tails(self, fixed: frozenset[str] = frozenset()) -> int:
        """2-opt* between routes: swap the tails of two routes after points where both
        vehicles are empty (so every pickup stays with its drop-off), best move first,
        until no swap saves distance. Routes holding requests in ``fixed`` are left
        alone. Returns the saving.

        Two routes both unchanged since the last call ended are not paired again: no
        swap between them helped then, and none can now (the checks depend on the two
        sequences only). In the LNS, where a ruin touches a few routes, this skips most
        pairs."""
        dist, dur = self.problem.distance, self.problem.duration
        vehicles = [
            v
            for v in self.problem.vehicles
            if not fixed or not any(x.id in fixed for x, _ in self.seqs[v.id])
        ]

        def shape(vid: str) -> tuple[tuple[str, StopKind], ...]:
            return tuple((x.id, k) for x, k in self.seqs[vid])

        done = self._tails_done if not fixed else {}
        dirty = {v.id for v in vehicles if done.get(v.id) != shape(v.id)}
        saved = 0
        while True:
            info = [self._tail_info(v) for v in vehicles]
            moves: list[tuple[int, int, int, int, int]] = []
            for ia in range(len(info)):
                va, la, na, pa, ca, cost_a, out_a, late_a, _oa, _la = info[ia]
                ea = va.end
                a_dirty = va.id in dirty
                for ib in range(ia + 1, len(info)):
                    vb, lb, nb, pb, cb, cost_b, out_b, late_b, out_cut_b, late_next_b = info[ib]
                    if not (a_dirty or vb.id in dirty):
                        continue
                    eb = vb.end
                    same_end = ea == eb and va.end_time == vb.end_time
                    if not (na or nb):
                        continue
                    for i in ca:
                        ai = la[i]
                        if same_end:  # B's tail must start after A's head, and vice versa
                            lo = bisect_left(late_next_b, out_a[i])
                            hi = bisect_right(out_cut_b, late_a[i + 1])
                            cuts_b = cb[lo:hi]
                        else:
                            cuts_b = cb
                        for j in cuts_b:
                            if (i == na and j == nb) or (i == 0 and j == 0):
                                continue
                            bj = lb[j]
                            # new A: A[:i] + B[j:]; new B: B[:j] + A[i:]
                            if j < nb:
                                new_a = pa[i] + dist[ai][lb[j + 1]] + pb[nb] - pb[j + 1]
                                new_a += dist[lb[nb]][ea]
                            else:
                                new_a = pa[i] + dist[ai][ea]
                            if i < na:
                                new_b = pb[j] + dist[bj][la[i + 1]] + pa[na] - pa[i + 1]
                                new_b += dist[la[na]][eb]
                            else:
                                new_b = pb[j] + dist[bj][eb]
                            if i + nb - j:
                                new_a += va.fixed_cost
                            if j + na - i:
                                new_b += vb.fixed_cost
                            delta = new_a + new_b - cost_a - cost_b
                            if delta < 0 and same_end:
                                if out_a[i] + dur[ai][lb[j + 1]] > late_b[j + 1]:
                                    continue
                                if out_b[j] + dur[bj][la[i + 1]] > late_a[i + 1]:
                                    continue
                            if delta < 0:
                                moves.append((delta, ia, ib, i, j))
            moves.sort()
            for delta, ia, ib, i, j in moves:
                va, vb = info[ia][0], info[ib][0]
                sa, sb = self.seqs[va.id], self.seqs[vb.id]
                seq_a, seq_b = [*sa[:i], *sb[j:]], [*sb[:j], *sa[i:]]
                ta = self.evaluate(va, seq_a)
                if isinstance(ta, Infeasible):
                    continue
                tb = self.evaluate(vb, seq_b)
                if isinstance(tb, Infeasible):
                    continue
                self.apply(_Move(0, va.id, seq_a, ta))
                self.apply(_Move(0, vb.id, seq_b, tb))
                dirty.update((va.id, vb.id))
                saved -= delta
                break
            else:
                if not fixed:
                    for v in vehicles:
                        done[v.id] = shape(v.id)
                return saved

    def apply(self, move: _Move) -> None:
        self.seqs[move.vehicle_id] = move.stops
        self.times[move.vehicle_id] = move.times
        self._bounds_cache.pop(move.vehicle_id, None)

    def insert(self, r: Request) -> bool:
        """Insert ``r`` at its cheapest feasible place; record a reason when there is none."""
        bound = r.penalty + 1 if r.penalty is not None else None
        move = self.best_move(r, bound)
        if move is None:
            self.unassigned[r.id] = self.reason(r, bound is not None)
            return False
        self.apply(move)
        self.unassigned.pop(r.id, None)
        return True

    def remove(self, rid: str) -> tuple[str, list[Sequenced]] | None:
        """Take request ``rid`` out of its route (if the rest stays feasible)."""
        for vid, seq in self.seqs.items():
            if any(x.id == rid for x, _ in seq):
                new = [(x, k) for x, k in seq if x.id != rid]
                old = seq
                if not self.set_route(vid, new):
                    return None
                return vid, old
        return None

    def reason(self, r: Request, optional: bool) -> str:
        """Why ``r`` could not be inserted."""
        vehicles = self.allowed(r)
        if r.onboard_vehicle is not None:
            return "infeasible" if vehicles else "no_vehicle"
        if not vehicles:
            ids = r.allowed_vehicles
            some = [v for v in self.problem.vehicles if ids is None or v.id in ids]
            return "capacity" if some else "no_vehicle"
        reasons = []
        for v in vehicles:
            alone = [
                (x, k)
                for x, k in self.seqs[v.id]
                if x.onboard_vehicle is not None  # passengers on board stay
            ]
            times = self.evaluate(v, [*alone, (r, P), (r, D)])
            if not isinstance(times, Infeasible):
                return "penalty_cheaper" if optional else "no_feasible_insertion"
            reasons.append(times.reason)
        for key in ("time_window", "ride_time", "shift_end", "max_duration", "capacity"):
            if key in reasons:
                return key
        return "no_feasible_insertion"

    # -- output ----------------------------------------------------------------

    def plan(self, stats: SolveStats) -> Plan:
        routes: list[Route] = []
        for v in self.problem.vehicles:
            seq = self.seqs[v.id]
            times = self.scheduler.times(v, seq)  # in full: ride times shortened
            if isinstance(times, Infeasible):
                times = self.scheduler.times(v, seq, fast=True)
            if isinstance(times, Infeasible):  # every route here was accepted before
                raise SolverError(f"route of {v.id} became infeasible: {times}")
            routes.append(self.scheduler.build(v, seq, times))
        served = {x.id for seq in self.seqs.values() for x, _ in seq}
        unassigned = tuple(
            Unassigned(r.id, self.unassigned.get(r.id, "no_feasible_insertion"))
            for r in self.problem.requests
            if r.id not in served
        )
        return Plan(tuple(routes), unassigned, stats)

    # -- construction ------------------------------------------------------------

    def _rank(self, rid: str) -> int:
        """0 for a passenger on board, 1 for a mandatory request, 2 for an optional one."""
        r = self.scheduler.requests[rid]
        return 0 if r.onboard_vehicle else (1 if r.penalty is None else 2)

    def load_hint(self, hint: Iterable[tuple[str, Sequence[StopRef]]]) -> None:
        """Start from hinted routes: keep each when feasible, else keep what fits in order."""
        used: set[str] = set()
        for vid, refs in hint:
            v = self.vehicles.get(vid)
            if v is None:
                continue
            seq: list[Sequenced] = []
            ids: list[str] = []
            for ref in refs:
                r = self.scheduler.requests.get(ref.request_id)
                if r is None or r.id in used:
                    continue
                if r.onboard_vehicle is not None and (ref.kind is P or r.onboard_vehicle != vid):
                    continue
                if r.allowed_vehicles is not None and vid not in r.allowed_vehicles:
                    continue
                if any(x.id == r.id and k == StopKind(ref.kind) for x, k in seq):
                    continue
                seq.append((r, StopKind(ref.kind)))
                if r.id not in ids:
                    ids.append(r.id)
            # drop requests whose hint lacks one of their stops
            complete = {
                rid
                for rid in ids
                if sum(1 for x, _ in seq if x.id == rid)
                == (1 if self.scheduler.requests[rid].onboard_vehicle else 2)
            }
            seq = [(x, k) for x, k in seq if x.id in complete]
            missing = [
                r
                for r in self.problem.requests
                if r.onboard_vehicle == vid and r.id not in complete
            ]
            if not (seq and self.set_route(vid, seq)):
                # keep what fits, in hint order: on board first, then mandatory, then optional
                kept: list[Sequenced] = []
                kept_ids: set[str] = set()
                for rid in sorted((x for x in ids if x in complete), key=self._rank):
                    trial_ids = kept_ids | {rid}
                    trial = [(x, k) for x, k in seq if x.id in trial_ids]
                    if not isinstance(self.evaluate(v, trial), Infeasible):
                        kept, kept_ids = trial, trial_ids
                seq = kept
                self.set_route(vid, seq)
            # passengers on board the hint forgot must fit too: drop hinted
            # requests from the end until they do
            droppable = [x.id for x, _ in seq if x.onboard_vehicle is None]
            droppable = list(dict.fromkeys(droppable))
            for r in missing:
                if not self.insert(r):
                    while droppable and r.id in self.unassigned:
                        gone = droppable.pop()
                        seq = [(x, k) for x, k in self.seqs[vid] if x.id != gone]
                        self.set_route(vid, seq)
                        self.insert(r)
            used.update(x.id for x, _ in self.seqs[vid])


def _order(problem: Problem, rng: random.Random | None) -> list[Request]:
    """Passengers on board first, then mandatory, then optional requests, by time."""

    def key(r: Request) -> tuple[int, int, float]:
        group = 0 if r.onboard_vehicle is not None else (1 if r.penalty is None else 2)
        tight = min(
            r.pickup_window.latest,
            r.dropoff_window.latest - (r.max_ride_time or 0) - r.pickup_service,
        )
        t = max(r.pickup_window.earliest, tight)
        return group, t, rng.random() if rng is not None else 0.0

    return sorted(problem.requests, key=key)


def _improve(
    state: InsertionState,
    deadline: float,
    rng: random.Random,
    rounds: int,
    fixed: frozenset[str] = frozenset(),
) -> None:
    """Remove and re-insert each request where cheaper; stop at a local optimum or the deadline.

    Requests in ``fixed`` (those of kept hinted routes) are not moved.
    """
    ids = [r.id for r in state.problem.requests if r.onboard_vehicle is None and r.id not in fixed]
    for _ in range(rounds):
        improved = False
        order = list(ids)
        rng.shuffle(order)
        for rid in order:
            if time.monotonic() > deadline:
                return
            if rid in state.unassigned:
                continue
            vid = next(
                (v for v, seq in state.seqs.items() if any(x.id == rid for x, _ in seq)), None
            )
            if vid is None:
                continue
            v = state.vehicles[vid]
            before = state.route_cost(v, state.seqs[vid])
            removed = state.remove(rid)
            if removed is None:
                continue
            saving = before - state.route_cost(v, state.seqs[vid])
            r = state.scheduler.requests[rid]
            move = state.best_move(r, saving)
            if move is not None and move.cost < saving:
                state.apply(move)
                improved = True
            else:
                state.set_route(vid, removed[1])
        # retry the unserved: routes have changed
        for rid in list(state.unassigned):
            if time.monotonic() > deadline:
                return
            if state.insert(state.scheduler.requests[rid]):
                improved = True
        if not improved:
            return


def insertion_solve(problem: Problem, limits: SolveLimits, *, seed: int = 0) -> Plan:
    """Cheapest feasible insertion from ``problem.hint``, then remove-and-reinsert.

    Hinted routes are kept when feasible (else the longest feasible part of
    them, in order): their requests stay on their vehicle in their order, and
    new requests are inserted around them. Only the new requests are moved by
    the remove-and-reinsert pass, so a fallback plan never reshuffles what
    drivers were already told.

    Implements :class:`~solvers.base.Solver`. Requests with ``penalty=None`` are
    inserted first and at any cost; optional ones only when cheaper than their
    penalty. Unserved requests carry a reason: ``"capacity"`` (no allowed
    vehicle is big enough), ``"time_window"``, ``"ride_time"``, ``"shift_end"``,
    ``"max_duration"`` (impossible even alone in a vehicle),
    ``"no_feasible_insertion"`` (possible alone, but not with the others),
    ``"penalty_cheaper"``, ``"no_vehicle"`` or ``"infeasible"`` (a passenger on
    board who cannot be dropped off in time).

    The construction is deterministic; the improvement pass stops early only
    when ``limits.time_limit`` runs out (a plan then depends on the machine).
    """
    t0 = time.monotonic()
    deadline = t0 + limits.time_limit
    rng = random.Random(seed)  # noqa: S311 (tie-breaking, not cryptography)
    state = InsertionState(problem)
    state.load_hint((h.vehicle_id, h.stops) for h in problem.hint)
    served = frozenset(x.id for seq in state.seqs.values() for x, _ in seq)
    for r in _order(problem, rng if seed else None):
        if r.id not in served:
            state.insert(r)
    _improve(state, deadline, rng, rounds=3, fixed=served)
    if any(state.scheduler.requests[rid].penalty is None for rid in state.unassigned):
        # A mandatory request found no place: let ruin-and-recreate make room
        # (it may move hinted requests too; dropping a promise is worse).
        from solvers.lns import lns_improve  # noqa: PLC0415 (lns builds on this module)

        lns_improve(
            state,
            seed=seed,
            deadline=min(deadline, t0 + REPAIR_SHARE * limits.time_limit),
            iterations=REPAIR_ITERATIONS,
            stop_when_complete=True,
        )
    runtime = time.monotonic() - t0
    return state.plan(
        SolveStats(
            solver="insertion",
            objective=state.total_cost(),
            runtime=runtime,
            time_limit_hit=runtime >= limits.time_limit,
        )
    )


def insert_request(
    problem: Problem,
    routes: Plan | Mapping[str, Sequence[StopRef]],
    request: Request | str,
    *,
    wait_cost: float = 0.0,
) -> Plan | None:
    """Insert ONE request into existing routes at its cheapest feasible place.

    Parameters
    ----------
    problem
        Vehicles, matrices and the requests the routes refer to. ``request`` may
        be one of ``problem.requests`` or a new one (its locations must be in
        the matrices).
    routes
        The current routes: a :class:`Plan` or ``{vehicle_id: [StopRef, ...]}``.
        The order of their stops is kept; only the new pickup and drop-off are
        placed (all times are re-scheduled).
    request
        The request (or its id in ``problem``).
    wait_cost
        Each second the passenger arrives later than the earliest possible (picked
        up when the window opens and driven straight there) costs this much, in
        distance units: among places that add similar distance, the one that gets
        the passenger there sooner wins. Counted at the drop-off, not the pickup: a
        passenger boarding early to sit in a waiting vehicle gains nothing. 0:
        cheapest by distance alone.

    Returns
    -------
    Plan | None
        The routes with the request inserted (all vehicles; requests of
        ``problem`` that no route serves are listed as unassigned with reason
        ``"not_planned"``), or ``None`` when no feasible position exists or a
        given route is itself infeasible.
    """
    t0 = time.monotonic()
    if isinstance(request, str):
        request = problem.request(request)
    elif all(r.id != request.id for r in problem.requests):
        problem = Problem(
            problem.duration,
            problem.distance,
            problem.vehicles,
            (*problem.requests, request),
            problem.hint,
            problem.name,
        )
    state = InsertionState(problem, wait_cost)
    if isinstance(routes, Plan):
        items = [
            (r.vehicle_id, [StopRef(s.request_id, s.kind) for s in r.stops]) for r in routes.routes
        ]
    else:
        items = [(vid, list(refs)) for vid, refs in routes.items()]
    for vid, refs in items:
        if vid not in state.vehicles:
            return None
        resolved = state.scheduler.resolve([x for x in refs if x.request_id != request.id])
        if isinstance(resolved, Infeasible) or not state.set_route(vid, resolved):
            return None
    move = state.best_move(request)
    if move is None:
        return None
    state.apply(move)
    served = {x.id for seq in state.seqs.values() for x, _ in seq}
    state.unassigned = {r.id: "not_planned" for r in problem.requests if r.id not in served}
    return state.plan(
        SolveStats(
            solver="insert_request",
            objective=state.total_cost(),
            runtime=time.monotonic() - t0,
        )
    )
