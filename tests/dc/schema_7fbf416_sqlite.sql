-- The control database of the release before migrations (commit 7fbf416) on SQLite, as its
-- tables created themselves (SQLAlchemy's DDL, one block per table; no version table).
CREATE TABLE audit_log (
	seq INTEGER NOT NULL, 
	at VARCHAR(40) NOT NULL, 
	actor TEXT NOT NULL, 
	action VARCHAR(40) NOT NULL, 
	subject TEXT NOT NULL, 
	details TEXT NOT NULL, 
	prev_hash VARCHAR(64) NOT NULL, 
	hash VARCHAR(64) NOT NULL, 
	PRIMARY KEY (seq), 
	UNIQUE (hash)
);
CREATE TABLE backup_runs (
	id INTEGER NOT NULL, 
	system VARCHAR(64), 
	tenant VARCHAR(64), 
	repository TEXT NOT NULL, 
	source TEXT NOT NULL, 
	snapshot_id VARCHAR(64), 
	started_at DATETIME NOT NULL, 
	finished_at DATETIME, 
	ok BOOLEAN NOT NULL, 
	bytes_in INTEGER, 
	bytes_added INTEGER, 
	seconds FLOAT, 
	error TEXT, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_backup_runs_system ON backup_runs (system);
CREATE TABLE drill_resources (
	id INTEGER NOT NULL, 
	run_id VARCHAR(48) NOT NULL, 
	kind VARCHAR(24) NOT NULL, 
	name TEXT NOT NULL, 
	location TEXT NOT NULL, 
	state VARCHAR(16) NOT NULL, 
	created_at DATETIME NOT NULL, 
	removed_at DATETIME, 
	detail TEXT, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_drill_resources_run_id ON drill_resources (run_id);
CREATE TABLE drill_runs (
	id VARCHAR(48) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	mode VARCHAR(24) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	consortium VARCHAR(64) NOT NULL, 
	site VARCHAR(64), 
	target_site VARCHAR(64), 
	declared_at DATETIME NOT NULL, 
	deadline DATETIME, 
	finished_at DATETIME, 
	host VARCHAR(255) NOT NULL, 
	pid INTEGER NOT NULL, 
	pid_start VARCHAR(32), 
	operator VARCHAR(64), 
	approver VARCHAR(64), 
	error TEXT, 
	document TEXT, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_drill_runs_kind ON drill_runs (kind);
CREATE INDEX ix_drill_runs_status ON drill_runs (status);
CREATE TABLE drill_systems (
	id INTEGER NOT NULL, 
	run_id VARCHAR(48) NOT NULL, 
	system VARCHAR(64) NOT NULL, 
	tenant VARCHAR(64) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	snapshot_id VARCHAR(64), 
	snapshot_time DATETIME, 
	rto_seconds FLOAT, 
	rpo_seconds FLOAT, 
	rto_target INTEGER, 
	rpo_target INTEGER, 
	finished_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_drill_systems_system ON drill_systems (system);
CREATE INDEX ix_drill_systems_run_id ON drill_systems (run_id);
CREATE TABLE export_decisions (
	id INTEGER NOT NULL, 
	request_id VARCHAR(40) NOT NULL, 
	approver TEXT NOT NULL, 
	role VARCHAR(16) NOT NULL, 
	decision VARCHAR(8) NOT NULL, 
	at VARCHAR(40) NOT NULL, 
	reason TEXT NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (request_id, approver)
);
CREATE INDEX ix_export_decisions_request_id ON export_decisions (request_id);
CREATE TABLE export_requests (
	id VARCHAR(40) NOT NULL, 
	tenant VARCHAR(64) NOT NULL, 
	partner VARCHAR(64) NOT NULL, 
	disaster_id TEXT NOT NULL, 
	disaster_date VARCHAR(10) NOT NULL, 
	basis VARCHAR(32) NOT NULL, 
	purposes TEXT NOT NULL, 
	requested_fields TEXT NOT NULL, 
	fields TEXT NOT NULL, 
	scope TEXT NOT NULL, 
	retention_days INTEGER NOT NULL, 
	formats TEXT NOT NULL, 
	requested_by TEXT NOT NULL, 
	created_at VARCHAR(40) NOT NULL, 
	valid_until VARCHAR(40) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	builds INTEGER NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_export_requests_tenant ON export_requests (tenant);
CREATE TABLE health_observations (
	kind VARCHAR(32) NOT NULL, 
	subject VARCHAR(200) NOT NULL, 
	site VARCHAR(64), 
	tenant VARCHAR(64), 
	probe VARCHAR(32), 
	ok BOOLEAN, 
	value FLOAT, 
	value2 FLOAT, 
	detail TEXT, 
	checked_at DATETIME NOT NULL, 
	PRIMARY KEY (kind, subject)
);
CREATE TABLE host_maintenance (
	host VARCHAR(64) NOT NULL, 
	reason TEXT NOT NULL, 
	since DATETIME NOT NULL, 
	operator VARCHAR(64) NOT NULL, 
	PRIMARY KEY (host)
);
CREATE TABLE maintenance_events (
	id INTEGER NOT NULL, 
	host VARCHAR(64) NOT NULL, 
	"on" BOOLEAN NOT NULL, 
	reason TEXT NOT NULL, 
	at DATETIME NOT NULL, 
	operator VARCHAR(64) NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_maintenance_events_host ON maintenance_events (host);
CREATE TABLE playbook_hosts (
	id INTEGER NOT NULL, 
	run_id VARCHAR(96) NOT NULL, 
	host VARCHAR(64) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	ok INTEGER NOT NULL, 
	changed INTEGER NOT NULL, 
	failed INTEGER NOT NULL, 
	unreachable INTEGER NOT NULL, 
	skipped INTEGER NOT NULL, 
	rescued INTEGER NOT NULL, 
	ignored INTEGER NOT NULL, 
	message TEXT, 
	data TEXT, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_playbook_hosts_host ON playbook_hosts (host);
CREATE INDEX ix_playbook_hosts_run_id ON playbook_hosts (run_id);
CREATE TABLE playbook_runs (
	run_id VARCHAR(96) NOT NULL, 
	playbook VARCHAR(64) NOT NULL, 
	limit_pattern TEXT, 
	check_mode BOOLEAN NOT NULL, 
	extravar_names TEXT NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	rc INTEGER, 
	ok BOOLEAN NOT NULL, 
	started_at DATETIME NOT NULL, 
	finished_at DATETIME NOT NULL, 
	seconds FLOAT NOT NULL, 
	error TEXT, 
	PRIMARY KEY (run_id)
);
CREATE INDEX ix_playbook_runs_playbook ON playbook_runs (playbook);
CREATE TABLE replication_lag (
	target VARCHAR(512) NOT NULL, 
	system VARCHAR(64) NOT NULL, 
	source TEXT NOT NULL, 
	source_newest DATETIME, 
	target_newest DATETIME, 
	lag_seconds FLOAT, 
	measured_at DATETIME NOT NULL, 
	PRIMARY KEY (target, system)
);
CREATE TABLE replication_locks (
	target VARCHAR(512) NOT NULL, 
	"key" VARCHAR(255) NOT NULL, 
	retain_until DATETIME NOT NULL, 
	PRIMARY KEY (target, "key")
);
CREATE TABLE replication_pending_deletes (
	target VARCHAR(512) NOT NULL, 
	"key" VARCHAR(255) NOT NULL, 
	first_missing_at DATETIME NOT NULL, 
	PRIMARY KEY (target, "key")
);
CREATE TABLE replication_pins (
	repository VARCHAR(64) NOT NULL, 
	public_key VARCHAR(64) NOT NULL, 
	sequence BIGINT NOT NULL, 
	manifest_sha256 VARCHAR(64) NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (repository)
);
CREATE TABLE replication_runs (
	id INTEGER NOT NULL, 
	source TEXT NOT NULL, 
	target TEXT NOT NULL, 
	started_at DATETIME NOT NULL, 
	finished_at DATETIME NOT NULL, 
	ok BOOLEAN NOT NULL, 
	objects_copied INTEGER NOT NULL, 
	bytes_sent BIGINT NOT NULL, 
	seconds FLOAT NOT NULL, 
	manifest_sequence BIGINT, 
	error TEXT, 
	PRIMARY KEY (id)
);
CREATE TABLE repository_checks (
	id INTEGER NOT NULL, 
	site VARCHAR(64) NOT NULL, 
	started_at DATETIME NOT NULL, 
	finished_at DATETIME NOT NULL, 
	ok BOOLEAN NOT NULL, 
	read_data BOOLEAN NOT NULL, 
	subset_n INTEGER, 
	subset_m INTEGER, 
	snapshots INTEGER NOT NULL, 
	packs INTEGER NOT NULL, 
	packs_read INTEGER NOT NULL, 
	bytes_read INTEGER NOT NULL, 
	problems INTEGER NOT NULL, 
	detail TEXT, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_repository_checks_site ON repository_checks (site);
CREATE TABLE resource_usage (
	id INTEGER NOT NULL, 
	tenant VARCHAR(64) NOT NULL, 
	kind VARCHAR(32) NOT NULL, 
	amount FLOAT NOT NULL, 
	at DATETIME NOT NULL, 
	ref TEXT, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_resource_usage_tenant ON resource_usage (tenant);
CREATE INDEX ix_resource_usage_at ON resource_usage (at);
CREATE TABLE scheduler_job_claims (
	job_id VARCHAR(200) NOT NULL, 
	run_id VARCHAR(36) NOT NULL, 
	holder VARCHAR(200) NOT NULL, 
	claimed_at DATETIME NOT NULL, 
	heartbeat_at DATETIME NOT NULL, 
	PRIMARY KEY (job_id)
);
CREATE TABLE scheduler_job_runs (
	run_id VARCHAR(36) NOT NULL, 
	job_id VARCHAR(200) NOT NULL, 
	kind VARCHAR(32) NOT NULL, 
	holder VARCHAR(200) NOT NULL, 
	started_at DATETIME NOT NULL, 
	finished_at DATETIME, 
	status VARCHAR(16) NOT NULL, 
	error TEXT, 
	PRIMARY KEY (run_id)
);
CREATE INDEX ix_scheduler_job_runs_job_id ON scheduler_job_runs (job_id);
CREATE TABLE scheduler_job_stats (
	job_id VARCHAR(200) NOT NULL, 
	runs INTEGER NOT NULL, 
	failures INTEGER NOT NULL, 
	missed INTEGER NOT NULL, 
	consecutive_failures INTEGER NOT NULL, 
	last_success_at DATETIME, 
	last_finished_at DATETIME, 
	last_seconds FLOAT, 
	PRIMARY KEY (job_id)
);
CREATE TABLE scheduler_lease (
	name VARCHAR(64) NOT NULL, 
	holder VARCHAR(200) NOT NULL, 
	acquired_at FLOAT NOT NULL, 
	expires_at FLOAT NOT NULL, 
	PRIMARY KEY (name)
);
CREATE TABLE scheduler_terms (
	id INTEGER NOT NULL, 
	holder VARCHAR(200) NOT NULL, 
	started_at DATETIME NOT NULL, 
	ended_at DATETIME, 
	end_reason VARCHAR(64), 
	PRIMARY KEY (id)
);
CREATE TABLE web_accounts (
	name VARCHAR(64) NOT NULL, 
	roles TEXT NOT NULL, 
	password_hash TEXT, 
	created_at VARCHAR(40) NOT NULL, 
	disabled BOOLEAN NOT NULL, 
	PRIMARY KEY (name)
);
CREATE TABLE web_deliveries (
	request_id VARCHAR(40) NOT NULL, 
	partner VARCHAR(64) NOT NULL, 
	bundle TEXT NOT NULL, 
	payload_sha256 VARCHAR(64) NOT NULL, 
	built_at VARCHAR(40) NOT NULL, 
	expires_at VARCHAR(40) NOT NULL, 
	downloads INTEGER NOT NULL, 
	last_download_at VARCHAR(40), 
	deleted_at VARCHAR(40), 
	deleted_by TEXT, 
	PRIMARY KEY (request_id)
);
CREATE TABLE web_jobs (
	id VARCHAR(32) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	mode VARCHAR(24) NOT NULL, 
	tenant VARCHAR(64), 
	requested_by TEXT NOT NULL, 
	requested_at VARCHAR(40) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	run_id VARCHAR(48), 
	finished_at VARCHAR(40), 
	error TEXT, 
	host VARCHAR(255) NOT NULL, 
	pid INTEGER NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE web_partner_tokens (
	id VARCHAR(16) NOT NULL, 
	partner VARCHAR(64) NOT NULL, 
	digest VARCHAR(64) NOT NULL, 
	label TEXT NOT NULL, 
	issued_by TEXT NOT NULL, 
	issued_at VARCHAR(40) NOT NULL, 
	expires_at VARCHAR(40) NOT NULL, 
	revoked_at VARCHAR(40), 
	PRIMARY KEY (id), 
	UNIQUE (digest)
);
CREATE INDEX ix_web_partner_tokens_partner ON web_partner_tokens (partner);
CREATE TABLE web_request_nonces (
	partner VARCHAR(64) NOT NULL, 
	nonce VARCHAR(64) NOT NULL, 
	seen_at VARCHAR(40) NOT NULL, 
	PRIMARY KEY (partner, nonce)
);
CREATE INDEX ix_web_request_nonces_seen_at ON web_request_nonces (seen_at);
CREATE TABLE web_sessions (
	digest VARCHAR(64) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	subject VARCHAR(64) NOT NULL, 
	csrf VARCHAR(64) NOT NULL, 
	created_at VARCHAR(40) NOT NULL, 
	expires_at VARCHAR(40) NOT NULL, 
	PRIMARY KEY (digest)
);
