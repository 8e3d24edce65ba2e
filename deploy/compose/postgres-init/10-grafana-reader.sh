#!/bin/sh
# First start of the PostgreSQL container only (docker-entrypoint-initdb.d):
# a read-only role for Grafana's live map and tables. The dispatcher (role drt)
# creates its tables later, so grant through default privileges.
set -eu
psql -v ON_ERROR_STOP=1 -v reader_password="${GRAFANA_DB_PASSWORD:-grafana}" \
    --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
CREATE ROLE grafana_reader LOGIN PASSWORD :'reader_password';
GRANT CONNECT ON DATABASE drt TO grafana_reader;
GRANT USAGE ON SCHEMA public TO grafana_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO grafana_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE drt IN SCHEMA public GRANT SELECT ON TABLES TO grafana_reader;
ALTER ROLE grafana_reader SET statement_timeout = '5s';
SQL
