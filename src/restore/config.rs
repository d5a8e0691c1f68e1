//! Restore of config files: the files, directories and symlinks a backup
//! recorded (`contents.config_files`), written under a root directory
//! (`/` by default: where they were; a scratch directory to look first).
//!
//! What a backup records is written back as it was recorded: paths by their
//! exact bytes (a name that is not UTF-8 included), symlinks as links with
//! their target exactly as recorded, whatever it points at (an absolute
//! target is not re-rooted: a link is data, not a path to follow). The only
//! thing refused is writing *through* a link:
//!
//! - [`plan_config`] first checks every recorded path, and refuses the whole
//!   restore ([`RestoreError::Unsafe`], naming the path) when one is not
//!   absolute, climbs above the root with `..`, or is recorded twice: no
//!   backup records such a path, so the manifest was crafted or damaged.
//!   Backups normalise their paths; an older n8n-ark recorded a configured
//!   path as given, so `.`, `..` and empty components are resolved by name;
//! - an entry below a symlink the backup also records (it would be written
//!   through that link), or below a directory of the target that is a
//!   symlink leading out of the root (or nowhere), or a recorded directory
//!   whose place on the target is such a symlink, is *refused*: planned as
//!   `refused` with why, reported failed, and nothing is written for it; the
//!   other entries are restored. Only the entries `--only` selects are
//!   looked at. With the root `/`, no link leads out of the root.
//!
//! [`restore_config`] then writes each entry in the order the backup recorded
//! it (a directory before what it holds):
//! - a file: its content streamed from the store into a temporary file in
//!   the same directory, checked against the size and BLAKE3 checksum of the
//!   manifest, given its mode, owner and group (when running as root) and
//!   mtime, fsynced, renamed into place, and the directory fsynced: a crash
//!   leaves the old file or the new one, never a mix;
//! - a symlink: created under a temporary name and renamed into place;
//! - a directory: created (or kept), its mode, owner and mtime set (mtimes
//!   last, once everything in it is written).
//!
//! An existing file (or link) that differs is first kept as
//! `<file>.ark-before-restore` (`.ark-before-restore.N` when that exists),
//! a hard link to the old content, so the replacement stays one atomic
//! rename; unless [`ConfigOptions::keep_before`] is false. Identical files are
//! left alone. A file whose content does not match its checksum is not
//! written and is reported as failed; the others are still restored.
use super::{item, ChosenBackup, Outcome, RestoreError, Result};
use crate::store::{reader, Store};
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use store_format::contents::{readable_path, ConfigFile, FileType};
use store_format::event::RestoredItem;

/// What to restore, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigOptions {
    /// The directory the recorded absolute paths are re-rooted under.
    pub root: PathBuf,
    /// Only these recorded paths and what is below them (all when empty).
    pub only: Vec<PathBuf>,
    /// Keep a differing existing file as `<file>.ark-before-restore`.
    pub keep_before: bool,
}

impl Default for ConfigOptions {
    fn default() -> Self {
        ConfigOptions {
            root: PathBuf::from("/"),
            only: vec![],
            keep_before: true,
        }
    }
}

/// One entry of a config restore's plan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlannedFile {
    /// As recorded in the backup (its readable form when not UTF-8).
    pub path: String,
    /// The recorded path's exact bytes.
    #[serde(skip)]
    pub raw: Vec<u8>,
    /// Where it goes (re-rooted).
    #[serde(serialize_with = "readable")]
    pub target: PathBuf,
    /// `create`, `replace` or `unchanged` (files), `symlink`, `dir`,
    /// `missing-in-backup` (the path was absent when the backup ran: nothing
    /// is done to it), or `refused` (it would be written through a link:
    /// see `reason`).
    pub action: String,
    /// `file`, `directory`, `symlink` or `missing`.
    pub file_type: String,
    /// For a symlink: its target, exactly as recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_target: Option<String>,
    /// Bytes (files).
    pub size: u64,
    /// Permission bits as recorded.
    pub mode: u32,
    /// Why it is refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

fn readable<S: serde::Serializer>(p: &Path, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&readable_path(p.as_os_str().as_bytes()))
}

