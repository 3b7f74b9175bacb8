-- PostgreSQL as the shared store (Debian: apt install postgresql), run once as postgres:
--   sudo -u postgres psql -f setup.sql
-- then allow the workers' network in pg_hba.conf (scram-sha-256) and listen_addresses.
CREATE ROLE listener LOGIN PASSWORD 'CHANGE-ME';
CREATE DATABASE listener OWNER listener ENCODING 'UTF8';
-- Each worker process holds about 2 connections, the scheduler 3: size max_connections
-- (default 100) or put PgBouncer (transaction mode) in front past ~40 worker processes.
