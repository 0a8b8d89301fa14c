-- The control database of the release before migrations (commit 7fbf416) on PostgreSQL, as its
-- tables created themselves: pg_dump --schema-only of that release's metadata.create_all().
SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

CREATE TABLE public.audit_log (
    seq integer NOT NULL,
    at character varying(40) NOT NULL,
    actor text NOT NULL,
    action character varying(40) NOT NULL,
    subject text NOT NULL,
    details text NOT NULL,
    prev_hash character varying(64) NOT NULL,
    hash character varying(64) NOT NULL
);

CREATE TABLE public.backup_runs (
    id integer NOT NULL,
    system character varying(64),
    tenant character varying(64),
    repository text NOT NULL,
    source text NOT NULL,
    snapshot_id character varying(64),
    started_at timestamp with time zone NOT NULL,
    finished_at timestamp with time zone,
    ok boolean NOT NULL,
    bytes_in integer,
    bytes_added integer,
    seconds double precision,
    error text
);

CREATE SEQUENCE public.backup_runs_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.backup_runs_id_seq OWNED BY public.backup_runs.id;

CREATE TABLE public.drill_resources (
    id integer NOT NULL,
    run_id character varying(48) NOT NULL,
    kind character varying(24) NOT NULL,
    name text NOT NULL,
    location text NOT NULL,
    state character varying(16) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    removed_at timestamp with time zone,
    detail text
);

CREATE SEQUENCE public.drill_resources_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.drill_resources_id_seq OWNED BY public.drill_resources.id;

CREATE TABLE public.drill_runs (
    id character varying(48) NOT NULL,
    kind character varying(16) NOT NULL,
    mode character varying(24) NOT NULL,
    status character varying(16) NOT NULL,
    consortium character varying(64) NOT NULL,
    site character varying(64),
    target_site character varying(64),
    declared_at timestamp with time zone NOT NULL,
    deadline timestamp with time zone,
    finished_at timestamp with time zone,
    host character varying(255) NOT NULL,
    pid integer NOT NULL,
    pid_start character varying(32),
    operator character varying(64),
    approver character varying(64),
    error text,
    document text
);

CREATE TABLE public.drill_systems (
    id integer NOT NULL,
    run_id character varying(48) NOT NULL,
    system character varying(64) NOT NULL,
    tenant character varying(64) NOT NULL,
    status character varying(16) NOT NULL,
    snapshot_id character varying(64),
    snapshot_time timestamp with time zone,
    rto_seconds double precision,
    rpo_seconds double precision,
    rto_target integer,
    rpo_target integer,
    finished_at timestamp with time zone NOT NULL
);

CREATE SEQUENCE public.drill_systems_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.drill_systems_id_seq OWNED BY public.drill_systems.id;

CREATE TABLE public.export_decisions (
    id integer NOT NULL,
    request_id character varying(40) NOT NULL,
    approver text NOT NULL,
    role character varying(16) NOT NULL,
    decision character varying(8) NOT NULL,
    at character varying(40) NOT NULL,
    reason text NOT NULL
);

CREATE SEQUENCE public.export_decisions_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.export_decisions_id_seq OWNED BY public.export_decisions.id;

CREATE TABLE public.export_requests (
    id character varying(40) NOT NULL,
    tenant character varying(64) NOT NULL,
    partner character varying(64) NOT NULL,
    disaster_id text NOT NULL,
    disaster_date character varying(10) NOT NULL,
    basis character varying(32) NOT NULL,
    purposes text NOT NULL,
    requested_fields text NOT NULL,
    fields text NOT NULL,
    scope text NOT NULL,
    retention_days integer NOT NULL,
    formats text NOT NULL,
    requested_by text NOT NULL,
    created_at character varying(40) NOT NULL,
    valid_until character varying(40) NOT NULL,
    status character varying(16) NOT NULL,
    builds integer NOT NULL
);

CREATE TABLE public.health_observations (
    kind character varying(32) NOT NULL,
    subject character varying(200) NOT NULL,
    site character varying(64),
    tenant character varying(64),
    probe character varying(32),
    ok boolean,
    value double precision,
    value2 double precision,
    detail text,
    checked_at timestamp with time zone NOT NULL
);

CREATE TABLE public.host_maintenance (
    host character varying(64) NOT NULL,
    reason text NOT NULL,
    since timestamp with time zone NOT NULL,
    operator character varying(64) NOT NULL
);

CREATE TABLE public.maintenance_events (
    id integer NOT NULL,
    host character varying(64) NOT NULL,
    "on" boolean NOT NULL,
    reason text NOT NULL,
    at timestamp with time zone NOT NULL,
    operator character varying(64) NOT NULL
);

CREATE SEQUENCE public.maintenance_events_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.maintenance_events_id_seq OWNED BY public.maintenance_events.id;