fn file_type_name(t: FileType) -> &'static str {
    match t {
        FileType::File => "file",
        FileType::Directory => "directory",
        FileType::Symlink => "symlink",
        FileType::Missing => "missing",
    }
}

use crate::sys::is_root as is_root_user;

/// The components of a recorded absolute path, or why it is unsafe.
fn components(path: &[u8]) -> std::result::Result<Vec<&[u8]>, String> {
    let Some(rest) = path.strip_prefix(b"/") else {
        return Err("it is not absolute".into());
    };
    if path.contains(&0) {
        return Err("it holds a NUL byte".into());
    }
    if rest.is_empty() {
        return Err("it is the root itself".into());
    }
    let parts: Vec<&[u8]> = rest.split(|&b| b == b'/').collect();
    for p in &parts {
        match *p {
            b"" => return Err("it has an empty component (`//` or a trailing `/`)".into()),
            b"." => return Err("it has a `.` component".into()),
            b".." => return Err("it has a `..` component".into()),
            _ => {}
        }
    }
    Ok(parts)
}

/// A recorded path as older backups may hold it (n8n-ark recorded a
/// `--config-path` as given, `..` included, before it normalised them):
/// absolute, `.` and empty components dropped, `..` resolved by name. An
/// error when it is not absolute, holds a NUL byte, is the root, or climbs
/// above the root (no backup records that: a crafted manifest).
fn cleaned(path: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let Some(rest) = path.strip_prefix(b"/") else {
        return Err("it is not absolute".into());
    };
    if path.contains(&0) {
        return Err("it holds a NUL byte".into());
    }
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in rest.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                if parts.pop().is_none() {
                    return Err("its `..` components climb above the root".into());
                }
            }
            name => parts.push(name),
        }
    }
    if parts.is_empty() {
        return Err("it is the root itself".into());
    }
    let mut out = Vec::with_capacity(path.len());
    for p in parts {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    Ok(out)
}

/// `root` joined with the relative form of a checked absolute path.
fn rerooted(root: &Path, path: &[u8]) -> PathBuf {
    root.join(OsStr::from_bytes(&path[1..]))
}

/// Checks the directories on the way from `root` to `target` (exclusive) as
/// they are on disk: a symlink must resolve inside `canon_root` (else
/// [`RestoreError::Unsafe`]: writing through it is refused); anything else
/// than a directory (or nothing yet) is a conflict.
fn check_ancestors(root: &Path, canon_root: &Path, target: &Path, recorded: &str) -> Result<()> {
    let rel = target.strip_prefix(root).unwrap_or(target);
    let mut p = root.to_path_buf();
    let parts: Vec<Component> = rel.components().collect();
    for c in parts.iter().take(parts.len().saturating_sub(1)) {
        p.push(c.as_os_str());
        let md = match std::fs::symlink_metadata(&p) {
            Ok(md) => md,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(RestoreError::target(format!(
                    "cannot read {} (on the way to {recorded}): {e}",
                    p.display()
                )))
            }
        };
        if md.file_type().is_symlink() {
            let resolved = std::fs::canonicalize(&p).map_err(|e| {
                RestoreError::Unsafe(format!(
                    "{} (on the way to {recorded}) is a symlink that does not resolve ({e}): refusing to write through it",
                    p.display()
                ))
            })?;
            if !resolved.starts_with(canon_root) {
                return Err(RestoreError::Unsafe(format!(
                    "{} (on the way to {recorded}) is a symlink to {}, outside the root {}: refusing to write through it",
                    p.display(),
                    resolved.display(),
                    canon_root.display()
                )));
            }
            if !resolved.is_dir() {
                return Err(RestoreError::target(format!(
                    "{} (on the way to {recorded}) is a symlink to {}, which is not a directory",
                    p.display(),
                    resolved.display()
                )));
            }
        } else if !md.is_dir() {
            return Err(RestoreError::target(format!(
                "{} is in the way of {recorded}: it is not a directory on the target; move it away first",
                p.display()
            )));
        }
    }
    Ok(())
}

/// BLAKE3 of a file's content, hex.
fn hash_file(p: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(p)?;
    let mut h = blake3::Hasher::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(h.finalize().to_hex().to_string())
}

