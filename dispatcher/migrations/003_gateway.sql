-- drt-dispatch: the passenger gateway's state, shared by its replicas and kept over
-- restarts. A booking's Idempotency-Key (per caller, until expires_at) with the
-- fingerprint of its body and the request id it booked; and the passengers'
-- confirmations of offers (the dispatcher treats an offer as a booking already).
CREATE TABLE gateway_idempotency (
    caller       text NOT NULL,
    key          text NOT NULL,
    fingerprint  text NOT NULL,
    request_id   text NOT NULL,
    published    boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (caller, key)
);
CREATE INDEX gateway_idempotency_expiry ON gateway_idempotency (expires_at);

CREATE TABLE gateway_confirmations (
    request_id   text PRIMARY KEY,
    confirmed_at timestamptz NOT NULL
);
