"""JSON Schema per event and an AsyncAPI 3.0 document, generated from the models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from schemas.envelope import Event
from schemas.topics import TOPICS


def tag_of(model: type[Event]) -> str:
    return f"{model.model_fields['type'].default}@{model.model_fields['schema_version'].default}"


def message_name(model: type[Event]) -> str:
    return model.__name__


def json_schemas() -> dict[str, dict[str, Any]]:
    """``{ModelName: JSON Schema}`` for every event on every topic."""
    out: dict[str, dict[str, Any]] = {}
    for spec in TOPICS:
        for model in spec.models:
            schema = model.model_json_schema(mode="serialization")
            schema["$id"] = f"urn:drt-dispatch:event:{tag_of(model)}"
            schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
            out[message_name(model)] = schema
    return out


def asyncapi(topic_names: dict[str, str] | None = None) -> dict[str, Any]:
    """An AsyncAPI 3.0 document of every topic: name, key, message types."""
    names = topic_names or {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for spec in TOPICS:
        channel_messages: dict[str, Any] = {}
        for model in spec.models:
            name = message_name(model)
            schema = model.model_json_schema(
                mode="serialization", ref_template=f"#/components/schemas/{name}.{{model}}"
            )
            for def_name, definition in schema.pop("$defs", {}).items():
                schemas[f"{name}.{def_name}"] = definition
            schemas[name] = schema
            messages[name] = {
                "name": name,
                "title": f"{tag_of(model)}",
                "summary": (model.__doc__ or "").strip().splitlines()[0],
                "contentType": "application/json",
                "payload": {"$ref": f"#/components/schemas/{name}"},
                "bindings": {
                    "kafka": {"key": {"type": "string", "description": f"the event's {spec.key}"}}
                },
            }
            channel_messages[name] = {"$ref": f"#/components/messages/{name}"}
        address = names.get(spec.role, spec.default_name)
        channels[spec.role] = {
            "address": address,
            "description": spec.description,
            "messages": channel_messages,
            "bindings": {
                "kafka": {
                    "topic": address,
                    "topicConfiguration": {
                        "cleanup.policy": ["compact"] if spec.compacted else ["delete"]
                    },
                }
            },
        }
        inbound = spec.role in {"requests", "vehicle_events"}
        operations[f"{'receive' if inbound else 'send'}_{spec.role}"] = {
            "action": "receive" if inbound else "send",
            "channel": {"$ref": f"#/channels/{spec.role}"},
            "summary": spec.description,
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "drt-dispatch",
            "version": "1.0.0",
            "description": "Events of the drt-dispatch shuttle dispatcher.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {"host": "127.0.0.1:9092", "protocol": "kafka", "description": "local broker"}
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def export(out: Path, topic_names: dict[str, str] | None = None) -> list[Path]:
    """Write ``<Model>.schema.json`` per event and ``asyncapi.json`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in json_schemas().items():
        path = out / f"{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    path = out / "asyncapi.json"
    path.write_text(json.dumps(asyncapi(topic_names), indent=2, sort_keys=True) + "\n")
    written.append(path)
    return written
