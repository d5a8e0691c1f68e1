-- The catalog: a projection of one store's journal (see src/catalog/).
-- Everything here can be deleted and rebuilt from the store.

-- Which store this catalog projects, and how far: the sequence number and
-- file hash of the last journal record applied. One row.
CREATE TABLE catalog_state (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    store_id       TEXT    NOT NULL,
    store_location TEXT    NOT NULL,
    last_seq       INTEGER NOT NULL DEFAULT 0,
    last_hash      TEXT    NOT NULL,
    updated_ms     INTEGER NOT NULL
);

-- A copy of every journal record applied (body: the event's MessagePack body,
-- as `Event::encode_body` gives it, decrypted).
CREATE TABLE events (
    seq     INTEGER PRIMARY KEY,
    hash    TEXT    NOT NULL,
    prev    TEXT    NOT NULL,
    time_ms INTEGER NOT NULL,
    writer  TEXT    NOT NULL,
    kind    TEXT    NOT NULL,
    version INTEGER NOT NULL,
    body    BLOB    NOT NULL
);
CREATE INDEX events_kind ON events (kind);

-- One row per backup the journal mentions. Every column comes from the
-- journal alone (never from a manifest), so a rebuild gives the same rows
-- even when manifests have been deleted since.
CREATE TABLE backup_history (
    backup_id        TEXT    PRIMARY KEY,
    kind             TEXT    NOT NULL,
    host             TEXT,
    status           TEXT    NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'forgotten')),
    started_ms       INTEGER,
    finished_ms      INTEGER,
    duration_ms      INTEGER,
    manifest         TEXT,
    logical_bytes    INTEGER,
    stored_bytes     INTEGER,
    new_bytes        INTEGER,
    new_objects      INTEGER,
    reused_objects   INTEGER,
    objects          INTEGER,
    database_count   INTEGER,
    table_count      INTEGER,
    workflow_count   INTEGER,
    credential_count INTEGER,
    config_file_count INTEGER,
    item_count       INTEGER,
    failed_stage     TEXT,
    failed_message   TEXT,
    forgotten_reason TEXT,
    forgotten_ms     INTEGER,
    sources          TEXT    NOT NULL DEFAULT '[]',
    -- Why the contents of a completed backup are not in the catalog.
    note             TEXT,
    first_seq        INTEGER NOT NULL,
    last_seq         INTEGER NOT NULL
);
CREATE INDEX backup_history_order ON backup_history (started_ms, backup_id);
CREATE INDEX backup_history_status ON backup_history (status, kind);

-- What a completed backup holds (from its manifest), as the original design
-- has it: counts for quick lookup and JSON documents for detail.
CREATE TABLE backup_contents (
    backup_id                  TEXT    PRIMARY KEY REFERENCES backup_history (backup_id) ON DELETE CASCADE,
    workflow_count             INTEGER NOT NULL,
    credential_count           INTEGER NOT NULL,
    config_file_count          INTEGER NOT NULL,
    database_count             INTEGER NOT NULL,
    table_count                INTEGER NOT NULL,
    -- [{id, name, active, archived, tags, created_at, updated_at, version_id, object, size, node_count}]
    workflows_manifest         TEXT    NOT NULL,
    -- [{id, name, credential_type, created_at, updated_at}] (never secrets)
    credentials_manifest       TEXT    NOT NULL,
    -- [{path, file_type, required, mode, uid, gid, mtime_ms, size, checksum, link_target, item}]
    config_files_manifest      TEXT    NOT NULL,
    -- [{name, server_version, ..., migration_head, tables: [{schema, name, rows, columns}]}]
    database_schema_manifest   TEXT    NOT NULL,
    -- {workflow_id: object id hex}
    verification_checksums     TEXT    NOT NULL,
    encryption_key_fingerprint TEXT,
    encryption_key_source      TEXT,
    workflow_source            TEXT,
    globals_item               TEXT,
    manifest_host              TEXT,
    manifest_started_ms        INTEGER,
    manifest_finished_ms       INTEGER,
    labels                     TEXT    NOT NULL DEFAULT '{}'
);

CREATE TABLE backup_workflows (
    backup_id   TEXT    NOT NULL REFERENCES backup_history (backup_id) ON DELETE CASCADE,
    workflow_id TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    active      INTEGER NOT NULL,
    archived    INTEGER NOT NULL,
    tags        TEXT    NOT NULL,
    node_count  INTEGER NOT NULL,
    node_types  TEXT    NOT NULL,
    nodes       TEXT    NOT NULL,
    credentials TEXT    NOT NULL,
    created_at  TEXT,
    updated_at  TEXT,
    version_id  TEXT,
    object_id   TEXT    NOT NULL,
    size        INTEGER NOT NULL,
    item        TEXT    NOT NULL,
    PRIMARY KEY (backup_id, workflow_id)
);
CREATE INDEX backup_workflows_workflow ON backup_workflows (workflow_id, object_id);
CREATE INDEX backup_workflows_name ON backup_workflows (name);

CREATE TABLE backup_credentials (
    backup_id       TEXT NOT NULL REFERENCES backup_history (backup_id) ON DELETE CASCADE,
    credential_id   TEXT NOT NULL,
    name            TEXT NOT NULL,
    credential_type TEXT NOT NULL,
    created_at      TEXT,
    updated_at      TEXT,
    PRIMARY KEY (backup_id, credential_id)
);

CREATE TABLE backup_databases (
    backup_id          TEXT    NOT NULL REFERENCES backup_history (backup_id) ON DELETE CASCADE,
    database_name      TEXT    NOT NULL,
    server_version     TEXT    NOT NULL,
    server_version_num INTEGER NOT NULL,
    pg_dump_version    TEXT    NOT NULL,
    is_n8n             INTEGER NOT NULL,
    migration_head     TEXT,
    dump_item          TEXT    NOT NULL,
    snapshot           TEXT    NOT NULL,
    PRIMARY KEY (backup_id, database_name)
);

CREATE TABLE backup_tables (
    backup_id  TEXT    NOT NULL REFERENCES backup_history (backup_id) ON DELETE CASCADE,
    database_name TEXT    NOT NULL,
    schema_name   TEXT    NOT NULL,
    table_name    TEXT    NOT NULL,
    row_count     INTEGER NOT NULL,
    columns       TEXT    NOT NULL,
    PRIMARY KEY (backup_id, database_name, schema_name, table_name)
);

CREATE TABLE backup_config_files (
    backup_id   TEXT    NOT NULL REFERENCES backup_history (backup_id) ON DELETE CASCADE,
    path        TEXT    NOT NULL,
    file_type   TEXT    NOT NULL,
    required    INTEGER NOT NULL,
    mode        INTEGER NOT NULL,
    uid         INTEGER NOT NULL,
    gid         INTEGER NOT NULL,
    mtime_ms    INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    checksum    TEXT,
    link_target TEXT,
    item        TEXT,
    PRIMARY KEY (backup_id, path)
);

-- One row per distinct version (object id) of a workflow across the
-- completed backups that are still in the store.
CREATE TABLE workflow_versions (
    workflow_id     TEXT    NOT NULL,
    object_id       TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    version_id      TEXT,
    updated_at      TEXT,
    first_backup_id TEXT    NOT NULL,
    first_seen_ms   INTEGER NOT NULL,
    last_backup_id  TEXT    NOT NULL,
    last_seen_ms    INTEGER NOT NULL,
    backup_count    INTEGER NOT NULL,
    PRIMARY KEY (workflow_id, object_id)
);
CREATE INDEX workflow_versions_name ON workflow_versions (name);