CREATE TABLE public.playbook_hosts (
    id integer NOT NULL,
    run_id character varying(96) NOT NULL,
    host character varying(64) NOT NULL,
    status character varying(16) NOT NULL,
    ok integer NOT NULL,
    changed integer NOT NULL,
    failed integer NOT NULL,
    unreachable integer NOT NULL,
    skipped integer NOT NULL,
    rescued integer NOT NULL,
    ignored integer NOT NULL,
    message text,
    data text
);

CREATE SEQUENCE public.playbook_hosts_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.playbook_hosts_id_seq OWNED BY public.playbook_hosts.id;

CREATE TABLE public.playbook_runs (
    run_id character varying(96) NOT NULL,
    playbook character varying(64) NOT NULL,
    limit_pattern text,
    check_mode boolean NOT NULL,
    extravar_names text NOT NULL,
    status character varying(16) NOT NULL,
    rc integer,
    ok boolean NOT NULL,
    started_at timestamp with time zone NOT NULL,
    finished_at timestamp with time zone NOT NULL,
    seconds double precision NOT NULL,
    error text
);

CREATE TABLE public.replication_lag (
    target character varying(512) NOT NULL,
    system character varying(64) NOT NULL,
    source text NOT NULL,
    source_newest timestamp with time zone,
    target_newest timestamp with time zone,
    lag_seconds double precision,
    measured_at timestamp with time zone NOT NULL
);

CREATE TABLE public.replication_locks (
    target character varying(512) NOT NULL,
    key character varying(255) NOT NULL,
    retain_until timestamp with time zone NOT NULL
);

CREATE TABLE public.replication_pending_deletes (
    target character varying(512) NOT NULL,
    key character varying(255) NOT NULL,
    first_missing_at timestamp with time zone NOT NULL
);

CREATE TABLE public.replication_pins (
    repository character varying(64) NOT NULL,
    public_key character varying(64) NOT NULL,
    sequence bigint NOT NULL,
    manifest_sha256 character varying(64) NOT NULL,
    updated_at timestamp with time zone NOT NULL
);

CREATE TABLE public.replication_runs (
    id integer NOT NULL,
    source text NOT NULL,
    target text NOT NULL,
    started_at timestamp with time zone NOT NULL,
    finished_at timestamp with time zone NOT NULL,
    ok boolean NOT NULL,
    objects_copied integer NOT NULL,
    bytes_sent bigint NOT NULL,
    seconds double precision NOT NULL,
    manifest_sequence bigint,
    error text
);

CREATE SEQUENCE public.replication_runs_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.replication_runs_id_seq OWNED BY public.replication_runs.id;

CREATE TABLE public.repository_checks (
    id integer NOT NULL,
    site character varying(64) NOT NULL,
    started_at timestamp with time zone NOT NULL,
    finished_at timestamp with time zone NOT NULL,
    ok boolean NOT NULL,
    read_data boolean NOT NULL,
    subset_n integer,
    subset_m integer,
    snapshots integer NOT NULL,
    packs integer NOT NULL,
    packs_read integer NOT NULL,
    bytes_read integer NOT NULL,
    problems integer NOT NULL,
    detail text
);

CREATE SEQUENCE public.repository_checks_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.repository_checks_id_seq OWNED BY public.repository_checks.id;

CREATE TABLE public.resource_usage (
    id integer NOT NULL,
    tenant character varying(64) NOT NULL,
    kind character varying(32) NOT NULL,
    amount double precision NOT NULL,
    at timestamp with time zone NOT NULL,
    ref text
);

CREATE SEQUENCE public.resource_usage_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.resource_usage_id_seq OWNED BY public.resource_usage.id;

CREATE TABLE public.scheduler_job_claims (
    job_id character varying(200) NOT NULL,
    run_id character varying(36) NOT NULL,
    holder character varying(200) NOT NULL,
    claimed_at timestamp with time zone NOT NULL,
    heartbeat_at timestamp with time zone NOT NULL
);

CREATE TABLE public.scheduler_job_runs (
    run_id character varying(36) NOT NULL,
    job_id character varying(200) NOT NULL,
    kind character varying(32) NOT NULL,
    holder character varying(200) NOT NULL,
    started_at timestamp with time zone NOT NULL,
    finished_at timestamp with time zone,
    status character varying(16) NOT NULL,
    error text
);

CREATE TABLE public.scheduler_job_stats (
    job_id character varying(200) NOT NULL,
    runs integer NOT NULL,
    failures integer NOT NULL,
    missed integer NOT NULL,
    consecutive_failures integer NOT NULL,
    last_success_at timestamp with time zone,
    last_finished_at timestamp with time zone,
    last_seconds double precision
);

