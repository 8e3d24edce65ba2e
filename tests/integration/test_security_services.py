"""The dispatcher against a secured Kafka (SASL_SSL, SCRAM-SHA-512) and PostgreSQL (TLS only).

The module starts one broker and one cluster with the deploy scripts in their secured
modes (``DRT_KAFKA_SECURE=1``, ``DRT_PG_TLS=1``) on private ports, with a throwaway CA
and generated passwords under a pytest tmp dir, and stops them afterwards. The
dispatcher gets its credentials the way an operator gives them: the ``*_FILE``
settings of the env files the scripts write.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from dispatcher.chaos import Demand, verify
from dispatcher.config import DatabaseSettings, KafkaSettings, Settings, SolverSettings
from dispatcher.kafka import TransportError, ensure_topics
from dispatcher.store import Store, StoreError
from tests.integration.pipeline_kit import requests, shift

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

REPO = Path(__file__).parents[2]
KAFKA_PORT = int(os.environ.get("DRT_TEST_SECURE_KAFKA_PORT", "19393"))
PG_PORT = int(os.environ.get("DRT_TEST_TLS_PG_PORT", "15444"))
WRONG = "Wrong-Pa55word-0815"


def deploy(script: str, env: dict[str, str]) -> None:
    subprocess.run(["bash", str(REPO / "deploy" / script)], env=env, check=True, timeout=180)


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of an env file the deploy scripts write."""
    pairs = (line.split("=", 1) for line in path.read_text().splitlines())
    return {k: v for k, v in (p for p in pairs if len(p) == 2) if not k.startswith("#")}


