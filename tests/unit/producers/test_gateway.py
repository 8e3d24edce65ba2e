"""Gateway pieces without I/O: tokens and the ride book."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from producers.gateway.auth import Role, TokenError, TokenSigner
from producers.gateway.stops import StopIndex
from producers.gateway.tracking import DECLINE_REASON, RideBook, StoredRide
from schemas.dispatch import DriverPlanV1, PlannedStop, RideOfferedV1, StopAction
from schemas.envelope import Place
from schemas.passenger import RideCancelledV1, RideRequestedV1
from schemas.vehicle import ArrivedAtStopV1, PassengerAlightedV1, PassengerBoardedV1

T0 = datetime(2025, 5, 6, 8, 0, tzinfo=UTC)
A = Place(lat=54.3157, lon=9.6778, stop_id="a")
B = Place(lat=54.3023, lon=9.6711, stop_id="b")


def test_token_round_trip_and_tampering() -> None:
    """A token verifies with its secret only, until it expires."""
    signer = TokenSigner(b"secret", ttl_s=60)
    token = signer.issue(Role.DRIVER, "d1", now=1000, vehicle_id="bus-1")
    p = signer.verify(token, now=1030)
    assert (p.role, p.subject, p.vehicle_id) == (Role.DRIVER, "d1", "bus-1")
    with pytest.raises(TokenError, match="expired"):
        signer.verify(token, now=1061)
    with pytest.raises(TokenError, match="signature"):
        TokenSigner(b"other", ttl_s=60).verify(token, now=1030)
    _, _, mac = token.partition(".")
    forged = TokenSigner(b"x", 60).issue(Role.OPERATOR, "d1", now=1000).partition(".")[0]
    with pytest.raises(TokenError):
        signer.verify(f"{forged}.{mac}", now=1030)


def requested(rid: str = "r1") -> RideRequestedV1:
    return RideRequestedV1(
        occurred_at=T0,
        source="t",
        request_id=rid,
        passenger_ref="p1",
        zone="rendsburg",
        origin=A,
        destination=B,
    )


def offered(rid: str = "r1", vehicle: str = "bus-1") -> RideOfferedV1:
    return RideOfferedV1(
        occurred_at=T0,
        source="t",
        request_id=rid,
        zone="rendsburg",
        vehicle_id=vehicle,
        pickup=A,
        dropoff=B,
        pickup_window_start=T0,
        pickup_window_end=T0 + timedelta(minutes=15),
        pickup_eta=T0 + timedelta(minutes=5),
        dropoff_eta=T0 + timedelta(minutes=12),
        latest_dropoff=T0 + timedelta(minutes=30),
    )


def plan(version: int, *stops: tuple[StopAction, int]) -> DriverPlanV1:
    return DriverPlanV1(
        occurred_at=T0,
        source="t",
        vehicle_id="bus-1",
        zone="rendsburg",
        plan_version=version,
        stops=[
            PlannedStop(action=a, request_id="r1", location=A, eta=T0 + timedelta(minutes=m))
            for a, m in stops
        ],
    )


def test_ride_book_reports_each_step_in_order() -> None:
    """Offer, ETA change, arriving, at pickup, boarded, at destination, arrived."""
    book = RideBook()
    book.apply(requested())
    book.apply(offered())
    book.apply(plan(1, (StopAction.PICKUP, 5), (StopAction.DROPOFF, 12)))  # same ETAs
    book.apply(plan(2, (StopAction.PICKUP, 8), (StopAction.DROPOFF, 15)))
    vehicle = {"occurred_at": T0, "source": "t", "vehicle_id": "bus-1", "zone": "rendsburg"}
    book.apply(ArrivedAtStopV1(**vehicle, position=A, request_ids=["r1"]))
    boarded = PassengerBoardedV1(**vehicle, request_id="r1")
    book.apply(boarded)
    assert book.apply(boarded) == set()  # a redelivery changes nothing
    book.apply(ArrivedAtStopV1(**vehicle, position=B, request_ids=["r1"]))
    book.apply(PassengerAlightedV1(**vehicle, request_id="r1"))
    book.apply(offered())  # late and out of order: no step back
    ride = book.rides["r1"]
    assert [u.kind for u in ride.updates] == [
        "requested",
        "offered",
        "vehicle_assigned",
        "vehicle_arriving",
        "eta",
        "vehicle_at_pickup",
        "boarded",
        "vehicle_at_destination",
        "arrived",
    ]
    assert ride.status == "completed"
    assert [u.seq for u in ride.updates] == list(range(1, 10))


def test_decline_is_a_cancellation_with_its_own_status() -> None:
    """The gateway's decline reason marks the ride declined, not cancelled."""
    book = RideBook()
    book.apply(requested())
    book.apply(offered())
    book.apply(
        RideCancelledV1(
            occurred_at=T0, source="t", request_id="r1", zone="rendsburg", reason=DECLINE_REASON
        )
    )
    assert book.rides["r1"].status == "declined"
    assert book.rides_of("p1")[0].request_id == "r1"
    assert book.rides_of("p2") == []


