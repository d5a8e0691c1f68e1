-- The workflows a backup read but could not store in canonical form (the
-- manifest's contents.workflows_not_stored, SPEC.md §8.1): a JSON array of
-- {id, name, reason}. Empty for every backup that stored all it read, and
-- for the backups projected before this column existed (`catalog rebuild`
-- reads their manifests again).
ALTER TABLE backup_contents ADD COLUMN workflows_not_stored TEXT NOT NULL DEFAULT '[]';