@dataclass
class Secured:
    """The secured services: the dispatcher's settings for them and their secrets."""

    var: Path
    pg_dir: Path
    client_env: dict[str, str]  # DRT_KAFKA__* and DRT_DATABASE__* from the env files
    secrets: list[str]  # every password the scripts generated

    def kafka(self, prefix: str, **changes: object) -> KafkaSettings:
        e = self.client_env
        settings = KafkaSettings(
            bootstrap_servers=e["DRT_KAFKA__BOOTSTRAP_SERVERS"],
            security_protocol=e["DRT_KAFKA__SECURITY_PROTOCOL"],
            sasl_mechanism=e["DRT_KAFKA__SASL_MECHANISM"],
            sasl_username=e["DRT_KAFKA__SASL_USERNAME"],
            sasl_password_file=Path(e["DRT_KAFKA__SASL_PASSWORD_FILE"]),
            ssl_cafile=e["DRT_KAFKA__SSL_CAFILE"],
            topic_prefix=f"{prefix}.",
            group_id=f"{prefix}-dispatcher",
            client_id=f"{prefix}-dispatcher",
            partitions=2,
            request_timeout_s=10.0,
        )
        return settings.model_copy(update=changes)

    def database(self, schema: str, **changes: object) -> DatabaseSettings:
        e = self.client_env
        settings = DatabaseSettings(
            dsn=SecretStr(e["DRT_DATABASE__DSN"]),
            password_file=Path(e["DRT_DATABASE__PASSWORD_FILE"]),
            sslmode=e["DRT_DATABASE__SSLMODE"],
            sslrootcert=e["DRT_DATABASE__SSLROOTCERT"],
            db_schema=schema,
            timeout_s=10.0,
        )
        return settings.model_copy(update=changes)

    def serve_env(self, prefix: str, **extra: str) -> dict[str, str]:
        """The environment of ``drt serve``: only the env files' settings and test knobs."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DRT_")}
        env.update(self.client_env)
        env.update(
            DRT_KAFKA__TOPIC_PREFIX=f"{prefix}.",
            DRT_KAFKA__GROUP_ID=f"{prefix}-dispatcher",
            DRT_KAFKA__CLIENT_ID=f"{prefix}-dispatcher",
            DRT_KAFKA__PARTITIONS="2",
            DRT_KAFKA__REQUEST_TIMEOUT_S="10",
            DRT_DATABASE__DB_SCHEMA=prefix.replace("-", "_"),
            DRT_SOLVER__TIME_LIMIT_S="0.5",
            DRT_DISPATCH__BATCH_WINDOW_S="0.5",
            DRT_METRICS_PORT="0",
            DRT_LOG_LEVEL="DEBUG",
        )
        env.update(extra)
        return env

    def service_logs(self) -> str:
        """Everything the broker and PostgreSQL logged so far."""
        files = [*(self.var / "kafka-secure" / "logs").glob("*.log"), self.pg_dir / "postgres.log"]
        return "\n".join(f.read_text(errors="replace") for f in files if f.is_file())


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    var = tmp_path_factory.mktemp("secured")
    # The postgres user must reach the cluster: not under pytest's 0700 tmp dir.
    pg_dir = Path(f"/tmp/drt-test-pg-tls-{PG_PORT}")
    shutil.rmtree(pg_dir, ignore_errors=True)
    env = dict(
        os.environ,
        DRT_VAR_DIR=str(var),
        DRT_KAFKA_SECURE="1",
        DRT_KAFKA_PORT=str(KAFKA_PORT),
        DRT_KAFKA_CONTROLLER_PORT=str(KAFKA_PORT + 1),
        DRT_PG_TLS="1",
        DRT_PG_PORT=str(PG_PORT),
        DRT_PG_DIR=str(pg_dir),
    )
    try:
        deploy("postgres/start.sh", env)  # creates the CA the broker's certificate shares
        deploy("kafka/start.sh", env)
        client_env = read_env_file(var / "kafka-secure.env") | read_env_file(
            var / "postgres-tls.env"
        )
        secrets = [f.read_text().strip() for f in sorted((var / "secrets").iterdir())]
        yield Secured(var, pg_dir, client_env, secrets)
    finally:
        for script in ("kafka/stop.sh", "postgres/stop.sh"):
            try:
                deploy(script, env)
            except (subprocess.SubprocessError, OSError) as exc:
                print(f"could not stop {script}: {exc}")
        shutil.rmtree(pg_dir, ignore_errors=True)


class Serve:
    """``drt serve`` as a process; its output (stdout and stderr) is kept in ``lines``."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.lines: list[str] = []
        self.started = asyncio.Event()
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "dispatcher",
            "serve",
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        while line := await self.process.stdout.readline():
            self.lines.append(line.decode(errors="replace"))
            if "dispatcher started" in self.lines[-1]:
                self.started.set()

    async def wait(self, timeout: float = 60.0) -> int:  # noqa: ASYNC109 - a process deadline
        assert self.process is not None and self._reader is not None
        async with asyncio.timeout(timeout):
            code = await self.process.wait()
            await self._reader
        return code

    def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()

    @property
    def output(self) -> str:
        return "".join(self.lines)


async def test_dispatcher_answers_over_sasl_ssl_and_tls(secured: Secured, topic_prefix: str):
    """``drt serve`` with credentials from files connects to the SASL_SSL broker and the
    TLS-only PostgreSQL, answers every request exactly once, writes its outcomes and
    logs (at DEBUG) none of the passwords; neither do the broker and PostgreSQL."""
    schema = topic_prefix.replace("-", "_")
    settings = Settings(
        kafka=secured.kafka(topic_prefix),
        database=secured.database(schema),
        solver=SolverSettings(time_limit_s=0.5),
        metrics_port=0,
    )
    serve = Serve(secured.serve_env(topic_prefix))
    now = datetime.now(UTC)
    rides = requests(6, seed=11, now=now, prefix="tls")
    try:
        await serve.start()
        async with asyncio.timeout(90):
            await serve.started.wait()
        async with Demand(settings) as demand:
            for vehicle in ("v0", "v1"):
                await demand.send("vehicle_events", shift(vehicle, now))
            for ride in rides:
                await demand.request(ride)
        verdict = await verify(settings, demand.sent, wait_s=60)
        assert serve.process is not None
        serve.process.send_signal(signal.SIGTERM)
        assert await serve.wait() == 0, serve.output[-3000:]
    finally:
        serve.kill()
    assert verdict.ok, (verdict.lost, verdict.duplicate_outcomes, verdict.plan_contradictions)
    assert verdict.answered == verdict.requests == len(rides)
    store = await Store.connect(settings.database)
    try:
        [row] = await store.fetch(
            "SELECT count(*) AS n, bool_and(s.ssl) AS tls FROM outcomes, pg_stat_ssl s"
            " WHERE s.pid = pg_backend_pid()"
        )
    finally:
        await store.close()
    assert row == {"n": len(rides), "tls": True}
    output = serve.output
    assert "dispatcher started" in output and "Traceback" not in output
    logs = output + secured.service_logs()
    for secret in secured.secrets:
        assert secret not in logs


