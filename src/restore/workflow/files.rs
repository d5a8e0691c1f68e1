//! Files for n8n's import: their names and documents, written whole and
//! never over an existing file.
use super::*;

/// The file name for a workflow: `<id>-<name>.json`, reduced to
/// `A-Z a-z 0-9 - _` (never `.`, `/` or an empty name).
pub fn file_name(id: &str, name: &str) -> String {
    let id = reduce(id, 64);
    let slug = reduce(name, 60);
    let base = match (id.is_empty(), slug.is_empty()) {
        (true, true) => "workflow".to_string(),
        (true, false) => slug,
        (false, true) => id,
        (false, false) => format!("{id}-{slug}"),
    };
    format!("{base}.json")
}

pub(super) fn reduce(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            c
        } else {
            '_'
        };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    let t: String = out
        .trim_matches(|c| c == '_' || c == '-')
        .chars()
        .take(max)
        .collect();
    t.trim_end_matches(['_', '-']).to_string()
}

/// File names for the picked workflows, unique within the run.
pub(super) fn file_names(picked: &[Picked<'_>]) -> Vec<String> {
    let mut used = HashSet::new();
    picked
        .iter()
        .map(|p| {
            let base = file_name(&p.workflow.id, &p.workflow.name);
            let stem = base.trim_end_matches(".json").to_string();
            let mut name = base;
            let mut n = 2;
            while !used.insert(name.clone()) {
                name = format!("{stem}-{n}.json");
                n += 1;
            }
            name
        })
        .collect()
}

/// The file `n8n import:workflow` reads for a canonical workflow: its
/// members in n8n's export order (others after, sorted), without
/// [`NOT_EXPORTED`], pretty-printed, with a final newline.
pub fn export_document(w: &Object) -> Vec<u8> {
    let mut members: Vec<(&str, &Json)> = EXPORT_ORDER
        .iter()
        .filter_map(|k| w.get(k).map(|v| (*k, v)))
        .collect();
    let mut rest: Vec<(&str, &Json)> = w
        .iter()
        .filter(|(k, _)| !EXPORT_ORDER.contains(&k.as_str()) && !NOT_EXPORTED.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    rest.sort_by(|a, b| a.0.cmp(b.0));
    members.extend(rest);
    let mut out = Vec::new();
    crate::source::json::write_pretty_members(Some(&members), &Json::Null, &mut out);
    out.push(b'\n');
    out
}

/// What writing one file did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Written {
    New,
    /// The file was there already with the same bytes.
    Identical,
    /// The file was there with other content (or is not a regular file).
    Differs,
}

/// Writes `bytes` as `dir/name` unless that name is taken: a temporary file
/// in `dir` (0600), fsynced, hard-linked to the name (which fails if it
/// exists) or, where the file system has no hard links, renamed after a
/// check; then the directory is fsynced.
pub(super) fn write_new_file(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<Written> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dest = dir.join(name);
    let existing = |dest: &Path| -> std::io::Result<Option<Written>> {
        match std::fs::symlink_metadata(dest) {
            Ok(m) if m.file_type().is_file() => {
                let have = std::fs::read(dest)?;
                Ok(Some(if have == bytes {
                    Written::Identical
                } else {
                    Written::Differs
                }))
            }
            Ok(_) => Ok(Some(Written::Differs)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    };
    if let Some(w) = existing(&dest)? {
        return Ok(w);
    }
    let tmp = dir.join(crate::restore::temporary_file_name(name));
    let result = (|| -> std::io::Result<Written> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        match std::fs::hard_link(&tmp, &dest) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Ok(existing(&dest)?.unwrap_or(Written::Differs));
            }
            Err(_) => {
                // No hard links here (some network and FAT file systems).
                if let Some(w) = existing(&dest)? {
                    return Ok(w);
                }
                std::fs::rename(&tmp, &dest)?;
            }
        }
        Ok(Written::New)
    })();
    let _ = std::fs::remove_file(&tmp);
    let written = result?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(written)
}

/// Creates the output directory (0700) when it is missing; fsyncs its parent.
pub(super) fn make_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}
