"""Ruin-and-recreate large neighbourhood search on top of the insertion heuristic.

Each iteration removes a few requests (at random, the most expensive ones, a
cluster of related ones -- close in space and in the times their windows and
ride time imply -- or a whole route) and re-inserts them, greedily in random order or by regret-2
insertion (Ropke & Pisinger), ride times checked exactly by
:mod:`solvers.schedule`, then swaps route tails where both vehicles are empty
(2-opt*, :meth:`~solvers.insertion.InsertionState.exchange_tails`) while that
saves distance. A worse result is accepted with simulated-annealing
probability; the best plan is kept.

The search is deterministic for a seed and an iteration count. With a time
limit only, where it stops depends on the machine; :func:`lns_solve` takes
``iterations`` for the deterministic case.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

from solvers.insertion import InsertionState, _Move, insertion_solve
from solvers.model import (
    Plan,
    Problem,
    Request,
    SolveLimits,
    SolveStats,
    StopKind,
    StopRef,
)
from solvers.schedule import Sequenced

P = StopKind.PICKUP


@dataclass(frozen=True, slots=True)
class LnsParams:
    """Tunables of the search (plain data, loadable from TOML by the caller)."""

    min_remove: int = 2
    max_remove: int = 20
    max_remove_share: float = 0.3
    random_share: float = 0.15
    route_share: float = 0.1
    #: remove the requests that cost most where they are (Ropke & Pisinger's worst removal)
    worst_share: float = 0.15
    start_temperature: float = 0.005  # share of the start cost
    end_temperature: float = 0.0001
    #: share of iterations that recreate by regret-k insertion (else greedy in random order)
    regret_share: float = 0.2
    regret: int = 2
    regret_noise: float = 0.0
    #: swap route tails (2-opt*) to a local optimum after every recreate
    tails: bool = True


def _when(r: Request, dur: tuple[tuple[int, ...], ...]) -> tuple[int, int]:
    """When ``r`` is picked up and dropped off, roughly: the middle of the times both
    windows and the ride time allow (one window of a DARP request is often the whole day)."""
    direct = dur[r.pickup][r.dropoff]
    ride = r.max_ride_time if r.max_ride_time is not None else 1 << 40
    pw, dw = r.pickup_window, r.dropoff_window
    lo = max(pw.earliest, dw.earliest - ride - r.pickup_service)
    hi = min(pw.latest, dw.latest - r.pickup_service - direct)
    tp = (lo + hi) // 2 if lo <= hi else lo
    lo_d = max(dw.earliest, tp + r.pickup_service + direct)
    hi_d = min(dw.latest, tp + r.pickup_service + ride)
    return tp, ((lo_d + hi_d) // 2 if lo_d <= hi_d else lo_d)


def _relatedness(problem: Problem, movable: list[Request]) -> dict[str, list[Request]]:
    """Every request's others, most related first (Shaw: close in space and in time)."""
    dur = problem.duration
    when = {r.id: _when(r, dur) for r in movable}
    out: dict[str, list[Request]] = {}
    for a in movable:
        ta, da = when[a.id]
        dp, dd = dur[a.pickup], dur[a.dropoff]

        def key(
            b: Request,
            ta: int = ta,
            da: int = da,
            dp: tuple[int, ...] = dp,
            dd: tuple[int, ...] = dd,
        ) -> tuple[int, str]:
            tb, db = when[b.id]
            return (dp[b.pickup] + dd[b.dropoff] + abs(ta - tb) + abs(da - db), b.id)

        out[a.id] = sorted(movable, key=key)
    return out


