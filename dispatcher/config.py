"""Settings from the environment (``DRT_`` prefix, ``__`` for nesting).

Only ``cli.py`` builds a :class:`Settings`; everything else receives it. The
defaults run the local Rendsburg set-up started by ``deploy/``.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from dispatcher.core import Area, CoreConfig
from dispatcher.planning import PlanningConfig
from schemas.topics import TOPIC_BY_ROLE, TOPICS


class KafkaSettings(BaseModel):
    bootstrap_servers: str = "127.0.0.1:9092"
    group_id: str = "drt-dispatcher"
    client_id: str = "drt-dispatcher"
    topic_prefix: str = Field("", description="Prepended to every topic name (test isolation).")
    partitions: int = Field(3, ge=1, description="Partitions of topics the dispatcher creates.")
    replication_factor: int = Field(1, ge=1)
    request_timeout_s: float = 30.0
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None

    def topic(self, role: str) -> str:
        return self.topic_prefix + TOPIC_BY_ROLE[role].default_name

    def topic_names(self) -> dict[str, str]:
        return {t.role: self.topic(t.role) for t in TOPICS}


class DatabaseSettings(BaseModel):
    dsn: SecretStr = SecretStr("postgresql://drt:drt@127.0.0.1:5433/drt")
    db_schema: str = Field("public", description="PostgreSQL schema holding the tables.")
    pool_min: int = 1
    pool_max: int = 5
    timeout_s: float = 10.0


class SolverSettings(BaseModel):
    name: str = Field("ortools", description="ortools or insertion")
    time_limit_s: float = Field(1.0, gt=0)
    seed: int = 0
    workers: int = Field(1, ge=1, description="Solver processes.")


class DispatchSettings(BaseModel):
    batch_window_s: float = Field(2.0, gt=0)
    batch_max_size: int = Field(50, ge=1)
    max_wait_s: int = 1800
    promise_before_s: int = 300
    promise_window_s: int = 900
    ride_alpha: float = 1.5
    ride_beta_s: int = 600
    late_diversion_guard_s: int = 120
    detour_factor: float = 1.35
    speed_kmh: float = 40.0
    graceful_timeout_s: float = 15.0
    service_area: tuple[float, float, float, float] | None = Field(
        (54.15, 54.45, 9.45, 9.85),
        description="lat_min, lat_max, lon_min, lon_max of the service area (None: anywhere)",
    )
    zone: str = "rendsburg"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DRT_", env_nested_delimiter="__", extra="ignore")

    kafka: KafkaSettings = KafkaSettings()
    database: DatabaseSettings = DatabaseSettings()
    solver: SolverSettings = SolverSettings()
    dispatch: DispatchSettings = DispatchSettings()
    metrics_port: int = Field(9464, description="Prometheus metrics port (0: off).")
    log_level: str = "INFO"

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
            ),
            batch_window_s=d.batch_window_s,
            batch_max_size=d.batch_max_size,
            areas=areas,
        )
