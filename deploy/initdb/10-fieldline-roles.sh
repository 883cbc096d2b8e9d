#!/bin/sh
# Runs once, when the timescaledb service starts on an empty data volume (docker-entrypoint-initdb.d), as the
# bootstrap superuser, after the image's own scripts created the timescaledb extension in $POSTGRES_DB.
#
#   fieldline         the ingester: owns the database (and so its public schema), creates and migrates the
#                     schema, writes. Not a superuser, no CREATEROLE.
#   fieldline_reader  Grafana: LOGIN and CONNECT only here; the ingester's migration 7 grants it USAGE on the
#                     schema and SELECT on every table, now and later (default privileges). Read-only by
#                     default. None of pg_execute_server_program, pg_read_server_files, pg_signal_backend.
#
# Passwords come from the service's environment (.env: FIELDLINE_PG_PASSWORD, FIELDLINE_PG_READER_PASSWORD) and
# are passed to psql as variables, quoted by format(%L): no shell or SQL interpolation of their text.
# Existing roles are left as they are. Tested by deploy/initdb_test.go against a real PostgreSQL.
set -eu
: "${POSTGRES_USER:?}" "${POSTGRES_DB:?}"
: "${FIELDLINE_PG_PASSWORD:?set FIELDLINE_PG_PASSWORD in .env}"
: "${FIELDLINE_PG_READER_PASSWORD:?set FIELDLINE_PG_READER_PASSWORD in .env}"

psql -X -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v db="$POSTGRES_DB" -v ingester_pw="$FIELDLINE_PG_PASSWORD" -v reader_pw="$FIELDLINE_PG_READER_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE fieldline LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L', :'ingester_pw')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fieldline') \gexec
SELECT format('CREATE ROLE fieldline_reader LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L', :'reader_pw')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fieldline_reader') \gexec
ALTER ROLE fieldline_reader SET default_transaction_read_only = on;
SELECT format('ALTER DATABASE %I OWNER TO fieldline', :'db') \gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO fieldline_reader', :'db') \gexec
GRANT USAGE, CREATE ON SCHEMA public TO fieldline;
SQL
