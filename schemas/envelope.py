"""The envelope every event carries, and value types shared by the events."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Latitude = Annotated[float, Field(ge=-90.0, le=90.0, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180.0, le=180.0, allow_inf_nan=False)]
Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")]
ZoneId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_\-]+$")]


class Event(BaseModel):
    """Base of every message on a topic.

    ``type`` and ``schema_version`` are fixed per subclass; together they are the
    discriminator tag ``"{type}@{schema_version}"``. Within a version only
    optional fields may be added; anything else is a new class.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: UUID = Field(
        default_factory=uuid4, description="Unique id; consumers deduplicate on it."
    )
    type: str
    schema_version: int
    occurred_at: AwareDatetime = Field(description="When the fact happened, with time zone.")
    source: Annotated[str, Field(min_length=1, max_length=128)] = Field(
        description="The producing service or device, e.g. 'dispatcher' or 'tablet:v12'."
    )


class Place(BaseModel):
    """A point on the map, optionally a known (virtual) stop."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lat: Latitude
    lon: Longitude
    stop_id: Identifier | None = None
    name: Annotated[str, Field(max_length=200)] | None = None


def event_tag(value: Any) -> str | None:
    """The discriminator ``"{type}@{schema_version}"`` of a dict or a model."""
    if isinstance(value, dict):
        kind, version = value.get("type"), value.get("schema_version")
    else:
        kind = getattr(value, "type", None)
        version = getattr(value, "schema_version", None)
    if not isinstance(kind, str) or isinstance(version, bool) or not isinstance(version, int):
        return None
    return f"{kind}@{version}"
