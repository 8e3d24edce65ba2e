"""Prometheus metrics in one container, so each test can use a fresh registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60)
SOLVER_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200)


class Metrics:
    """Every metric the dispatcher exports. Labels are bounded sets, never ids."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events_received = Counter(
            "drt_events_received_total", "Input events accepted, by type.", ["type"], registry=r
        )
        self.requests_answered = Counter(
            "drt_requests_answered_total",
            "Ride requests answered, by outcome and rejection reason.",
            ["outcome", "reason"],
            registry=r,
        )
        self.rides_reassigned = Counter(
            "drt_rides_reassigned_total",
            "Confirmed rides offered again on another vehicle (a later plan serves them"
            " better, or their vehicle went out of service).",
            registry=r,
        )
        self.request_to_offer = Histogram(
            "drt_request_to_answer_seconds",
            "Time from receiving a request to publishing its answer.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "drt_batch_size_requests", "New requests per batch.", buckets=BATCH_BUCKETS, registry=r
        )
        self.solver_duration = Histogram(
            "drt_solver_duration_seconds",
            "Wall time of a solve, by solver.",
            ["solver"],
            buckets=SOLVER_BUCKETS,
            registry=r,
        )
        self.solver_time_limit_hits = Counter(
            "drt_solver_time_limit_hits_total", "Solves stopped by their time limit.", registry=r
        )
        self.solver_fallbacks = Counter(
            "drt_solver_fallbacks_total",
            "Solves that fell back to insertion, by cause.",
            ["cause"],
            registry=r,
        )
        self.solver_objective = Gauge(
            "drt_solver_objective", "Objective value of the last plan.", registry=r
        )
        self.open_requests = Gauge(
            "drt_open_requests", "Rides not yet finished, by status.", ["status"], registry=r
        )
        self.vehicles = Gauge("drt_vehicles", "Vehicles by state.", ["state"], registry=r)
        self.dead_letters = Counter(
            "drt_dead_letters_total",
            "Messages sent to the dead-letter topic, by error type.",
            ["error_type"],
            registry=r,
        )
        self.duplicates = Counter(
            "drt_duplicate_events_total", "Input events skipped as already processed.", registry=r
        )
        self.consumer_lag = Gauge(
            "drt_kafka_consumer_lag_messages",
            "Messages not yet consumed per partition.",
            ["topic", "partition"],
            registry=r,
        )
        self.pg_pool_in_use = Gauge(
            "drt_postgres_pool_connections_in_use", "PostgreSQL connections in use.", registry=r
        )
        self.healthy = Gauge(
            "drt_dispatcher_healthy", "1 when Kafka and PostgreSQL are reachable.", registry=r
        )
        self.cycle_errors = Counter(
            "drt_cycle_errors_total", "Dispatcher cycles failed, by cause.", ["cause"], registry=r
        )
        self.pickup_wait = Histogram(
            "drt_pickup_wait_seconds",
            "From the earliest requested pickup to boarding.",
            buckets=(60, 120, 300, 600, 900, 1200, 1800, 2400, 3600),
            registry=r,
        )
        self.promise_deviation = Histogram(
            "drt_pickup_promise_deviation_seconds",
            "Boarding time minus the end of the promised pickup window (<= 0 kept).",
            buckets=(-900, -600, -300, -120, -60, 0, 60, 120, 300, 600, 1200),
            registry=r,
        )
        self.promises = Counter(
            "drt_pickup_promises_total",
            "Pickups by whether the promised window was kept.",
            ["result"],
            registry=r,
        )
        self.detour = Histogram(
            "drt_ride_detour_ratio",
            "Ride time divided by the direct travel time.",
            buckets=(1, 1.1, 1.25, 1.5, 1.75, 2, 2.5, 3),
            registry=r,
        )
        self.rides_completed = Counter(
            "drt_rides_completed_total",
            "Completed rides, by whether they shared the vehicle with another ride.",
            ["pooled"],
            registry=r,
        )
        self.passengers_onboard = Gauge(
            "drt_passengers_onboard", "Passengers (seats) on board now.", registry=r
        )
        self.seats_on_shift = Gauge(
            "drt_seats_on_shift", "Seats of vehicles on shift now.", registry=r
        )
        self.vehicle_distance = Counter(
            "drt_vehicle_distance_meters_total",
            "Distance driven by vehicles (from position reports), by occupancy.",
            ["occupied"],
            registry=r,
        )
        self.last_cycle = Gauge(
            "drt_last_cycle_timestamp_seconds", "When the last dispatcher cycle ended.", registry=r
        )
        self.outbox_unpublished = Gauge(
            "drt_outbox_unpublished_messages", "Outgoing messages not yet acknowledged.", registry=r
        )
        self._zero_labels()

    def _zero_labels(self) -> None:
        """Create every bounded label combination at 0, so rate() sees the first event."""
        for error_type in ("decode", "validation", "unknown_type", "semantic"):
            self.dead_letters.labels(error_type)
        for cause in ("timeout", "error", "no_solution"):
            self.solver_fallbacks.labels(cause)
        for cause in ("StoreError", "TransportError", "OSError"):
            self.cycle_errors.labels(cause)
        self.requests_answered.labels("offered", "")
        for reason in (
            "no_vehicle", "outside_area", "outside_hours", "capacity", "invalid", "duplicate"
        ):  # fmt: skip
            self.requests_answered.labels("rejected", reason)
        for result in ("kept", "broken"):
            self.promises.labels(result)
        for pooled in ("true", "false"):
            self.rides_completed.labels(pooled)
        for occupied in ("true", "false"):
            self.vehicle_distance.labels(occupied)
