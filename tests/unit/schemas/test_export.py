"""JSON Schema and AsyncAPI are generated from the models, and match the golden files."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.export import asyncapi, export, json_schemas
from schemas.topics import TOPICS

GOLDEN = Path(__file__).parent / "golden"


def test_every_event_has_a_schema():
    """Each event on each topic gets a JSON Schema with its tag as id."""
    schemas = json_schemas()
    for spec in TOPICS:
        for model in spec.models:
            assert model.__name__ in schemas
            assert schemas[model.__name__]["$id"].startswith("urn:drt-dispatch:event:")


def test_asyncapi_lists_topics_keys_messages():
    """The AsyncAPI document names every topic, its key and its message types."""
    doc = asyncapi({"requests": "x.requests"})
    assert doc["asyncapi"].startswith("3.")
    assert doc["channels"]["requests"]["address"] == "x.requests"
    plans = doc["channels"]["driver_plans"]
    assert plans["bindings"]["kafka"]["topicConfiguration"]["cleanup.policy"] == ["compact"]
    for spec in TOPICS:
        channel = doc["channels"][spec.role]
        assert set(channel["messages"]) == {m.__name__ for m in spec.models}
        for name in channel["messages"]:
            message = doc["components"]["messages"][name]
            assert spec.key in message["bindings"]["kafka"]["key"]["description"]
    # every $ref resolves inside the document
    text = json.dumps(doc)
    for ref in {part.split('"')[0] for part in text.split('"$ref": "#/')[1:]}:
        node = doc
        for step in ref.split("/"):
            node = node[step]


def test_golden_schemas_unchanged(tmp_path):
    """An accidental schema change fails here; regenerate golden/ deliberately."""
    export(tmp_path)
    for path in sorted(GOLDEN.glob("*.json")):
        assert json.loads((tmp_path / path.name).read_text()) == json.loads(path.read_text()), (
            f"{path.name} changed: run `drt schemas export --out tests/unit/schemas/golden` "
            "if the change is intended (and versioned)"
        )
    assert {p.name for p in GOLDEN.glob("*.json")} == {p.name for p in tmp_path.glob("*.json")}
