"""The tablet's view of a vehicle, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from producers.driver.plans import PlanBoard, break_view, no_show_from, view
from schemas.codec import encode
from schemas.dispatch import DeadLetterV1, DriverPlanV1, PlannedStop, StopAction
from schemas.envelope import Place
from schemas.vehicle import ArrivedAtStopV1, BreakRequestedV1, PassengerBoardedV1

T0 = datetime(2025, 5, 6, 8, 0, tzinfo=UTC)
A = Place(lat=54.3157, lon=9.6778, stop_id="a")
B = Place(lat=54.3023, lon=9.6711, stop_id="b")
V = {"source": "t", "vehicle_id": "bus-1", "zone": "rendsburg"}


def stop(action: StopAction, rid: str, where: Place, minutes: int) -> PlannedStop:
    return PlannedStop(
        action=action,
        request_id=rid,
        location=where,
        eta=T0 + timedelta(minutes=minutes),
        window_start=T0 + timedelta(minutes=minutes - 2),
        window_end=T0 + timedelta(minutes=minutes + 10),
        seats=2 if rid == "r2" else 1,
    )


def plan(version: int, *stops: PlannedStop) -> DriverPlanV1:
    return DriverPlanV1(occurred_at=T0, plan_version=version, stops=list(stops), **V)


def test_latest_plan_wins_and_stops_at_one_place_group() -> None:
    """An older plan version never replaces a newer one; same-place stops are one card."""
    board = PlanBoard()
    newer = plan(
        2,
        stop(StopAction.PICKUP, "r1", A, 5),
        stop(StopAction.PICKUP, "r2", A, 5),
        stop(StopAction.DROPOFF, "r1", B, 12),
        stop(StopAction.DROPOFF, "r2", B, 12),
    )
    assert board.apply(newer) == "bus-1"
    assert board.apply(plan(1)) is None
    v = view(board.vehicles["bus-1"], 300, {"a": "Stop A"}, T0)
    assert v["plan_version"] == 2
    assert [c["name"] for c in v["stops"]] == ["Stop A", "54.30230, 9.67110"]
    assert [p["request_id"] for p in v["stops"][0]["pickups"]] == ["r1", "r2"]
    assert v["stops"][0]["navigation"]["geo"].startswith("geo:54.315700,9.677800")
    assert v["onboard"] == {"seats": 0, "wheelchairs": 0}


def test_no_show_waits_from_arrival_or_window_start() -> None:
    """No-show is allowed the waiting time after arrival, or after the window opens."""
    board = PlanBoard()
    pickup = stop(StopAction.PICKUP, "r1", A, 5)  # window opens at T0 + 3 min
    board.apply(plan(1, pickup, stop(StopAction.DROPOFF, "r1", B, 12)))
    b = board.vehicles["bus-1"]
    assert no_show_from(b, pickup, 300) is None
    board.apply(ArrivedAtStopV1(occurred_at=T0, position=A, request_ids=["r1"], **V))
    assert no_show_from(b, pickup, 300) == T0 + timedelta(minutes=8)
    board.apply(PassengerBoardedV1(occurred_at=T0, request_id="r1", **V))
    board.apply(ArrivedAtStopV1(occurred_at=T0, position=B, request_ids=["r1"], **V))
    assert (("r1", StopAction.DROPOFF)) in b.arrived
    board.apply(plan(2, stop(StopAction.DROPOFF, "r1", B, 12)))
    v = view(b, 300, {}, T0)
    assert v["onboard"]["seats"] == 1
    assert v["stops"][0]["dropoffs"][0]["onboard"] is True
    assert v["stops"][0]["arrived_at"] == T0


def test_break_request_is_requested_then_planned_running_or_refused() -> None:
    """The tablet shows its break request until a plan carries the break, or a dead
    letter of that very request refuses it."""
    board = PlanBoard()
    asked = BreakRequestedV1(
        occurred_at=T0, duration_s=1800, latest_start=T0 + timedelta(hours=1), **V
    )
    board.apply(asked)
    b = board.vehicles["bus-1"]
    assert break_view(b, T0)["state"] == "requested"
    board.apply(plan(1))  # an older plan without a break answers nothing
    assert break_view(b, T0)["state"] == "requested"
    start, end = T0 + timedelta(minutes=10), T0 + timedelta(minutes=40)
    board.apply(
        DriverPlanV1(
            occurred_at=T0 + timedelta(seconds=1),
            plan_version=2,
            stops=[],
            break_start=start,
            break_end=end,
            break_location=A,
            **V,
        )
    )
    planned = break_view(b, T0 + timedelta(minutes=1))
    assert (planned["state"], planned["start"], planned["end"]) == ("planned", start, end)
    assert break_view(b, start)["state"] == "running"
    assert view(b, 300, {}, start)["on_break"] is True
    assert break_view(b, end)["state"] is None

    again = BreakRequestedV1(
        occurred_at=end, duration_s=600, latest_start=end + timedelta(minutes=5), **V
    )
    board.apply(again)
    other = DeadLetterV1(
        occurred_at=end,
        source="dispatcher",
        original_topic="drt.vehicle-events.v1",
        original_partition=0,
        original_offset=1,
        payload=encode(asked).decode(),
        reason="an older request",
        error_type="semantic",
    )
    assert board.apply(other) is None  # not the latest request
    refused = other.model_copy(update={"payload": encode(again).decode(), "reason": "no"})
    assert board.apply(refused) == "bus-1"
    assert break_view(b, end) == {
        "state": "refused",
        "start": None,
        "end": None,
        "location": None,
        "reason": "no",
    }


def test_standby_point_shown_only_without_stops() -> None:
    """A plan with no stops and a standby location asks the driver to wait there (with
    navigation); once a stop is planned the stop cards replace it."""
    board = PlanBoard()
    standby = Place(lat=54.3080, lon=9.6650, stop_id="zob")
    board.apply(
        DriverPlanV1(occurred_at=T0, plan_version=1, stops=[], standby_location=standby, **V)
    )
    b = board.vehicles["bus-1"]
    shown = view(b, 300, {"zob": "ZOB Rendsburg"}, T0)["standby"]
    assert shown["name"] == "ZOB Rendsburg"
    assert shown["navigation"]["geo"].startswith("geo:54.308000,9.665000")
    board.apply(plan(2, stop(StopAction.PICKUP, "r1", A, 5), stop(StopAction.DROPOFF, "r1", B, 9)))
    after = view(b, 300, {}, T0)
    assert after["standby"] is None and len(after["stops"]) == 2
    board.apply(plan(3))  # idle again, no standby asked: stay where you are
    assert view(b, 300, {}, T0)["standby"] is None


def test_set_off_time_shown_until_it_has_passed() -> None:
    """A plan that says to wait before setting off for a far pickup shows the time, and
    not once it has passed."""
    board = PlanBoard()
    far = plan(1, stop(StopAction.PICKUP, "r1", A, 60), stop(StopAction.DROPOFF, "r1", B, 70))
    board.apply(far.model_copy(update={"set_off_at": T0 + timedelta(minutes=45)}))
    b = board.vehicles["bus-1"]
    assert view(b, 300, {}, T0)["set_off_at"] == T0 + timedelta(minutes=45)
    assert view(b, 300, {}, T0 + timedelta(minutes=46))["set_off_at"] is None
    board.apply(plan(2, stop(StopAction.PICKUP, "r1", A, 60)))
    assert view(b, 300, {}, T0)["set_off_at"] is None
