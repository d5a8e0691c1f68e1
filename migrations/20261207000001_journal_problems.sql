-- Journal damage (issue: nothing lost, ever): the problems the catalog's
-- replays of the journal found (records damaged, missing, misplaced, or not
-- linked to their predecessor), kept so that every command can warn while
-- they are not repaired, and whether a JournalRepaired record acknowledged
-- them. Like everything here, rebuilt by a replay.
CREATE TABLE journal_problems (
    -- The first sequence number concerned, and the last (a gap can span
    -- several).
    seq               INTEGER PRIMARY KEY,
    through           INTEGER NOT NULL,
    -- torn, damaged, missing, chain_broken, misnumbered, unfinished_claim,
    -- tampered (the names of SPEC section 9, JournalRepaired).
    kind              TEXT    NOT NULL,
    message           TEXT    NOT NULL,
    -- BLAKE3-256 of the file's bytes as read, hex; NULL without a file.
    file_hash         TEXT,
    -- Times of the intact records around it: the lost event was written
    -- between them (NULL at either end of the journal).
    written_after_ms  INTEGER,
    written_before_ms INTEGER,
    -- The JournalRepaired record that acknowledged it.
    repaired_by       INTEGER,
    found_ms          INTEGER NOT NULL
);

-- A completed backup whose row comes from its intact manifest rather than
-- from a journal record (its completion record was lost with a damaged
-- record; see the note). 0 for every row made from the journal.
ALTER TABLE backup_history ADD COLUMN from_manifest INTEGER NOT NULL DEFAULT 0;