async def test_wrong_passwords_stop_the_start_with_one_clear_line(
    secured: Secured, topic_prefix: str, tmp_path: Path
):
    """A wrong PostgreSQL or Kafka password: ``drt serve`` exits 1 at once with one line
    saying what failed, without a traceback and without any password."""
    wrong = tmp_path / "wrong-password"
    wrong.write_text(WRONG + "\n")
    bad_db = Serve(secured.serve_env(topic_prefix, DRT_DATABASE__PASSWORD_FILE=str(wrong)))
    bad_kafka = Serve(secured.serve_env(topic_prefix, DRT_KAFKA__SASL_PASSWORD_FILE=str(wrong)))
    try:
        await asyncio.gather(bad_db.start(), bad_kafka.start())
        codes = await asyncio.gather(bad_db.wait(), bad_kafka.wait())
    finally:
        bad_db.kill()
        bad_kafka.kill()
    assert list(codes) == [1, 1], (bad_db.output, bad_kafka.output)
    assert (
        "drt serve cannot start: cannot connect to PostgreSQL: InvalidPasswordError: password"
        ' authentication failed for user "drt"' in bad_db.output
    )
    assert "drt serve cannot start: cannot set up topics" in bad_kafka.output
    assert "SaslAuthenticationFailed" in bad_kafka.output  # aiokafka's own error line
    for serve in (bad_db, bad_kafka):
        assert "Traceback" not in serve.output and len(serve.lines) < 15, serve.output
        for secret in [WRONG, *secured.secrets]:
            assert secret not in serve.output
    for secret in [WRONG, *secured.secrets]:
        assert secret not in secured.service_logs()


@pytest.fixture
def other_ca(tmp_path: Path) -> Path:
    """A CA certificate that signed none of our servers."""
    cert = tmp_path / "other-ca.pem"
    key = tmp_path / "other-ca.key"
    command = "openssl req -x509 -newkey rsa:2048 -noenc -days 1 -subj /CN=another-CA"
    subprocess.run(
        [*command.split(), "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True
    )
    return cert


async def test_insecure_clients_are_refused(
    secured: Secured, topic_prefix: str, other_ca: Path, caplog: pytest.LogCaptureFixture
):
    """Plaintext, TLS without SASL, and SASL_SSL without our CA all fail against the
    broker; a PostgreSQL client without TLS is rejected by pg_hba.conf, one with TLS
    but the wrong CA by its own verification. No password reaches the log."""
    caplog.set_level(logging.DEBUG)
    kafka = secured.kafka(topic_prefix, request_timeout_s=5.0)
    for changes in (
        {"security_protocol": "PLAINTEXT", "sasl_mechanism": None},
        {"security_protocol": "SASL_PLAINTEXT"},
        {"security_protocol": "SSL", "sasl_mechanism": None},
        {"ssl_cafile": None},  # the system's CAs do not know the throwaway CA
    ):
        with pytest.raises(TransportError):
            await ensure_topics(kafka.model_copy(update=changes))
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
    schema = topic_prefix.replace("-", "_")
    with pytest.raises(StoreError, match="no encryption"):
        await Store.connect(secured.database(schema, sslmode="disable"))
    with pytest.raises(StoreError, match="SSLCertVerificationError"):
        await Store.connect(secured.database(schema, sslrootcert=str(other_ca)))
    for secret in secured.secrets:
        assert secret not in caplog.text
