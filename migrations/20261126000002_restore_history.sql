-- Restores (issue: restore): one row per RestorePerformed or RestoreFailed
-- event, made from the event alone, so a rebuild gives the same rows.
CREATE TABLE restore_history (
    restore_id    TEXT    PRIMARY KEY,
    backup_id     TEXT    NOT NULL,
    what          TEXT    NOT NULL,
    target        TEXT    NOT NULL,
    -- 'ok' (nothing failed), 'partial' (some items failed), 'failed' (stopped).
    result        TEXT    NOT NULL CHECK (result IN ('ok', 'partial', 'failed')),
    failed_stage  TEXT,
    message       TEXT,
    safety_backup TEXT,
    restored      INTEGER NOT NULL,
    skipped       INTEGER NOT NULL,
    failed        INTEGER NOT NULL,
    -- JSON array of {name, outcome, detail}.
    items         TEXT    NOT NULL,
    finished_ms   INTEGER NOT NULL,
    duration_ms   INTEGER NOT NULL,
    seq           INTEGER NOT NULL
);
CREATE INDEX restore_history_backup ON restore_history (backup_id);