/// The root as it will be: itself canonicalised when it exists (it must be
/// a directory); when it does not exist yet (a dry run, or a restore that
/// creates it), its deepest existing ancestor canonicalised, joined with the
/// rest.
fn canonical_root(root: &Path) -> Result<PathBuf> {
    match std::fs::canonicalize(root) {
        Ok(c) if c.is_dir() => Ok(c),
        Ok(_) => Err(RestoreError::Invalid(format!(
            "--root {} is not a directory",
            root.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut missing = Vec::new();
            let mut up = root;
            while let Some(parent) = up.parent() {
                missing.push(up.file_name().unwrap_or_default().to_os_string());
                if let Ok(c) = std::fs::canonicalize(parent) {
                    let mut out = c;
                    for m in missing.iter().rev() {
                        out.push(m);
                    }
                    return Ok(out);
                }
                up = parent;
            }
            Ok(root.to_path_buf())
        }
        Err(e) => Err(RestoreError::target(format!(
            "cannot read the root {}: {e}",
            root.display()
        ))),
    }
}

/// Checks every path of the backup's config files before anything is written
/// (see the module documentation) and returns the plan of the entries
/// selected by `opts.only`, in the backup's order.
pub fn plan_config(backup: &ChosenBackup, opts: &ConfigOptions) -> Result<Vec<PlannedFile>> {
    let files = backup
        .manifest
        .contents
        .as_ref()
        .map(|c| c.config_files.as_slice())
        .unwrap_or_default();
    if files.is_empty() {
        return Err(RestoreError::NotFound(format!(
            "backup {} ({}) holds no config files (n8n_config and full_system backups do)",
            backup.backup_id, backup.manifest.kind
        )));
    }
    if !opts.root.is_absolute() {
        return Err(RestoreError::Invalid(format!(
            "--root {} is not an absolute path",
            opts.root.display()
        )));
    }
    let root = opts.root.clone();
    let canon_root = canonical_root(&root)?;

    // Every recorded path: well formed (`..` of an older backup resolved by
    // name, never above the root), once. `at[i]`: where `files[i]` goes.
    let mut at: Vec<Vec<u8>> = Vec::with_capacity(files.len());
    let mut recorded: BTreeSet<Vec<u8>> = BTreeSet::new();
    for f in files {
        let clean = cleaned(f.path_raw()).map_err(|why| {
            RestoreError::Unsafe(format!(
                "the backup records the path {:?}, which is refused: {why}",
                f.path
            ))
        })?;
        if !recorded.insert(clean.clone()) {
            return Err(RestoreError::Unsafe(format!(
                "the backup records the path {:?} twice",
                f.path
            )));
        }
        at.push(clean);
    }
    let links: BTreeSet<&[u8]> = files
        .iter()
        .zip(&at)
        .filter(|(f, _)| f.file_type == FileType::Symlink)
        .map(|(_, p)| p.as_slice())
        .collect();

    // The selection.
    let mut only: Vec<Vec<u8>> = Vec::new();
    for o in &opts.only {
        let mut o = o.as_os_str().as_bytes();
        while o.len() > 1 && o.ends_with(b"/") {
            o = &o[..o.len() - 1];
        }
        let shown = readable_path(o);
        components(o).map_err(|why| RestoreError::Invalid(format!("--only {shown:?}: {why}")))?;
        let below = |p: &[u8]| p.len() > o.len() && p.starts_with(o) && p[o.len()] == b'/';
        if !at.iter().any(|p| p.as_slice() == o || below(p)) {
            return Err(RestoreError::Invalid(format!(
                "--only {shown}: backup {} records nothing there (see `n8n-ark show {}`)",
                backup.backup_id, backup.backup_id
            )));
        }
        only.push(o.to_vec());
    }
    let selected = |p: &[u8]| {
        only.is_empty()
            || only.iter().any(|o| {
                p == o.as_slice() || (p.len() > o.len() && p.starts_with(o) && p[o.len()] == b'/')
            })
    };

    let root_user = is_root_user();
    let mut plan = Vec::new();
    for (f, clean) in files.iter().zip(&at).filter(|(_, p)| selected(p)) {
        let raw = clean.as_slice();
        let target = rerooted(&root, raw);
        let mut p = PlannedFile {
            path: f.path.clone(),
            raw: f.path_raw().to_vec(),
            target: target.clone(),
            action: String::new(),
            file_type: file_type_name(f.file_type).into(),
            link_target: (f.file_type == FileType::Symlink)
                .then(|| readable_path(f.link_target_raw().unwrap_or_default())),
            size: f.size,
            mode: f.mode,
            reason: None,
        };
        if f.file_type == FileType::Missing {
            p.action = "missing-in-backup".into();
            plan.push(p);
            continue;
        }
        let refuse = |mut p: PlannedFile, why: String| {
            p.action = "refused".into();
            p.reason = Some(why);
            p
        };
        // Below a link this backup also restores: written through it.
        let through = raw
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(_, &b)| b == b'/')
            .map(|(i, _)| &raw[..i])
            .find(|up| links.contains(up));
        if let Some(up) = through {
            let why = format!(
                "it is below {:?}, which the backup records as a symlink: it would be written through the link",
                readable_path(up)
            );
            plan.push(refuse(p, why));
            continue;
        }
        match check_ancestors(&root, &canon_root, &target, &f.path) {
            Ok(()) => {}
            Err(RestoreError::Unsafe(why)) => {
                plan.push(refuse(p, why));
                continue;
            }
            Err(e) => return Err(e),
        }
        let existing = match std::fs::symlink_metadata(&target) {
            Ok(md) => Some(md),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => None,
            Err(e) => {
                return Err(RestoreError::target(format!(
                    "cannot read {}: {e}",
                    target.display()
                )))
            }
        };
        p.action = match (f.file_type, &existing) {
            (FileType::Directory, None) => "dir".into(),
            (FileType::Directory, Some(md)) if md.is_dir() => "dir".into(),
            (FileType::Directory, Some(md)) if md.file_type().is_symlink() => {
                // Its mode and owner would be set through the link.
                match std::fs::canonicalize(&target) {
                    Err(e) => {
                        let why = format!(
                            "{} is a symlink that does not resolve ({e}) where the backup has a directory: refusing to write through it",
                            target.display()
                        );
                        plan.push(refuse(p, why));
                        continue;
                    }
                    Ok(r) if !r.starts_with(&canon_root) => {
                        let why = format!(
                            "{} is a symlink to {}, outside the root {}: refusing to write through it",
                            target.display(),
                            r.display(),
                            canon_root.display()
                        );
                        plan.push(refuse(p, why));
                        continue;
                    }
                    Ok(r) if !r.is_dir() => {
                        return Err(RestoreError::target(format!(
                            "{} is a symlink to a non-directory where the backup has the directory {}: move it away first",
                            target.display(),
                            f.path
                        )))
                    }
                    Ok(_) => "dir".into(),
                }
            }
            (FileType::Directory, Some(_)) => {
                return Err(RestoreError::target(format!(
                    "{} is a file on the target where the backup has the directory {}: move it away first",
                    target.display(),
                    f.path
                )))
            }
            (_, Some(md)) if md.is_dir() => {
                return Err(RestoreError::target(format!(
                    "{} is a directory on the target where the backup has the {} {}: move it away first",
                    target.display(),
                    file_type_name(f.file_type),
                    f.path
                )))
            }
            (FileType::Symlink, Some(md)) if md.file_type().is_symlink() => {
                let now = std::fs::read_link(&target).ok();
                if now.as_ref().map(|n| n.as_os_str().as_bytes()) == f.link_target_raw() {
                    "unchanged".into()
                } else {
                    "symlink".into()
                }
            }
            (FileType::Symlink, _) => "symlink".into(),
            (FileType::File, None) => "create".into(),
            (FileType::File, Some(md)) => {
                let same = md.is_file()
                    && md.len() == f.size
                    && md.mode() & 0o7777 == f.mode
                    && (!root_user || (md.uid() == f.uid && md.gid() == f.gid))
                    && f.checksum.as_deref().is_some_and(|c| {
                        hash_file(&target).map(|h| h == c).unwrap_or(false)
                    });
                if same {
                    "unchanged".into()
                } else {
                    "replace".into()
                }
            }
            (FileType::Missing, _) => unreachable!("handled above"),
        };
        plan.push(p);
    }
    Ok(plan)
}

/// Restores the backup's config files (see the module documentation).
/// Returns one item per recorded entry: `file:<recorded path>`. An unsafe
/// manifest or a conflict on the target is an error before anything is
/// written; a file that fails (content not matching its checksum, a write
/// error) is a failed item and the others are still restored. When `cancel`
/// is asked, it stops between two entries (each is written whole or not at
/// all): the entries not reached are skipped items saying so, and the caller
/// records the restore as interrupted.
pub async fn restore_config(
    store: &Store,
    backup: &ChosenBackup,
    opts: &ConfigOptions,
    cancel: &crate::cancel::Cancel,
) -> Result<Vec<RestoredItem>> {
    let plan = plan_config(backup, opts)?;
    let files: BTreeMap<&[u8], &ConfigFile> = backup
        .manifest
        .contents
        .as_ref()
        .map(|c| c.config_files.iter().map(|f| (f.path_raw(), f)).collect())
        .unwrap_or_default();
    let root = opts.root.clone();
    std::fs::create_dir_all(&root).map_err(|e| {
        RestoreError::target(format!("cannot create the root {}: {e}", root.display()))
    })?;
    let canon_root = std::fs::canonicalize(&root).map_err(|e| {
        RestoreError::target(format!("cannot read the root {}: {e}", root.display()))
    })?;
    let w = Writer {
        root: root.clone(),
        canon_root,
        files: &files,
        chown: is_root_user(),
        keep_before: opts.keep_before,
    };
    let mut items = Vec::with_capacity(plan.len());
    let mut dirs: Vec<(PathBuf, i64)> = Vec::new();
    // What a restore killed while writing left beside the files it wrote.
    let targets: std::collections::BTreeSet<&Path> =
        plan.iter().filter_map(|p| p.target.parent()).collect();
    let swept: usize = targets.into_iter().map(super::sweep_temporary_files).sum();
    if swept > 0 {
        tracing::warn!("removed {swept} temporary file(s) that an interrupted restore left");
    }
    for p in &plan {
        let f = files[p.raw.as_slice()];
        let name = format!("file:{}", p.path);
        if let Some(why) = cancel.interrupted() {
            items.push(item(name, Outcome::Skipped, format!("not written: {why}")));
            continue;
        }
        let r = match p.action.as_str() {
            "refused" => {
                let why = p.reason.clone().unwrap_or_default();
                tracing::warn!("config restore of {}: refused: {why}", p.path);
                items.push(item(name, Outcome::Failed, format!("refused: {why}")));
                continue;
            }
            "missing-in-backup" => {
                items.push(item(
                    name,
                    Outcome::Skipped,
                    "it was missing when the backup ran",
                ));
                continue;
            }
            "unchanged" => {
                items.push(item(name, Outcome::Skipped, "unchanged"));
                continue;
            }
            "dir" => w
                .directory(p, f)
                .inspect(|_| dirs.push((p.target.clone(), f.mtime_ms))),
            "symlink" => w.symlink(p, f),
            _ => w.file(store, backup, p, f).await,
        };
        items.push(match r {
            Ok(detail) => item(name, Outcome::Restored, detail),
            Err(e) => {
                tracing::warn!("config restore of {}: {e}", p.path);
                item(name, Outcome::Failed, e.to_string())
            }
        });
    }
    // Directory mtimes last (writing into them changed them), deepest first.
    for (d, mtime) in dirs.iter().rev() {
        if let Err(e) = set_mtime(d, *mtime, false) {
            tracing::warn!("cannot set the mtime of {}: {e}", d.display());
        }
    }
    Ok(items)
}

struct Writer<'a> {
    root: PathBuf,
    canon_root: PathBuf,
    files: &'a BTreeMap<&'a [u8], &'a ConfigFile>,
    chown: bool,
    keep_before: bool,
}