class Lns:
    """The search on an :class:`InsertionState` (which it leaves at the best plan)."""

    def __init__(self, state: InsertionState, seed: int, params: LnsParams | None = None) -> None:
        self.state = state
        self.rng = random.Random(seed)  # noqa: S311 (search randomness, not cryptography)
        self.params = params or LnsParams()
        self.movable = [r for r in state.problem.requests if r.onboard_vehicle is None]
        self.iterations = 0
        self._related: dict[str, list[Request]] | None = None
        self.accepted = 0
        self.improved = 0

    def _served(self) -> list[Request]:
        ids = {x.id for seq in self.state.seqs.values() for x, _ in seq}
        return [r for r in self.movable if r.id in ids]

    def _choose(self) -> list[Request]:
        p, rng = self.params, self.rng
        served = self._served()
        if not served:
            return []
        cap = max(p.min_remove, min(p.max_remove, int(p.max_remove_share * len(served))))
        q = min(len(served), rng.randint(p.min_remove, cap))
        u = rng.random()
        if u < p.route_share:
            used = [vid for vid, seq in self.state.seqs.items() if seq]
            vid = rng.choice(sorted(used))
            ids = {x.id for x, _ in self.state.seqs[vid] if x.onboard_vehicle is None}
            return [r for r in served if r.id in ids]
        if u < p.route_share + p.random_share:
            return rng.sample(served, q)
        if u < p.route_share + p.random_share + p.worst_share:
            return self._worst(served, q)
        seed = rng.choice(served)
        if self._related is None:
            self._related = _relatedness(self.state.problem, self.movable)
        ids = {r.id for r in served}
        ranked = [r for r in self._related[seed.id] if r.id in ids]
        # randomised: skew towards the most related (Ropke & Pisinger's p = 6)
        out: list[Request] = []
        pool = ranked
        while len(out) < q and pool:
            k = int(len(pool) * rng.random() ** 6)
            out.append(pool.pop(k))
        return out

    def _worst(self, served: list[Request], q: int) -> list[Request]:
        """``q`` requests whose removal saves most distance, randomised (p = 3)."""
        st = self.state
        dist = st.problem.distance
        saving: dict[str, int] = {}
        for vid, seq in st.seqs.items():
            if not seq:
                continue
            v = st.vehicles[vid]
            locs = [v.start, *(x.pickup if k is P else x.dropoff for x, k in seq), v.end]
            where: dict[str, list[int]] = {}
            for pos, (x, _k) in enumerate(seq, start=1):
                where.setdefault(x.id, []).append(pos)
            for rid, positions in where.items():
                total = 0
                if len(positions) == 2 and positions[1] == positions[0] + 1:
                    i = positions[0]
                    a, pp, dd, b = locs[i - 1], locs[i], locs[i + 1], locs[i + 2]
                    total = dist[a][pp] + dist[pp][dd] + dist[dd][b] - dist[a][b]
                else:
                    for i in positions:
                        a, c, b = locs[i - 1], locs[i], locs[i + 1]
                        total += dist[a][c] + dist[c][b] - dist[a][b]
                saving[rid] = total
        ranked = sorted(served, key=lambda r: (-saving.get(r.id, 0), r.id))
        out: list[Request] = []
        while len(out) < q and ranked:
            out.append(ranked.pop(int(len(ranked) * self.rng.random() ** 3)))
        return out

    def _ruin(self, removed: list[Request]) -> bool:
        ids = {r.id for r in removed}
        st = self.state
        for vid, seq in list(st.seqs.items()):
            if any(x.id in ids for x, _ in seq):
                new: list[Sequenced] = [(x, k) for x, k in seq if x.id not in ids]
                if not st.set_route(vid, new, well_formed=True):
                    return False
        for r in removed:
            st.unassigned[r.id] = "removed"
        return True

    def _recreate(self, removed: list[Request]) -> None:
        rng = self.rng
        if rng.random() < 0.5:
            rng.shuffle(removed)
        else:
            removed.sort(key=lambda r: (r.pickup_window.earliest + rng.randrange(0, 600), r.id))
        st = self.state
        # mandatory first: they must not lose their place to optional ones
        removed.sort(key=lambda r: r.penalty is not None)
        pending = [*removed, *(st.scheduler.requests[rid] for rid in sorted(st.unassigned))]
        seen: set[str] = set()
        for r in pending:
            if r.id in seen:
                continue
            seen.add(r.id)
            st.insert(r)

    def _recreate_regret(self, removed: list[Request]) -> None:
        """Regret-k insertion (Ropke & Pisinger): insert first the request that loses most
        by not getting its best route now; per-route best insertions are cached and
        only the changed route is re-evaluated after each insertion."""
        st = self.state
        k = self.params.regret
        big = st.mandatory_penalty
        pending = {r.id: r for r in removed}
        for rid in sorted(st.unassigned):
            pending.setdefault(rid, st.scheduler.requests[rid])
        moves: dict[str, dict[str, _Move | None]] = {}
        for rid, r in pending.items():
            moves[rid] = {v.id: st.best_move(r, None, (v,)) for v in st.allowed(r)}
        noise = self.params.regret_noise
        rng = self.rng
        while pending:
            pick: tuple[int, float, float, str] | None = None
            for rid, r in pending.items():
                costs = sorted(m.cost for m in moves[rid].values() if m is not None)
                if not costs:
                    continue
                if r.penalty is not None and costs[0] > r.penalty:
                    continue
                regret = sum((costs[i] if i < len(costs) else big) - costs[0] for i in range(1, k))
                score = regret * (1.0 + noise * rng.random()) if noise else float(regret)
                key = (r.penalty is None, score, -costs[0], rid)
                if pick is None or key > pick:
                    pick = key
            if pick is None:
                break
            rid = pick[3]
            r = pending.pop(rid)
            best = min(
                (m for m in moves.pop(rid).values() if m is not None),
                key=lambda m: (m.cost, m.vehicle_id),
            )
            st.apply(best)
            st.unassigned.pop(rid, None)
            vehicle = (st.vehicles[best.vehicle_id],)
            for xid, x in pending.items():
                if best.vehicle_id in moves[xid]:
                    moves[xid][best.vehicle_id] = st.best_move(x, None, vehicle)
        for rid, r in pending.items():
            st.unassigned[rid] = st.reason(r, r.penalty is not None)

    def run(
        self, deadline: float, max_iterations: int | None = None, stop_when_complete: bool = False
    ) -> None:
        st = self.state
        p = self.params
        cost = st.total_cost()
        best = (cost, {v: list(s) for v, s in st.seqs.items()}, dict(st.unassigned))
        current = best
        if not self.movable:
            return
        start = time.monotonic()
        span = max(1e-9, deadline - start)
        while True:
            if max_iterations is not None and self.iterations >= max_iterations:
                break
            now = time.monotonic()
            if now >= deadline:
                break
            self.iterations += 1
            if max_iterations is not None:
                frac = self.iterations / max_iterations
            else:
                frac = (now - start) / span
            temp = best[0] * (p.start_temperature * (1 - frac) + p.end_temperature * frac)
            removed = self._choose()
            if not removed:
                break  # nothing served: nothing to ruin
            if not self._ruin(removed):
                st.restore(current[1], current[2])
                continue
            if self.rng.random() < p.regret_share:
                self._recreate_regret(removed)
            else:
                self._recreate(removed)
            if p.tails and not st.wait_cost:  # tail exchanges weigh distance alone
                st.exchange_tails()
            new_cost = st.total_cost()
            delta = new_cost - current[0]
            if delta <= 0 or (temp > 0 and self.rng.random() < math.exp(-delta / temp)):
                self.accepted += 1
                current = (new_cost, {v: list(s) for v, s in st.seqs.items()}, dict(st.unassigned))
                if new_cost < best[0]:
                    self.improved += 1
                    best = current
            else:
                st.restore(current[1], current[2])
            if stop_when_complete and not any(
                st.scheduler.requests[rid].penalty is None for rid in best[2]
            ):
                break
        st.restore(best[1], best[2])