CREATE TABLE public.scheduler_lease (
    name character varying(64) NOT NULL,
    holder character varying(200) NOT NULL,
    acquired_at double precision NOT NULL,
    expires_at double precision NOT NULL
);

CREATE TABLE public.scheduler_terms (
    id integer NOT NULL,
    holder character varying(200) NOT NULL,
    started_at timestamp with time zone NOT NULL,
    ended_at timestamp with time zone,
    end_reason character varying(64)
);

CREATE SEQUENCE public.scheduler_terms_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.scheduler_terms_id_seq OWNED BY public.scheduler_terms.id;

CREATE TABLE public.web_accounts (
    name character varying(64) NOT NULL,
    roles text NOT NULL,
    password_hash text,
    created_at character varying(40) NOT NULL,
    disabled boolean NOT NULL
);

CREATE TABLE public.web_deliveries (
    request_id character varying(40) NOT NULL,
    partner character varying(64) NOT NULL,
    bundle text NOT NULL,
    payload_sha256 character varying(64) NOT NULL,
    built_at character varying(40) NOT NULL,
    expires_at character varying(40) NOT NULL,
    downloads integer NOT NULL,
    last_download_at character varying(40),
    deleted_at character varying(40),
    deleted_by text
);

CREATE TABLE public.web_jobs (
    id character varying(32) NOT NULL,
    kind character varying(16) NOT NULL,
    mode character varying(24) NOT NULL,
    tenant character varying(64),
    requested_by text NOT NULL,
    requested_at character varying(40) NOT NULL,
    status character varying(16) NOT NULL,
    run_id character varying(48),
    finished_at character varying(40),
    error text,
    host character varying(255) NOT NULL,
    pid integer NOT NULL
);

CREATE TABLE public.web_partner_tokens (
    id character varying(16) NOT NULL,
    partner character varying(64) NOT NULL,
    digest character varying(64) NOT NULL,
    label text NOT NULL,
    issued_by text NOT NULL,
    issued_at character varying(40) NOT NULL,
    expires_at character varying(40) NOT NULL,
    revoked_at character varying(40)
);

CREATE TABLE public.web_request_nonces (
    partner character varying(64) NOT NULL,
    nonce character varying(64) NOT NULL,
    seen_at character varying(40) NOT NULL
);

CREATE TABLE public.web_sessions (
    digest character varying(64) NOT NULL,
    kind character varying(16) NOT NULL,
    subject character varying(64) NOT NULL,
    csrf character varying(64) NOT NULL,
    created_at character varying(40) NOT NULL,
    expires_at character varying(40) NOT NULL
);

ALTER TABLE ONLY public.backup_runs ALTER COLUMN id SET DEFAULT nextval('public.backup_runs_id_seq'::regclass);

ALTER TABLE ONLY public.drill_resources ALTER COLUMN id SET DEFAULT nextval('public.drill_resources_id_seq'::regclass);

ALTER TABLE ONLY public.drill_systems ALTER COLUMN id SET DEFAULT nextval('public.drill_systems_id_seq'::regclass);

ALTER TABLE ONLY public.export_decisions ALTER COLUMN id SET DEFAULT nextval('public.export_decisions_id_seq'::regclass);

ALTER TABLE ONLY public.maintenance_events ALTER COLUMN id SET DEFAULT nextval('public.maintenance_events_id_seq'::regclass);

ALTER TABLE ONLY public.playbook_hosts ALTER COLUMN id SET DEFAULT nextval('public.playbook_hosts_id_seq'::regclass);

ALTER TABLE ONLY public.replication_runs ALTER COLUMN id SET DEFAULT nextval('public.replication_runs_id_seq'::regclass);

ALTER TABLE ONLY public.repository_checks ALTER COLUMN id SET DEFAULT nextval('public.repository_checks_id_seq'::regclass);

ALTER TABLE ONLY public.resource_usage ALTER COLUMN id SET DEFAULT nextval('public.resource_usage_id_seq'::regclass);

ALTER TABLE ONLY public.scheduler_terms ALTER COLUMN id SET DEFAULT nextval('public.scheduler_terms_id_seq'::regclass);

ALTER TABLE ONLY public.audit_log
    ADD CONSTRAINT audit_log_hash_key UNIQUE (hash);

ALTER TABLE ONLY public.audit_log
    ADD CONSTRAINT audit_log_pkey PRIMARY KEY (seq);

ALTER TABLE ONLY public.backup_runs
    ADD CONSTRAINT backup_runs_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.drill_resources
    ADD CONSTRAINT drill_resources_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.drill_runs
    ADD CONSTRAINT drill_runs_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.drill_systems
    ADD CONSTRAINT drill_systems_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.export_decisions
    ADD CONSTRAINT export_decisions_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.export_decisions
    ADD CONSTRAINT export_decisions_request_id_approver_key UNIQUE (request_id, approver);

