"""Settings from the environment (``DRT_`` prefix, ``__`` for nesting).

Only ``cli.py`` builds a :class:`Settings`; everything else receives it. The
defaults run the local Rendsburg set-up started by ``deploy/``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from dispatcher.anticipation import AnticipationConfig
from dispatcher.core import Area, CoreConfig, VirtualStop
from dispatcher.geo import CrowFliesTravel, TravelModel
from dispatcher.planning import PlanningConfig
from dispatcher.rebalancing import RebalancingConfig
from dispatcher.travel import MatrixTravel, OsrmTravel
from schemas.topics import TOPIC_BY_ROLE, TOPICS


class KafkaSettings(BaseModel):
    bootstrap_servers: str = Field("127.0.0.1:9092", description="Kafka brokers, comma-separated.")
    group_id: str = Field("drt-dispatcher", description="Consumer group of the dispatchers.")
    client_id: str = Field("drt-dispatcher", description="Client id; also the events' source.")
    topic_prefix: str = Field("", description="Prepended to every topic name (test isolation).")
    partitions: int = Field(3, ge=1, description="Partitions of topics the dispatcher creates.")
    replication_factor: int = Field(1, ge=1, description="Replication of created topics.")
    request_timeout_s: float = Field(30.0, description="Timeout of every Kafka request.")
    security_protocol: str = Field(
        "PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    )
    sasl_mechanism: str | None = Field(None, description="e.g. SCRAM-SHA-512.")
    sasl_username: str | None = Field(None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(None, description="SASL password (secret).")
    sasl_password_file: Path | None = Field(
        None, description="File holding the SASL password (wins over SASL_PASSWORD)."
    )
    ssl_cafile: str | None = Field(None, description="CA bundle to verify the brokers (TLS).")
    ssl_certfile: str | None = Field(None, description="Client certificate (mutual TLS).")
    ssl_keyfile: str | None = Field(None, description="Client private key (mutual TLS).")
    ssl_password: SecretStr | None = Field(None, description="Password of the key (secret).")
    session_timeout_s: float = Field(
        8.0, description="Consumer-group session timeout: how fast a dead instance's zones move."
    )
    heartbeat_interval_s: float = Field(2.0, description="Consumer-group heartbeat interval.")
    transaction_timeout_s: float = Field(
        15.0, description="The broker aborts a transaction left open this long."
    )
    max_poll_records: int = Field(
        200, ge=1, description="Input records per cycle at most (back-pressure)."
    )
    max_partition_fetch_bytes: int = Field(
        1_048_576, description="Bytes fetched per partition and request at most."
    )

    def sasl_password_value(self) -> str | None:
        """The SASL password from its file or the environment, never logged."""
        if self.sasl_password_file is not None:
            return self.sasl_password_file.read_text().strip()
        return self.sasl_password.get_secret_value() if self.sasl_password else None

    def topic(self, role: str) -> str:
        return self.topic_prefix + TOPIC_BY_ROLE[role].default_name

    def topic_names(self) -> dict[str, str]:
        return {t.role: self.topic(t.role) for t in TOPICS}


class DatabaseSettings(BaseModel):
    dsn: SecretStr = Field(
        SecretStr("postgresql://drt:drt@127.0.0.1:5433/drt"),
        description="PostgreSQL connection URL (secret; never logged).",
    )
    db_schema: str = Field("public", description="PostgreSQL schema holding the tables.")
    pool_min: int = Field(1, description="Minimum pooled connections.")
    pool_max: int = Field(5, description="Maximum pooled connections.")
    timeout_s: float = Field(10.0, description="Connect and statement timeout.")
    dsn_file: Path | None = Field(
        None, description="File holding the connection URL (wins over DSN; for secrets)."
    )
    password_file: Path | None = Field(
        None, description="File holding the password, replacing the one in the URL."
    )
    sslmode: str | None = Field(
        None, description="disable, prefer, require, verify-ca or verify-full."
    )
    sslrootcert: str | None = Field(None, description="CA file to verify the server (TLS).")

    def dsn_value(self) -> str:
        """The connection URL from its file or the environment, never logged."""
        if self.dsn_file is not None:
            return self.dsn_file.read_text().strip()
        return self.dsn.get_secret_value()

    def password_value(self) -> str | None:
        return self.password_file.read_text().strip() if self.password_file else None


class RetentionSettings(BaseModel):
    days: int = Field(
        90, ge=1, description="Personal data of finished rides is anonymised after this many days."
    )


class SolverSettings(BaseModel):
    name: str = Field("ortools", description="ortools or insertion")
    time_limit_s: float = Field(1.0, gt=0, description="Solver seconds per batch.")
    seed: int = Field(0, description="Solver seed (solves are deterministic per seed).")
    workers: int = Field(1, ge=1, description="Solver processes.")


class DispatchSettings(BaseModel):
    batch_window_s: float = Field(
        2.0, gt=0, description="Seconds from the first pending request to its batch."
    )
    batch_max_size: int = Field(50, ge=1, description="A batch this large is solved at once.")
    max_wait_s: int = Field(1800, description="Latest pickup after an immediate booking.")
    promise_before_s: int = Field(
        300, description="Promised pickup window opens this long before the ETA."
    )
    promise_window_s: int = Field(900, description="Length of the promised pickup window.")
    ride_alpha: float = Field(1.5, description="Max ride time = alpha * direct time + beta.")
    ride_beta_s: int = Field(600, description="The beta of the maximum ride time, seconds.")
    late_diversion_guard_s: int = Field(
        120, description="A next stop this close (ETA) is not changed any more."
    )
    promise_buffer_s: int = Field(
        120,
        ge=0,
        description="New plans keep this much of a promised pickup window's end and latest"
        " drop-off in reserve against delays (a stop planned later keeps its time).",
    )
    detour_factor: float = Field(1.35, description="Road distance / straight-line distance.")
    speed_kmh: float = Field(40.0, description="Average road speed for travel times.")
    graceful_timeout_s: float = Field(
        15.0, description="On SIGTERM, time to finish the batch in flight."
    )
    service_area: tuple[float, float, float, float] | None = Field(
        (54.15, 54.45, 9.45, 9.85),
        description="lat_min, lat_max, lon_min, lon_max of the service area (None: anywhere)",
    )
    zone: str = Field("rendsburg", description="Service zone id (the partition key).")
    mode: str = Field(
        "batch", description="batch (solve batches) or immediate (insert each request at once)."
    )
    reopt_every_s: float = Field(
        0.0, ge=0, description="Re-optimise all open rides this often, if changed (0: never)."
    )
    insertion_wait_cost: float = Field(
        3.0,
        ge=0,
        description="Immediate mode: each second a new passenger would arrive later than"
        " the earliest possible costs this many metres of driving when choosing where to"
        " insert the ride (0: the place adding the least distance).",
    )
    set_off_margin_s: int | None = Field(
        None,
        ge=0,
        description="An empty vehicle whose first stop is a pickup further ahead than the"
        " drive waits where it is and sets off to arrive this many seconds before the ETA"
        " (driver.plan set_off_at); None: it drives to the next stop at once.",
    )
    reassign_lead_s: int | None = Field(
        None,
        ge=0,
        description="A confirmed ride may move to another vehicle while its promised pickup"
        " window opens more than this many seconds from now; its passenger is told the new"
        " vehicle, the promised window stays (None: a ride keeps the vehicle it was offered).",
    )
    no_show_wait_s: float = Field(
        300.0, ge=0, description="A no-show is accepted only after this wait at the pickup."
    )
    stops_scenario: str | None = Field(
        None, description="Scenario whose stops requests snap to (None: door to door)."
    )
    walk_max_m: float = Field(500.0, ge=0, description="Farthest walk to a snapped stop.")
    service_hours: tuple[float, float] | None = Field(
        None, description="Local service hours start, end (end may exceed 24; None: always)."
    )
    timezone: str = Field("Europe/Berlin", description="Time zone of the service hours.")
    travel: str = Field("crow", description="Travel times: crow, area, matrix or osrm.")
    travel_matrix_file: str | None = Field(
        None, description="JSON matrix file for travel=matrix (points, durations_s, distances_m)."
    )
    osrm_url: str | None = Field(
        None, description="OSRM server for travel=osrm, e.g. http://osrm:5000."
    )
    osrm_timeout_s: float = Field(5.0, gt=0, description="Timeout of one OSRM table request.")
    rebalance_points: int = Field(
        0,
        ge=0,
        description="Standby points idle vehicles are sent to, from the expected demand of"
        " the scenario (STOPS_SCENARIO, else rendsburg); 0: idle vehicles stay where they are.",
    )
    rebalance_idle_s: float = Field(
        300.0, ge=0, description="A vehicle idle this long is sent to a standby point."
    )
    rebalance_max_distance_m: float = Field(
        12_000.0, ge=0, description="Farthest (straight line) a vehicle is sent to stand by."
    )
    anticipate_s: float = Field(
        0.0,
        ge=0,
        description="Batch mode: requests expected this many seconds ahead are sampled into"
        " every batch problem, from the demand of the scenario (STOPS_SCENARIO, else"
        " rendsburg) at the level of the requests seen lately; 0: off.",
    )
    anticipation_prize_m: int = Field(
        10_000, ge=0, description="What serving a sampled request is worth, in metres driven."
    )


class AuthSettings(BaseModel):
    token_secret: SecretStr = Field(
        SecretStr("drt-local-dev-secret-change-me"),
        description="HMAC key of gateway and driver-app tokens (secret; set in production).",
    )
    token_ttl_s: int = Field(12 * 3600, ge=60, description="Lifetime of an issued token, seconds.")
    operator_password: SecretStr = Field(
        SecretStr("operator"), description="Password of the phone desk's operator login (secret)."
    )
    driver_pin: SecretStr = Field(
        SecretStr("1234"), description="PIN a driver enters to log in to a vehicle (secret)."
    )


class GatewaySettings(BaseModel):
    host: str = Field("127.0.0.1", description="Address the passenger gateway listens on.")
    port: int = Field(8080, description="Port of the passenger gateway (drt gateway).")
    scenario: str = Field("rendsburg", description="Scenario whose virtual stops are served.")
    nearby_radius_m: int = Field(1500, ge=1, description="Default radius of nearby stops.")
    idempotency_ttl_s: int = Field(
        24 * 3600, ge=1, description="How long a booking's Idempotency-Key is remembered."
    )
    replay_hours: float = Field(
        24.0,
        gt=0,
        description="At start the gateway reads its topics back this many hours "
        "(by record timestamp), not from the beginning.",
    )


class DriverAppSettings(BaseModel):
    host: str = Field("127.0.0.1", description="Address the driver tablet app listens on.")
    port: int = Field(8081, description="Port of the driver tablet app (drt driver).")
    no_show_wait_s: int = Field(
        300, ge=0, description="Wait at a pickup (from arrival or window start) before no-show."
    )
    shift_hours: float = Field(8.0, gt=0, description="Default shift length a tablet offers.")
    break_minutes: int = Field(
        30, ge=1, le=240, description="Length of the break the tablet's break button asks for."
    )
    break_within_minutes: int = Field(
        60,
        ge=0,
        le=600,
        description="The break must start within this many minutes (as soon as the "
        "promises to passengers allow).",
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DRT_", env_nested_delimiter="__", extra="ignore")

    kafka: KafkaSettings = KafkaSettings()
    database: DatabaseSettings = DatabaseSettings()
    solver: SolverSettings = SolverSettings()
    dispatch: DispatchSettings = DispatchSettings()
    retention: RetentionSettings = RetentionSettings()
    auth: AuthSettings = AuthSettings()
    gateway: GatewaySettings = GatewaySettings()
    driver: DriverAppSettings = DriverAppSettings()
    metrics_port: int = Field(9464, description="Prometheus metrics port (0: off).")
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR.")

    def core_config(self) -> CoreConfig:
        d = self.dispatch
        areas = {}
        if d.service_area is not None:
            areas[d.zone] = Area(*d.service_area)
        return CoreConfig(
            planning=PlanningConfig(
                max_wait_s=d.max_wait_s,
                promise_before_s=d.promise_before_s,
                promise_window_s=d.promise_window_s,
                ride_alpha=d.ride_alpha,
                ride_beta_s=d.ride_beta_s,
                late_diversion_guard_s=d.late_diversion_guard_s,
                promise_buffer_s=d.promise_buffer_s,
                reassign_lead_s=d.reassign_lead_s,
                set_off_margin_s=d.set_off_margin_s,
            ),
            batch_window_s=d.batch_window_s,
            batch_max_size=d.batch_max_size,
            areas=areas,
            mode=d.mode,
            reopt_every_s=d.reopt_every_s,
            insertion_wait_cost=d.insertion_wait_cost,
            no_show_wait_s=d.no_show_wait_s,
            stops=self._stops(),
            walk_max_m=d.walk_max_m,
            service_hours=d.service_hours,
            timezone=d.timezone,
            rebalancing=self._rebalancing(),
            anticipation=self._anticipation(),
        )

    def _anticipation(self) -> AnticipationConfig:
        d = self.dispatch
        if d.anticipate_s <= 0:
            return AnticipationConfig()
        from dispatcher.simulation import scenario_forecast  # noqa: PLC0415
        from producers.scenario import load_scenario  # noqa: PLC0415

        return AnticipationConfig(
            forecast=scenario_forecast(load_scenario(d.stops_scenario or "rendsburg")),
            horizon_s=d.anticipate_s,
            prize_m=d.anticipation_prize_m,
            seed=self.solver.seed,
        )

    def _rebalancing(self) -> RebalancingConfig:
        d = self.dispatch
        if d.rebalance_points <= 0:
            return RebalancingConfig()
        from dispatcher.simulation import scenario_rebalancing  # noqa: PLC0415
        from producers.scenario import load_scenario  # noqa: PLC0415

        return scenario_rebalancing(
            load_scenario(d.stops_scenario or "rendsburg"),
            d.rebalance_points,
            idle_s=d.rebalance_idle_s,
            max_distance_m=d.rebalance_max_distance_m,
        )

    def _stops(self) -> tuple[VirtualStop, ...]:
        if self.dispatch.stops_scenario is None:
            return ()
        from dispatcher.simulation import scenario_stops  # noqa: PLC0415
        from producers.scenario import load_scenario  # noqa: PLC0415

        return scenario_stops(load_scenario(self.dispatch.stops_scenario))

    def travel_model(self) -> TravelModel:
        """The configured travel-time provider (``DRT_DISPATCH__TRAVEL``)."""
        d = self.dispatch
        crow = CrowFliesTravel(detour_factor=d.detour_factor, speed_kmh=d.speed_kmh)
        if d.travel == "crow":
            return crow
        if d.travel == "area":
            from producers.scenario import load_scenario  # noqa: PLC0415

            return load_scenario(d.stops_scenario or "rendsburg").travel()
        if d.travel == "matrix" and d.travel_matrix_file:
            return MatrixTravel.from_file(d.travel_matrix_file, fallback=crow)
        if d.travel == "osrm" and d.osrm_url:
            return OsrmTravel(d.osrm_url, timeout_s=d.osrm_timeout_s, fallback=crow)
        raise ValueError(f"travel {d.travel!r} not understood or missing its file/url")


def environment_variables() -> list[tuple[str, str, str]]:
    """``(NAME, default, description)`` for every setting, for the README."""
    rows: list[tuple[str, str, str]] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            annotation = info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                walk(annotation, f"{prefix}{name.upper()}__")
                continue
            default = info.get_default(call_default_factory=True)
            if isinstance(default, SecretStr):
                default = "(secret)"
            rows.append((f"{prefix}{name.upper()}", str(default), info.description or ""))

    walk(Settings, "DRT_")
    return rows


SETTINGS_BEGIN = (
    "<!-- settings-table: generated from dispatcher.config; `drt docs settings --write` -->"
)
SETTINGS_END = "<!-- /settings-table -->"


def settings_markdown() -> str:
    """The Markdown table of every environment variable."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [
        f"| `{name}` | `{default}` | {desc} |" for name, default, desc in environment_variables()
    ]
    return "\n".join(rows)


def with_settings_table(text: str) -> str:
    """``text`` with the block between the settings-table markers regenerated."""
    start = text.index(SETTINGS_BEGIN) + len(SETTINGS_BEGIN)
    end = text.index(SETTINGS_END, start)
    return text[:start] + "\n" + settings_markdown() + "\n" + text[end:]
