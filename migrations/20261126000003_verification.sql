-- Verifications (issue: verification and sandbox): one row per
-- VerificationCompleted or VerificationFailed event, made from the event
-- alone, so a rebuild gives the same rows.
CREATE TABLE verification_history (
    verification_id TEXT    PRIMARY KEY,
    backup_id       TEXT    NOT NULL,
    -- 'exists', 'data' or 'restore'.
    level           TEXT    NOT NULL,
    -- 'passed' (every check held), 'failed' (a check did not hold), or
    -- 'error' (it could not run: VerificationFailed; nothing proven).
    result          TEXT    NOT NULL CHECK (result IN ('passed', 'failed', 'error')),
    checks_run      INTEGER NOT NULL,
    failure_count   INTEGER NOT NULL,
    -- JSON array of {check, subject, expected, found}.
    failures        TEXT    NOT NULL,
    sandbox         TEXT,
    -- VerificationFailed only: where it stopped and why.
    failed_stage    TEXT,
    message         TEXT,
    finished_ms     INTEGER NOT NULL,
    duration_ms     INTEGER NOT NULL,
    seq             INTEGER NOT NULL
);
CREATE INDEX verification_history_backup ON verification_history (backup_id, seq);
CREATE INDEX verification_history_level ON verification_history (level, result, seq);
