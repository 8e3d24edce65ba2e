"""The shipped Prometheus configuration and alert rules, checked by promtool."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from dispatcher.config import Settings
from tests.unit.deploy.kit import (
    PROMETHEUS_DIR,
    PROPOSED_METRICS,
    SPARSE_METRICS,
    alert_rules,
    exported_metrics,
    metrics_of,
    require_binary,
)

HINT = "install it with `bash deploy/prometheus/install.sh` (Debian package prometheus)"


@pytest.fixture(scope="module")
def promtool() -> str:
    return require_binary("promtool", HINT)


def run(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args],
        cwd=PROMETHEUS_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_config(promtool: str) -> None:
    """promtool accepts prometheus.yml, and with it the rule files it names."""
    result = run(promtool, "check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "alerts.yml" in result.stdout + result.stderr


def test_check_rules(promtool: str) -> None:
    """promtool accepts every alert rule."""
    result = run(promtool, "check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests(promtool: str) -> None:
    """The alerts fire on the synthetic series of alerts_test.yml, and only then."""
    result = run(promtool, "test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_the_issue_asks_for() -> None:
    """Down/absent, lag, rejections, broken promises, time limit and dead letters alert."""
    names = {rule["alert"] for rule in alert_rules()}
    assert {
        "DrtDispatcherDown",
        "DrtDispatcherAbsent",
        "DrtConsumerLagGrowing",
        "DrtRejectionRateHigh",
        "DrtPickupPromisesBroken",
        "DrtSolverTimeLimitMostly",
        "DrtDeadLetters",
    } <= names


def test_rules_have_severity_and_summary() -> None:
    """Every alert can be routed (severity) and read (summary, description)."""
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["description"], rule["alert"]


def test_rules_use_known_metrics() -> None:
    """Rules read only metrics the dispatcher exports or the README proposes."""
    known = exported_metrics() | PROPOSED_METRICS | {"up"}
    for rule in alert_rules():
        unknown = metrics_of(rule["expr"]) - known
        assert not unknown, f"{rule['alert']} uses unknown metrics {unknown}"


def test_proposed_and_sparse_lists_are_current() -> None:
    """A proposed metric that got exported must leave PROPOSED_METRICS (and be required)."""
    exported = exported_metrics()
    assert not (PROPOSED_METRICS & exported), PROPOSED_METRICS & exported
    assert exported >= SPARSE_METRICS


def test_scrape_job_targets_metrics_port() -> None:
    """The dispatcher job scrapes DRT_METRICS_PORT's default, 9464."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "drt-dispatcher")
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    port = Settings.model_fields["metrics_port"].default
    assert targets and all(t.endswith(f":{port}") for t in targets), targets
