"""The Compose stack, the Kubernetes manifests and the Dockerfile: they parse, every file
they reference exists, every DRT_ variable is a real setting, images and ports agree."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from dispatcher.config import Settings, environment_variables
from tests.unit.deploy.kit import COMPOSE_FILE, K8S_DIR, README, REPO

SETTINGS = {name for name, _, _ in environment_variables()}
METRICS_PORT = Settings.model_fields["metrics_port"].default
IMAGE = "drt-dispatch:0.1.0"
_INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}")


def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return doc


def k8s_docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S_DIR.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d)
    return docs


def k8s(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        d
        for d in k8s_docs()
        if d["kind"] == kind and name in (None, d.get("metadata", {}).get("name"))
    ]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


def interpolate(value: object) -> str:
    """Compose's ``${VAR:-default}``, with every variable unset."""
    return _INTERPOLATION.sub(lambda m: m.group(2) or "", str(value))


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in [n for n in os.environ if n.startswith("DRT_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


# -- Compose -------------------------------------------------------------------------------


def test_compose_services_and_images() -> None:
    """Kafka (apache/kafka, KRaft), PostgreSQL, Prometheus, Grafana, dispatcher, simulator."""
    services = compose()["services"]
    assert set(services) == {
        "kafka",
        "postgres",
        "prometheus",
        "grafana",
        "dispatcher",
        "simulator",
    }
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["dispatcher"]["image"] == IMAGE
    assert services["simulator"]["image"] == IMAGE
    for name, service in services.items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin {image}"


def test_compose_healthchecks_and_volumes() -> None:
    """Every long-running service has a health check; named volumes are declared."""
    doc = compose()
    for name, service in doc["services"].items():
        if name != "simulator":
            assert service["healthcheck"]["test"], name
        for condition in (service.get("depends_on") or {}).values():
            assert condition["condition"] in {"service_healthy", "service_started"}
    for name in ("kafka", "postgres", "prometheus", "grafana"):
        volumes = doc["services"][name]["volumes"]
        named = [v.split(":")[0] for v in volumes if not v.startswith((".", "/"))]
        assert named, f"{name} keeps no data in a volume"
        assert set(named) <= set(doc["volumes"]), name


def test_compose_referenced_files_exist() -> None:
    """Bind mounts, the build context and the Dockerfile exist in the repository."""
    base = COMPOSE_FILE.parent
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (base / source).exists(), f"{name}: {source}"
        if "build" in service:
            context = (base / service["build"]["context"]).resolve()
            assert context == REPO
            assert (context / service["build"]["dockerfile"]).is_file()


def test_compose_env_vars_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every DRT_ variable of the dispatcher and simulator is a setting and parses."""
    for name in ("dispatcher", "simulator"):
        env = {k: interpolate(v) for k, v in compose()["services"][name]["environment"].items()}
        drt = {k: v for k, v in env.items() if k.startswith("DRT_")}
        assert set(drt) <= SETTINGS, set(drt) - SETTINGS
        settings = settings_from(drt, monkeypatch)
        assert settings.kafka.bootstrap_servers == "kafka:9092"
        assert "@postgres:5432/" in settings.database.dsn.get_secret_value()


def test_compose_ports_consistent() -> None:
    """The dispatcher publishes its metrics port; Prometheus scrapes that port; Kafka's
    internal listener is the dispatcher's bootstrap address."""
    services = compose()["services"]
    dispatcher = services["dispatcher"]
    port = int(dispatcher["environment"]["DRT_METRICS_PORT"])
    assert port == METRICS_PORT
    assert any(p.endswith(f":{port}:{port}") for p in dispatcher["ports"])
    prometheus = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "drt-dispatcher")
    assert job["static_configs"][0]["targets"] == [f"dispatcher:{port}"]
    kafka = services["kafka"]["environment"]
    assert "PLAINTEXT://kafka:9092" in kafka["KAFKA_ADVERTISED_LISTENERS"]
    assert f"http://127.0.0.1:{port}/metrics" in " ".join(dispatcher["healthcheck"]["test"])


# -- Kubernetes ------------------------------------------------------------------------------


def test_k8s_manifests_parse() -> None:
    """Every manifest parses and the kustomization lists exactly the resource files."""
    kinds = {d["kind"] for d in k8s_docs()}
    assert {"Deployment", "Service", "ConfigMap", "Secret", "Kustomization"} <= kinds
    kustomization = k8s("Kustomization")
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in K8S_DIR.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


def test_k8s_config_is_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """ConfigMap and Secret hold only real DRT_ settings, and together they parse; the DSN
    is in the Secret only."""
    config = k8s("ConfigMap", "drt-dispatcher-config")["data"]
    secret = k8s("Secret", "drt-dispatcher-db")["stringData"]
    assert set(config) <= SETTINGS, set(config) - SETTINGS
    assert set(secret) <= SETTINGS, set(secret) - SETTINGS
    assert "DRT_DATABASE__DSN" in secret and "DRT_DATABASE__DSN" not in config
    assert all(isinstance(v, str) for v in config.values()), "ConfigMap values are strings"
    settings = settings_from({**config, **secret}, monkeypatch)
    assert settings.metrics_port == METRICS_PORT


def test_k8s_deployment_wiring() -> None:
    """The Deployment uses the ConfigMap and Secret, exposes the metrics port the Service
    targets, has probes on it, one replica and the image of the Compose file."""
    deployment = k8s("Deployment", "drt-dispatcher")
    spec = deployment["spec"]
    assert spec["replicas"] == 1 and spec["strategy"]["type"] == "Recreate"
    pod = spec["template"]
    assert spec["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    (container,) = pod["spec"]["containers"]
    assert container["image"] == IMAGE == compose()["services"]["dispatcher"]["image"]
    refs = {next(iter(ref.values()))["name"] for ref in container["envFrom"]}
    assert refs == {"drt-dispatcher-config", "drt-dispatcher-db"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": METRICS_PORT}
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert probe in container, probe
    assert f":{METRICS_PORT}/metrics" in " ".join(container["readinessProbe"]["exec"]["command"])
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(METRICS_PORT)
    graceful = Settings().dispatch.graceful_timeout_s
    assert pod["spec"]["terminationGracePeriodSeconds"] > graceful
    service = k8s("Service", "drt-dispatcher")
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    (port,) = service["spec"]["ports"]
    assert port["port"] == METRICS_PORT and port["targetPort"] == "metrics"


# -- Dockerfile and docs ---------------------------------------------------------------------


def dockerfile() -> list[str]:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_dockerfile() -> None:
    """python:3.11-slim, pip install of the project, every COPY source exists and is not
    excluded by .dockerignore, metrics port exposed, `drt serve` by default."""
    lines = dockerfile()
    assert lines[0] == "FROM python:3.11-slim"
    assert any(line.startswith("RUN") and "pip install" in line and " ." in line for line in lines)
    ignored = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for line in lines:
        if line.startswith("COPY") and "--from" not in line:
            *sources, _dest = line.split()[1:]
            for source in sources:
                assert (REPO / source).exists(), source
                assert source not in ignored, f"{source} is in .dockerignore"
                assert Path(source).parts[0] not in ignored, source
    assert f"EXPOSE {METRICS_PORT}" in lines
    assert 'ENTRYPOINT ["drt"]' in lines and 'CMD ["serve"]' in lines


def test_readme_documents_images_ports_and_settings() -> None:
    """deploy/README.md names every image, published port, topic and setting."""
    text = README.read_text(encoding="utf-8")
    for name, service in compose()["services"].items():
        assert service["image"] in text, f"README lacks the {name} image {service['image']}"
        for mapping in service.get("ports", []):
            host_port = mapping.split(":")[-2]
            assert host_port in text, f"README lacks port {host_port} of {name}"
    for name in SETTINGS:
        assert name in text, f"README lacks {name}"
    from schemas.topics import TOPICS  # noqa: PLC0415

    for topic in TOPICS:
        assert topic.default_name in text, topic.default_name
    for path in re.findall(r"`((?:deploy|tests)/[\w./-]+)`", text):
        assert (REPO / path).exists(), f"README mentions missing {path}"
