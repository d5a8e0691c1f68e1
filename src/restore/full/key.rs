//! The encryption-key check of a full restore (see the module documentation):
//! the fingerprints of the key before and after the restore, and the verdict.
use super::*;

pub(super) fn short(fp: &str) -> String {
    fp.chars().take(16).collect()
}

/// The key fingerprints of the check (full values; shortened for display).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyState {
    pub backup: Option<(String, String)>,
    pub target_now: Option<(String, String)>,
    pub n8n_after: Option<(String, String)>,
}

/// The verdict of the key check: the key of the database after the restore
/// against the key n8n runs with after it.
pub fn key_verdict(
    state: &KeyState,
    restores_n8n_db: bool,
    restores_config: bool,
) -> (&'static str, Option<String>, Option<String>) {
    if !restores_n8n_db && !restores_config {
        return ("not_applicable", None, None);
    }
    let db = if restores_n8n_db {
        state.backup.as_ref().map(|b| b.0.clone())
    } else {
        state.target_now.as_ref().map(|t| t.0.clone())
    };
    let n8n = state.n8n_after.as_ref().map(|t| t.0.clone());
    let verdict = match (&db, &n8n) {
        (Some(a), Some(b)) if a == b => "match",
        (Some(_), Some(_)) => "mismatch",
        _ => "unknown",
    };
    (verdict, db, n8n)
}

/// Where a key was found, for a message: a file, or the environment.
pub(super) fn found_in(key: Option<&(String, String)>, when: &str) -> String {
    match key.map(|k| k.1.as_str()) {
        Some("environment") => format!("N8N_ENCRYPTION_KEY in n8n-ark's environment {when}"),
        Some(path) => format!("found in {path}"),
        None => "not found".into(),
    }
}

/// The key n8n gets from outside its compose project, as the front end
/// gave it ([`FullOptions::encryption_key`]: `N8N_ENCRYPTION_KEY` of its
/// environment).
pub(super) fn env_key(fp_key: &[u8; 32], key: Option<&str>) -> Option<(String, String)> {
    match key {
        Some(k) if !k.is_empty() => Some((
            config_files::fingerprint(fp_key, k),
            "environment".to_string(),
        )),
        _ => None,
    }
}

/// Whether the restore writes the backup's file at `path`.
pub(super) fn restores_file(backup: &ChosenBackup, path: &str) -> bool {
    backup.manifest.contents.as_ref().is_some_and(|c| {
        c.config_files
            .iter()
            .any(|f| f.path == path && f.path_bytes.is_none() && f.file_type == FileType::File)
    })
}

/// The backup's files that the key finder reads in the state after the
/// restore (its compose file, the env files and key file it names), read
/// from the store: the finder is run until it asks for no file it lacks.
pub(super) async fn key_files_of_backup(
    store: &Store,
    backup: &ChosenBackup,
    root: &Path,
) -> HashMap<String, Vec<u8>> {
    let mut loaded: HashMap<String, Vec<u8>> = HashMap::new();
    let Some(contents) = backup.manifest.contents.as_ref() else {
        return loaded;
    };
    for _ in 0..4 {
        let mut wanted: Vec<String> = Vec::new();
        let _ = n8n_key::find(&contents.config_files, &mut |p: &str| {
            if let Some(b) = loaded.get(p) {
                return Some(b.clone());
            }
            if restores_file(backup, p) {
                wanted.push(p.to_string());
                return None;
            }
            reroot(root, p).ok().and_then(|t| read_small(&t))
        });
        if wanted.is_empty() {
            break;
        }
        for p in wanted {
            let item = contents
                .config_files
                .iter()
                .find(|f| f.path == p)
                .and_then(|f| f.item.as_deref())
                .and_then(|name| backup.manifest.items.iter().find(|i| i.name == name));
            let mut buf = Vec::new();
            if let Some(item) = item.filter(|i| i.size <= 1 << 20) {
                if crate::store::reader::write_item(store, item, &mut buf)
                    .await
                    .is_err()
                {
                    buf.clear();
                }
            }
            loaded.insert(p, buf);
        }
    }
    loaded
}

/// The key fingerprints before and after the restore (see the module
/// documentation). `backup_files`: [`key_files_of_backup`].
pub(super) fn key_state(
    store: &Store,
    backup: &ChosenBackup,
    root: &Path,
    restores_config: bool,
    backup_files: &HashMap<String, Vec<u8>>,
    env: Option<&str>,
) -> Result<KeyState> {
    let fp_key = config_files::fingerprint_key(store);
    let contents = backup.manifest.contents.clone().unwrap_or_default();
    let shown = |p: &str| {
        reroot(root, p)
            .map(|t| t.display().to_string())
            .unwrap_or_else(|_| p.to_string())
    };
    // Now: the target's files at the recorded paths, else the environment.
    let target_now = n8n_key::find(&contents.config_files, &mut |p: &str| {
        reroot(root, p).ok().and_then(|t| read_small(&t))
    })
    .map(|k| (config_files::fingerprint(&fp_key, &k.key), shown(&k.source)))
    .or_else(|| env_key(&fp_key, env));
    let backup_key = contents.encryption_key_fingerprint.clone().map(|fp| {
        (
            fp,
            contents
                .encryption_key_source
                .clone()
                .unwrap_or_else(|| "unknown".into()),
        )
    });
    // After: the files the restore writes are the backup's; the others stay
    // as they are on the target.
    let n8n_after = if restores_config {
        n8n_key::find(&contents.config_files, &mut |p: &str| {
            if restores_file(backup, p) {
                backup_files.get(p).cloned()
            } else {
                reroot(root, p).ok().and_then(|t| read_small(&t))
            }
        })
        .map(|k| (config_files::fingerprint(&fp_key, &k.key), shown(&k.source)))
        .or_else(|| env_key(&fp_key, env))
    } else {
        target_now.clone()
    };
    Ok(KeyState {
        backup: backup_key,
        target_now,
        n8n_after,
    })
}
