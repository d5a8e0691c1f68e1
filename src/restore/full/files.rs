//! Config files of a full restore: recorded paths re-rooted under the root,
//! the top-level paths a safety backup takes, files read from the target or
//! the backup.
use super::*;

/// `recorded` (an absolute path of the backed-up machine) under `root`.
/// Refuses `..`, relative paths and non-normal components (a manifest is
/// data; a crafted one must not write outside the root).
pub fn reroot(root: &Path, recorded: &str) -> Result<PathBuf> {
    let p = Path::new(recorded);
    if !p.is_absolute() {
        return Err(RestoreError::Unsafe(format!(
            "the backup records the config path {recorded:?}, which is not absolute: refused"
        )));
    }
    let mut out = root.to_path_buf();
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(RestoreError::Unsafe(format!(
                    "the backup records the config path {recorded:?}, which climbs out with `..`: refused"
                )))
            }
        }
    }
    Ok(out)
}

/// The entries of `files` that no recorded directory contains: the paths a
/// backup of the same layout is given.
pub fn top_level(files: &[ConfigFile]) -> Vec<&ConfigFile> {
    let dirs: BTreeSet<&str> = files
        .iter()
        .filter(|f| f.file_type == FileType::Directory)
        .map(|f| f.path.as_str())
        .collect();
    files
        .iter()
        .filter(|f| {
            let mut p = Path::new(&f.path);
            while let Some(parent) = p.parent() {
                if parent.to_str().is_some_and(|s| dirs.contains(s)) {
                    return false;
                }
                p = parent;
            }
            true
        })
        .collect()
}

/// A regular file under the root (never through a symlink), up to 1 MiB.
pub(super) fn read_small(path: &Path) -> Option<Vec<u8>> {
    crate::source::config_files::read_small(path)
}

/// Reads a recorded file: as it is under the root now, else from the backup.
pub(super) async fn recorded_text(
    store: &Store,
    backup: &ChosenBackup,
    root: &Path,
    f: &ConfigFile,
) -> Option<String> {
    if let Some(b) = reroot(root, &f.path).ok().and_then(|p| read_small(&p)) {
        return Some(String::from_utf8_lossy(&b).into_owned());
    }
    let name = f.item.as_deref()?;
    let item = backup.manifest.items.iter().find(|i| i.name == name)?;
    if item.size > 1 << 20 {
        return None;
    }
    let mut buf = Vec::new();
    crate::store::reader::write_item(store, item, &mut buf)
        .await
        .ok()?;
    Some(String::from_utf8_lossy(&buf).into_owned())
}
