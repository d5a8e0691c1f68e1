-- The verification policy (issue: verification): one row per
-- VerificationPolicySet event, made from the event alone, so a rebuild gives
-- the same rows. The row with the highest seq is the policy in force; with
-- no row, the defaults hold (data after every backup, restore of the newest
-- backup daily).
CREATE TABLE verification_policy (
    seq     INTEGER PRIMARY KEY,
    set_ms  INTEGER NOT NULL,
    set_by  TEXT    NOT NULL,
    -- The host:pid that appended the event.
    writer  TEXT    NOT NULL,
    -- JSON array of {level, schedule, n, percent}, in the event's order.
    rules   TEXT    NOT NULL
);