ALTER TABLE ONLY public.export_requests
    ADD CONSTRAINT export_requests_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.health_observations
    ADD CONSTRAINT health_observations_pkey PRIMARY KEY (kind, subject);

ALTER TABLE ONLY public.host_maintenance
    ADD CONSTRAINT host_maintenance_pkey PRIMARY KEY (host);

ALTER TABLE ONLY public.maintenance_events
    ADD CONSTRAINT maintenance_events_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.playbook_hosts
    ADD CONSTRAINT playbook_hosts_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.playbook_runs
    ADD CONSTRAINT playbook_runs_pkey PRIMARY KEY (run_id);

ALTER TABLE ONLY public.replication_lag
    ADD CONSTRAINT replication_lag_pkey PRIMARY KEY (target, system);

ALTER TABLE ONLY public.replication_locks
    ADD CONSTRAINT replication_locks_pkey PRIMARY KEY (target, key);

ALTER TABLE ONLY public.replication_pending_deletes
    ADD CONSTRAINT replication_pending_deletes_pkey PRIMARY KEY (target, key);

ALTER TABLE ONLY public.replication_pins
    ADD CONSTRAINT replication_pins_pkey PRIMARY KEY (repository);

ALTER TABLE ONLY public.replication_runs
    ADD CONSTRAINT replication_runs_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.repository_checks
    ADD CONSTRAINT repository_checks_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.resource_usage
    ADD CONSTRAINT resource_usage_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.scheduler_job_claims
    ADD CONSTRAINT scheduler_job_claims_pkey PRIMARY KEY (job_id);

ALTER TABLE ONLY public.scheduler_job_runs
    ADD CONSTRAINT scheduler_job_runs_pkey PRIMARY KEY (run_id);

ALTER TABLE ONLY public.scheduler_job_stats
    ADD CONSTRAINT scheduler_job_stats_pkey PRIMARY KEY (job_id);

ALTER TABLE ONLY public.scheduler_lease
    ADD CONSTRAINT scheduler_lease_pkey PRIMARY KEY (name);

ALTER TABLE ONLY public.scheduler_terms
    ADD CONSTRAINT scheduler_terms_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.web_accounts
    ADD CONSTRAINT web_accounts_pkey PRIMARY KEY (name);

ALTER TABLE ONLY public.web_deliveries
    ADD CONSTRAINT web_deliveries_pkey PRIMARY KEY (request_id);

ALTER TABLE ONLY public.web_jobs
    ADD CONSTRAINT web_jobs_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.web_partner_tokens
    ADD CONSTRAINT web_partner_tokens_digest_key UNIQUE (digest);

ALTER TABLE ONLY public.web_partner_tokens
    ADD CONSTRAINT web_partner_tokens_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.web_request_nonces
    ADD CONSTRAINT web_request_nonces_pkey PRIMARY KEY (partner, nonce);

ALTER TABLE ONLY public.web_sessions
    ADD CONSTRAINT web_sessions_pkey PRIMARY KEY (digest);

CREATE INDEX ix_backup_runs_system ON public.backup_runs USING btree (system);

CREATE INDEX ix_drill_resources_run_id ON public.drill_resources USING btree (run_id);

CREATE INDEX ix_drill_runs_kind ON public.drill_runs USING btree (kind);

CREATE INDEX ix_drill_runs_status ON public.drill_runs USING btree (status);

CREATE INDEX ix_drill_systems_run_id ON public.drill_systems USING btree (run_id);

CREATE INDEX ix_drill_systems_system ON public.drill_systems USING btree (system);

CREATE INDEX ix_export_decisions_request_id ON public.export_decisions USING btree (request_id);

CREATE INDEX ix_export_requests_tenant ON public.export_requests USING btree (tenant);

CREATE INDEX ix_maintenance_events_host ON public.maintenance_events USING btree (host);

CREATE INDEX ix_playbook_hosts_host ON public.playbook_hosts USING btree (host);

CREATE INDEX ix_playbook_hosts_run_id ON public.playbook_hosts USING btree (run_id);

CREATE INDEX ix_playbook_runs_playbook ON public.playbook_runs USING btree (playbook);

CREATE INDEX ix_repository_checks_site ON public.repository_checks USING btree (site);

CREATE INDEX ix_resource_usage_at ON public.resource_usage USING btree (at);

CREATE INDEX ix_resource_usage_tenant ON public.resource_usage USING btree (tenant);

CREATE INDEX ix_scheduler_job_runs_job_id ON public.scheduler_job_runs USING btree (job_id);

CREATE INDEX ix_web_partner_tokens_partner ON public.web_partner_tokens USING btree (partner);

CREATE INDEX ix_web_request_nonces_seen_at ON public.web_request_nonces USING btree (seen_at);
