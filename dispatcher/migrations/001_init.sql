-- drt-dispatch: initial schema. Every write is keyed so that a replay is harmless.
CREATE TABLE processed_events (
    event_id     uuid PRIMARY KEY,
    topic        text NOT NULL,
    partition    integer NOT NULL,
    "offset"     bigint NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE requests (
    request_id  text PRIMARY KEY,
    event_id    uuid NOT NULL UNIQUE,
    zone        text NOT NULL,
    payload     jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE rides (
    request_id  text PRIMARY KEY,
    zone        text NOT NULL,
    status      text NOT NULL,
    vehicle_id  text,
    data        jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rides_open ON rides (status) WHERE status IN ('pending', 'offered', 'onboard');

CREATE TABLE vehicles (
    vehicle_id  text PRIMARY KEY,
    zone        text NOT NULL,
    active      boolean NOT NULL,
    lat         double precision NOT NULL,
    lon         double precision NOT NULL,
    data        jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE outcomes (
    event_id    uuid PRIMARY KEY,
    request_id  text NOT NULL,
    kind        text NOT NULL,
    reason      text,
    vehicle_id  text,
    payload     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outcomes_request ON outcomes (request_id);

CREATE TABLE driver_plans (
    vehicle_id   text NOT NULL,
    plan_version integer NOT NULL,
    event_id     uuid NOT NULL UNIQUE,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (vehicle_id, plan_version)
);

CREATE TABLE dead_letters (
    event_id     uuid PRIMARY KEY,
    original_topic text NOT NULL,
    original_partition integer NOT NULL,
    original_offset bigint NOT NULL,
    error_type   text NOT NULL,
    reason       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (original_topic, original_partition, original_offset)
);

CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    event_id     uuid NOT NULL UNIQUE,
    topic        text NOT NULL,
    key          bytea,
    value        bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