def test_restored_ride_continues_with_the_topics() -> None:
    """A ride seeded from the dispatcher's tables (on board, confirmed, a later ETA) is
    not changed by a replay of what the tables already reflect, then follows new events."""
    book = RideBook()
    request, offer = requested(), offered()
    stored = StoredRide(
        request=request,
        status="onboard",
        offers=[offer],
        vehicle_id="bus-1",
        pickup_eta=T0 + timedelta(minutes=5),
        dropoff_eta=T0 + timedelta(minutes=14),
        picked_up_at=T0 + timedelta(minutes=6),
        updated_at=T0 + timedelta(minutes=6),
        confirmed_at=T0 + timedelta(minutes=1),
    )
    assert book.restore(stored)
    assert not book.restore(stored)
    ride = book.rides["r1"]
    assert ride.status == "boarded"
    assert [u.kind for u in ride.updates] == [
        "requested",
        "offered",
        "vehicle_assigned",
        "confirmed",
        "eta",
        "boarded",
    ]
    assert ride.dropoff_eta == T0 + timedelta(minutes=14)
    assert [r.request_id for r in book.rides_of("p1")] == ["r1"]

    def arrived(minutes: int) -> ArrivedAtStopV1:
        return ArrivedAtStopV1(
            occurred_at=T0 + timedelta(minutes=minutes),
            source="t",
            vehicle_id="bus-1",
            zone="rendsburg",
            position=A,
            request_ids=["r1"],
        )

    boarded = PassengerBoardedV1(
        occurred_at=T0 + timedelta(minutes=6),
        source="t",
        vehicle_id="bus-1",
        zone="rendsburg",
        request_id="r1",
    )
    for replayed in (request, offer, arrived(5), boarded):
        assert book.apply(replayed) == set()
    assert book.apply(arrived(14)) == {"r1"}
    assert ride.updates[-1].kind == "vehicle_at_destination"
    alighted = PassengerAlightedV1(
        occurred_at=T0 + timedelta(minutes=15),
        source="t",
        vehicle_id="bus-1",
        zone="rendsburg",
        request_id="r1",
    )
    assert book.apply(alighted) == {"r1"}
    assert (ride.status, ride.updates[-1].kind) == ("completed", "arrived")


def test_nearby_stops_nearest_first() -> None:
    """Stops within the radius, sorted by distance, limited."""
    index = StopIndex.for_scenario("rendsburg")
    found = index.nearby(54.315687, 9.677817, radius_m=1000, limit=3)
    assert found[0][0].id == "vs-buedelsdorf-01"
    assert found[0][1] == 0
    assert [d for _, d in found] == sorted(d for _, d in found)
    assert len(found) <= 3
