-- Run once by the postgres image on an empty data directory (docker-entrypoint-initdb.d), as the
-- superuser, whose password only this container knows. Least privilege:
--
--   custody_owner  owns the custody database and its schema: `custody migrate` connects as it (DDL).
--   custody        what the API and the worker connect as: reads and writes rows, no DDL, no
--                  CREATEDB, no CREATEROLE. The ledger tables stay append-only under their triggers.
--   temporal       owns the temporal and temporal_visibility databases (Temporal's schema tool sets
--                  them up); no access to custody's data, no CREATEDB.
--
-- Passwords come from the compose secrets, read by psql (backticks), never written in this file;
-- Temporal's from the environment (its server reads it only from there: TEMPORAL_DB_PASSWORD).
\set ON_ERROR_STOP on
\set owner_pw `tr -d '\r\n' < /run/secrets/db_owner_password`
\set app_pw `tr -d '\r\n' < /run/secrets/db_app_password`
\getenv temporal_pw TEMPORAL_DB_PASSWORD

CREATE ROLE custody_owner LOGIN PASSWORD :'owner_pw' NOCREATEDB NOCREATEROLE NOSUPERUSER;
CREATE ROLE custody LOGIN PASSWORD :'app_pw' NOCREATEDB NOCREATEROLE NOSUPERUSER;
CREATE ROLE temporal LOGIN PASSWORD :'temporal_pw' NOCREATEDB NOCREATEROLE NOSUPERUSER;

CREATE DATABASE custody OWNER custody_owner;
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;
REVOKE ALL ON DATABASE custody, temporal, temporal_visibility FROM PUBLIC;
GRANT CONNECT ON DATABASE custody TO custody;

\connect custody
REVOKE ALL ON SCHEMA public FROM PUBLIC;
ALTER SCHEMA public OWNER TO custody_owner;
GRANT USAGE ON SCHEMA public TO custody;
-- Every table and sequence custody_owner creates (each migration) is usable by the app role.
ALTER DEFAULT PRIVILEGES FOR ROLE custody_owner IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO custody;
ALTER DEFAULT PRIVILEGES FOR ROLE custody_owner IN SCHEMA public
  GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO custody;
