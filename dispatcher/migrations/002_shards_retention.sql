-- drt-dispatch: exactly-once and scale-out. Every outbox row belongs to a shard
-- (the input partition index of its zone); only the shard's owner publishes it,
-- in the Kafka transaction that also commits that shard's input offsets.
ALTER TABLE outbox ADD COLUMN shard integer NOT NULL DEFAULT 0;
DROP INDEX IF EXISTS outbox_unpublished;
CREATE INDEX outbox_unpublished ON outbox (shard, id) WHERE published_at IS NULL;
CREATE INDEX rides_zone ON rides (zone);
CREATE INDEX vehicles_zone ON vehicles (zone);
-- Retention (GDPR): when a row's personal data was anonymised.
ALTER TABLE requests ADD COLUMN anonymised_at timestamptz;
ALTER TABLE rides ADD COLUMN anonymised_at timestamptz;
ALTER TABLE outcomes ADD COLUMN anonymised_at timestamptz;
