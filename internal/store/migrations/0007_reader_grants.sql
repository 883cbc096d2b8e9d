-- Grafana's role: SELECT only. When a role named fieldline_reader exists (created by the compose stack's
-- database init script, scripts/services.sh, or a DBA: see docs/plugin.md "Which role to give Grafana"), it gets
-- USAGE on the schema and SELECT on every table and view here, and on every table the migrating role creates
-- from now on (default privileges), so rollup tables added by later migrations are readable without another
-- GRANT. Nothing else: no ownership, no write, none of pg_execute_server_program / pg_read_server_files /
-- pg_signal_backend. store.Migrate calls fieldline_grant_reader() at every start, so a role created after the
-- schema gets its grants at the ingester's next start; without the role it does nothing.
CREATE OR REPLACE FUNCTION fieldline_grant_reader() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fieldline_reader') THEN
        RETURN false;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO fieldline_reader', current_schema());
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO fieldline_reader', current_schema());
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO fieldline_reader', current_schema());
    RETURN true;
END $$;

SELECT fieldline_grant_reader();