def lns_improve(
    state: InsertionState,
    *,
    seed: int,
    deadline: float,
    iterations: int | None = None,
    params: LnsParams | None = None,
    stop_when_complete: bool = False,
) -> Lns:
    """Improve ``state`` in place until ``deadline`` (``time.monotonic()``) or ``iterations``
    (or, with ``stop_when_complete``, as soon as every mandatory request is served)."""
    search = Lns(state, seed, params)
    search.run(deadline, iterations, stop_when_complete)
    return search


def lns_solve(
    problem: Problem,
    limits: SolveLimits,
    *,
    seed: int = 0,
    iterations: int | None = None,
) -> Plan:
    """Insertion start, then ruin-and-recreate until the time limit (or ``iterations``).

    Implements :class:`~solvers.base.Solver`; deterministic when ``iterations``
    is given and reached before the time limit.
    """
    t0 = time.monotonic()
    start = insertion_solve(problem, SolveLimits(max(0.01, 0.1 * limits.time_limit)), seed=seed)
    state = InsertionState(problem, problem.dropoff_wait_cost)
    state.load_hint(
        (r.vehicle_id, [StopRef(s.request_id, s.kind) for s in r.stops]) for r in start.routes
    )
    state.unassigned = {u.request_id: u.reason for u in start.unassigned}
    lns_improve(state, seed=seed, deadline=t0 + limits.time_limit, iterations=iterations)
    runtime = time.monotonic() - t0
    return state.plan(
        SolveStats("lns", state.total_cost(), runtime, runtime >= 0.95 * limits.time_limit)
    )