fn io_err(what: String) -> impl FnOnce(std::io::Error) -> RestoreError {
    move |e| RestoreError::target(format!("{what}: {e}"))
}

fn system_time(ms: i64) -> std::time::SystemTime {
    if ms >= 0 {
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms as u64)
    } else {
        std::time::UNIX_EPOCH - std::time::Duration::from_millis(ms.unsigned_abs())
    }
}

/// Sets the mtime of `p` (of the link itself when `nofollow`), keeping atime now.
fn set_mtime(p: &Path, ms: i64, nofollow: bool) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("NUL in path"))?;
    let times = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
        libc::timespec {
            tv_sec: ms.div_euclid(1000) as libc::time_t,
            tv_nsec: (ms.rem_euclid(1000) * 1_000_000) as libc::c_long,
        },
    ];
    let flags = if nofollow {
        libc::AT_SYMLINK_NOFOLLOW
    } else {
        0
    };
    // SAFETY: a valid C string and an array of two timespecs.
    let r = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), flags) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

impl Writer<'_> {
    /// Creates the directories on the way to `target` (recorded ones with
    /// their mode and owner, others 0755), checking again that none is a
    /// symlink leading out of the root.
    fn parents(&self, target: &Path, recorded: &str) -> Result<()> {
        check_ancestors(&self.root, &self.canon_root, target, recorded)?;
        let rel = target.strip_prefix(&self.root).unwrap_or(target);
        let parts: Vec<Component> = rel.components().collect();
        let mut p = self.root.clone();
        let mut rec: Vec<u8> = Vec::new();
        for c in parts.iter().take(parts.len().saturating_sub(1)) {
            p.push(c.as_os_str());
            rec.push(b'/');
            rec.extend_from_slice(c.as_os_str().as_bytes());
            if std::fs::symlink_metadata(&p).is_ok() {
                continue;
            }
            let f = self
                .files
                .get(rec.as_slice())
                .filter(|f| f.file_type == FileType::Directory);
            std::fs::create_dir(&p).map_err(io_err(format!("creating {}", p.display())))?;
            self.dir_meta(&p, f.copied())?;
            if let Some(up) = p.parent() {
                let _ = fsync_dir(up);
            }
        }
        Ok(())
    }

    fn dir_meta(&self, p: &Path, f: Option<&ConfigFile>) -> Result<()> {
        let (mode, owner) = match f {
            Some(f) => (f.mode, Some((f.uid, f.gid))),
            None => (0o755, None),
        };
        if self.chown {
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::chown(p, Some(uid), Some(gid))
                    .map_err(io_err(format!("setting the owner of {}", p.display())))?;
            }
        }
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
            .map_err(io_err(format!("setting the mode of {}", p.display())))
    }

    fn directory(&self, p: &PlannedFile, f: &ConfigFile) -> Result<String> {
        self.parents(&p.target, &p.path)?;
        let existed = std::fs::symlink_metadata(&p.target).is_ok();
        if !existed {
            std::fs::create_dir(&p.target)
                .map_err(io_err(format!("creating {}", p.target.display())))?;
        }
        self.dir_meta(&p.target, Some(f))?;
        if let Some(up) = p.target.parent() {
            let _ = fsync_dir(up);
        }
        Ok(if existed {
            format!("directory {} (mode {:o})", p.target.display(), f.mode)
        } else {
            format!(
                "directory {} created (mode {:o})",
                p.target.display(),
                f.mode
            )
        })
    }

    /// A free `<target>.ark-before-restore[.N]`.
    fn keep_path(target: &Path) -> Result<PathBuf> {
        let mut base = target.as_os_str().as_bytes().to_vec();
        base.extend_from_slice(b".ark-before-restore");
        for n in 0..1000 {
            let mut name = base.clone();
            if n > 0 {
                name.extend_from_slice(format!(".{n}").as_bytes());
            }
            let p = PathBuf::from(OsStr::from_bytes(&name));
            if std::fs::symlink_metadata(&p).is_err() {
                return Ok(p);
            }
        }
        Err(RestoreError::target(format!(
            "too many {}.N copies already: clean them up",
            readable_path(&base)
        )))
    }

    /// Before `target` is replaced: keeps what is there as a hard link (the
    /// replacement stays one rename). Returns where it was kept.
    fn keep(&self, target: &Path) -> Result<Option<PathBuf>> {
        if !self.keep_before {
            return Ok(None);
        }
        let md = match std::fs::symlink_metadata(target) {
            Ok(md) => md,
            Err(_) => return Ok(None),
        };
        if md.is_dir() {
            return Ok(None);
        }
        let kept = Self::keep_path(target)?;
        if let Err(e) = std::fs::hard_link(target, &kept) {
            // A file system without hard links: a copy (a link is re-created).
            if md.file_type().is_symlink() {
                let t = std::fs::read_link(target)
                    .map_err(io_err(format!("reading {}", target.display())))?;
                std::os::unix::fs::symlink(t, &kept)
                    .map_err(io_err(format!("keeping {}", target.display())))?;
            } else {
                tracing::debug!("hard link of {} refused ({e}): copying", target.display());
                std::fs::copy(target, &kept)
                    .map_err(io_err(format!("keeping {}", target.display())))?;
                std::fs::File::open(&kept)
                    .and_then(|f| f.sync_all())
                    .map_err(io_err(format!("keeping {}", target.display())))?;
            }
        }
        Ok(Some(kept))
    }

    fn tmp_name(target: &Path) -> PathBuf {
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let short: String = name.chars().take(100).collect();
        target.with_file_name(super::temporary_file_name(&short))
    }

    fn symlink(&self, p: &PlannedFile, f: &ConfigFile) -> Result<String> {
        let raw_link = f
            .link_target_raw()
            .filter(|t| !t.is_empty() && !t.contains(&0))
            .ok_or_else(|| {
                RestoreError::Invalid(format!("the symlink {} has no valid target", p.path))
            })?;
        let link = readable_path(raw_link);
        self.parents(&p.target, &p.path)?;
        let tmp = Self::tmp_name(&p.target);
        std::os::unix::fs::symlink(OsStr::from_bytes(raw_link), &tmp)
            .map_err(io_err(format!("creating the symlink {}", tmp.display())))?;
        let done = (|| {
            if self.chown {
                std::os::unix::fs::lchown(&tmp, Some(f.uid), Some(f.gid))
                    .map_err(io_err(format!("setting the owner of {}", tmp.display())))?;
            }
            let _ = set_mtime(&tmp, f.mtime_ms, true);
            let kept = self.keep(&p.target)?;
            std::fs::rename(&tmp, &p.target)
                .map_err(io_err(format!("renaming into {}", p.target.display())))?;
            Ok::<_, RestoreError>(kept)
        })();
        let kept = match done {
            Ok(k) => k,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        if let Some(up) = p.target.parent() {
            fsync_dir(up).map_err(io_err(format!("syncing {}", up.display())))?;
        }
        Ok(match kept {
            Some(k) => format!(
                "symlink -> {link} (the previous one kept as {})",
                k.display()
            ),
            None => format!("symlink -> {link}"),
        })
    }

    async fn file(
        &self,
        store: &Store,
        backup: &ChosenBackup,
        p: &PlannedFile,
        f: &ConfigFile,
    ) -> Result<String> {
        let expected = f.checksum.as_deref().ok_or_else(|| {
            RestoreError::Invalid(format!("the backup records no checksum for {}", p.path))
        })?;
        let item = match &f.item {
            Some(name) => Some(
                backup
                    .manifest
                    .items
                    .iter()
                    .find(|i| &i.name == name)
                    .ok_or_else(|| {
                        RestoreError::NotFound(format!(
                            "the content of {} (item {name:?}) is missing from the manifest",
                            p.path
                        ))
                    })?,
            ),
            None if f.size == 0 => None,
            None => {
                return Err(RestoreError::NotFound(format!(
                    "the backup records no content for {} ({} bytes)",
                    p.path, f.size
                )))
            }
        };
        self.parents(&p.target, &p.path)?;
        let tmp = Self::tmp_name(&p.target);
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
            .map_err(io_err(format!("creating {}", tmp.display())))?;
        let written = async {
            let mut hasher = blake3::Hasher::new();
            let mut size = 0u64;
            if let Some(item) = item {
                let s = reader::item_stream(store, item);
                futures::pin_mut!(s);
                while let Some(chunk) = s.next().await {
                    let chunk = chunk?;
                    hasher.update(&chunk);
                    size += chunk.len() as u64;
                    out.write_all(&chunk)
                        .map_err(io_err(format!("writing {}", tmp.display())))?;
                }
            }
            let got = hasher.finalize().to_hex().to_string();
            if size != f.size || got != expected {
                return Err(RestoreError::Store(crate::store::StoreError::Invalid(format!(
                    "the content of {} read from the store ({size} bytes, BLAKE3 {}) does not match the \
                     backup's record ({} bytes, BLAKE3 {}): not written",
                    p.path,
                    &got[..16],
                    f.size,
                    expected.get(..16).unwrap_or(expected)
                ))));
            }
            if self.chown {
                std::os::unix::fs::fchown(&out, Some(f.uid), Some(f.gid))
                    .map_err(io_err(format!("setting the owner of {}", tmp.display())))?;
            }
            out.set_permissions(std::fs::Permissions::from_mode(f.mode))
                .map_err(io_err(format!("setting the mode of {}", tmp.display())))?;
            out.set_times(std::fs::FileTimes::new().set_modified(system_time(f.mtime_ms)))
                .map_err(io_err(format!("setting the mtime of {}", tmp.display())))?;
            out.sync_all()
                .map_err(io_err(format!("syncing {}", tmp.display())))?;
            let kept = self.keep(&p.target)?;
            std::fs::rename(&tmp, &p.target)
                .map_err(io_err(format!("renaming into {}", p.target.display())))?;
            Ok::<_, RestoreError>((size, kept))
        }
        .await;
        let (size, kept) = match written {
            Ok(r) => r,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        if let Some(up) = p.target.parent() {
            fsync_dir(up).map_err(io_err(format!("syncing {}", up.display())))?;
        }
        let verb = if p.action == "create" {
            "created"
        } else {
            "replaced"
        };
        Ok(match kept {
            Some(k) => format!(
                "{verb}, {size} bytes, mode {:o} (the previous file kept as {})",
                f.mode,
                k.display()
            ),
            None => format!("{verb}, {size} bytes, mode {:o}", f.mode),
        })
    }
}

/// The recorded paths a plan leaves out because of `--only` (for messages).
pub fn left_out(backup: &ChosenBackup, plan: &[PlannedFile]) -> usize {
    let planned: BTreeSet<&[u8]> = plan.iter().map(|p| p.raw.as_slice()).collect();
    backup
        .manifest
        .contents
        .as_ref()
        .map(|c| {
            c.config_files
                .iter()
                .filter(|f| !planned.contains(f.path_raw()))
                .count()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_of_older_backups_are_cleaned_never_above_the_root() {
        assert_eq!(
            cleaned(b"/opt/n8n/../n8n/./.env").unwrap(),
            b"/opt/n8n/.env"
        );
        assert_eq!(cleaned(b"/etc//nginx/").unwrap(), b"/etc/nginx");
        for bad in [
            &b"/../etc"[..],
            b"/a/../../b",
            b"etc/x",
            b"/",
            b"/a/..",
            b"/a\0",
        ] {
            assert!(cleaned(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn recorded_paths_must_be_clean_and_absolute() {
        assert!(components(b"/etc/nginx/nginx.conf").is_ok());
        assert!(components(b"/etc/nginx/caf\xe9.conf").is_ok());
        for bad in [
            &b"etc/passwd"[..],
            b"/../../etc/passwd",
            b"/etc/../passwd",
            b"/etc/./x",
            b"/etc//x",
            b"/etc/x/",
            b"/",
            b"",
            b"/etc/\0x",
        ] {
            assert!(components(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_root_that_does_not_exist_yet_is_planned_where_it_will_be() {
        let d = tempfile::tempdir().unwrap();
        let canon = std::fs::canonicalize(d.path()).unwrap();
        assert_eq!(canonical_root(d.path()).unwrap(), canon);
        assert_eq!(
            canonical_root(&d.path().join("a/b")).unwrap(),
            canon.join("a/b")
        );
        std::fs::write(d.path().join("f"), b"").unwrap();
        assert!(canonical_root(&d.path().join("f")).is_err());
    }
}
