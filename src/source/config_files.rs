//! Config files, certificates and `.env`: the files around n8n that a rebuilt
//! server needs besides its database.
//!
//! Each configured path is an absolute path or a glob (`*`, `?`, `[...]`, as
//! the `glob` crate reads them). It is recorded where it really is, so that
//! what a backup records a restore can write back: its directories are
//! resolved as the system resolves them (`..`, `.`, repeated slashes and
//! symlinked directories: `/opt/n8n/current/.env`, where `current` links to
//! `releases/5`, is recorded as `/opt/n8n/releases/5/.env`), its last
//! component is kept as it is (a symlink is recorded as the link). A path
//! whose directories do not exist is missing; it is recorded with `..`
//! resolved by name. What it names is recorded as it is on disk, never
//! through a symlink:
//! - a regular file: its content becomes the item `config{path}` (e.g.
//!   `config/etc/nginx/nginx.conf`; one blob up to [`BLOB_LIMIT`], a chunked
//!   stream above), with its permission bits, owner, group, mtime, size and
//!   BLAKE3 checksum;
//! - a directory: recorded (mode, owner, mtime), then walked recursively in
//!   byte order of the names, never following a symlink;
//! - a symlink: recorded with its target as written (`readlink`), whatever
//!   it points at, never followed (Let's Encrypt's `live/` links into
//!   `archive/`, Debian's nginx `modules-enabled/` links into `/usr/share`
//!   are restored as links);
//! - anything else (socket, FIFO, device): skipped, with a warning.
//!
//! File names are bytes on Linux: a path (or a link target) that is not UTF-8
//! is recorded with its exact bytes in `path_bytes` (`link_target_bytes`)
//! and a readable form in `path` (`link_target`), every byte that is not
//! valid UTF-8 written as `\xNN`; its content item is `config-bytes/` and
//! the path's bytes in hex.
//!
//! A path reached twice (given twice, matched by two globs, or inside a
//! directory also given) is recorded once. A missing optional path gives one
//! [`FileType::Missing`] entry (so a restore knows it was absent, not
//! forgotten); a missing required one fails the backup. Anything that exists
//! but cannot be read (permission denied, I/O error) fails the backup, required
//! or not: an operator must know that their backup misses something.
//!
//! The n8n encryption key (`N8N_ENCRYPTION_KEY`, which decrypts the stored
//! credentials) is looked for as n8n gets it: through the backed-up compose
//! file's n8n service (its `environment`, its `env_file`s, the project's
//! `.env` it interpolates, a key file), else in a backed-up `.env` (see
//! [`crate::source::n8n_key`]), then in this process's environment. It is
//! never recorded nor logged: only a keyed fingerprint ([`fingerprint`]) lets
//! a restore tell whether a target instance uses the same key. A key found in
//! a file the backup does not hold (an `env_file` outside the configured
//! paths) is fingerprinted with a warning: a restore would lack it.
use super::{Result, SourceError};
use crate::store::ingest::BackupSession;
use crate::store::{Store, StoreError};
use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use store_format::contents::{ConfigFile, FileType};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use zeroize::Zeroizing;

/// Files up to this size are stored whole (one object); larger ones are cut
/// into content-defined chunks.
pub const BLOB_LIMIT: u64 = 4 << 20;

/// The environment variable (and `.env` key) holding n8n's encryption key.
pub const ENCRYPTION_KEY_VAR: &str = "N8N_ENCRYPTION_KEY";

/// The BLAKE3 `derive_key` context of the fingerprint key.
pub const FINGERPRINT_CONTEXT: &str = "n8n-ark 2026-11 n8n encryption key fingerprint";

/// One configured path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigPath {
    /// An absolute path, or an absolute glob.
    pub pattern: String,
    /// A required path that is missing (or a glob that matches nothing) fails
    /// the backup; an optional one is recorded as missing.
    pub required: bool,
}

impl ConfigPath {
    pub fn optional(pattern: impl Into<String>) -> Self {
        ConfigPath {
            pattern: pattern.into(),
            required: false,
        }
    }
    pub fn required(pattern: impl Into<String>) -> Self {
        ConfigPath {
            pattern: pattern.into(),
            required: true,
        }
    }
}

/// The usual single-server layout (n8n's docker-compose project in
/// `/opt/n8n`, nginx in front, certificates from certbot), all optional:
///
/// | path | what it is |
/// | --- | --- |
/// | `/opt/n8n/.env` | the compose project's environment: `N8N_ENCRYPTION_KEY`, database passwords, host names |
/// | `/opt/n8n/docker-compose.yml`, `/opt/n8n/docker-compose.yaml`, `/opt/n8n/compose.yaml` | the compose file, under any of the names docker compose looks for |
/// | `/etc/nginx/nginx.conf` | nginx's main configuration |
/// | `/etc/nginx/conf.d` | site configurations (RHEL, Docker images) |
/// | `/etc/nginx/sites-available`, `/etc/nginx/sites-enabled` | site configurations (Debian, Ubuntu; `sites-enabled` holds symlinks) |
/// | `/etc/letsencrypt` | certbot's certificates and private keys: `live/` (symlinks), `archive/` (the files), `renewal/` (renewal settings), `accounts/` |
pub fn default_paths() -> Vec<ConfigPath> {
    [
        "/opt/n8n/.env",
        "/opt/n8n/docker-compose.yml",
        "/opt/n8n/docker-compose.yaml",
        "/opt/n8n/compose.yaml",
        "/etc/nginx/nginx.conf",
        "/etc/nginx/conf.d",
        "/etc/nginx/sites-available",
        "/etc/nginx/sites-enabled",
        "/etc/letsencrypt",
    ]
    .into_iter()
    .map(ConfigPath::optional)
    .collect()
}

/// What a config backup recorded.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConfigBackup {
    /// Every entry, in the order the paths were given and walked.
    pub files: Vec<ConfigFile>,
    /// [`fingerprint`] of `N8N_ENCRYPTION_KEY`, when it was found.
    pub encryption_key_fingerprint: Option<String>,
    /// Where it was found: a `.env` file's path, or `environment`.
    pub encryption_key_source: Option<String>,
}

/// The item holding the content of the file at `path`.
pub fn item_name(path: &str) -> String {
    format!("config{path}")
}

/// The item holding the content of the file at `path` (its exact bytes):
/// [`item_name`] when the path is UTF-8, else `config-bytes/` and the bytes
/// in hex (never the name of another path's item).
pub fn item_name_of(path: &[u8]) -> String {
    match std::str::from_utf8(path) {
        Ok(p) => item_name(p),
        Err(_) => format!("config-bytes/{}", hex::encode(path)),
    }
}

/// `path` and `path_bytes` of a recorded path.
fn recorded_path(p: &Path) -> (String, Option<Vec<u8>>) {
    let raw = p.as_os_str().as_bytes();
    match std::str::from_utf8(raw) {
        Ok(s) => (s.to_string(), None),
        Err(_) => (
            store_format::contents::readable_path(raw),
            Some(raw.to_vec()),
        ),
    }
}

/// The key of the encryption-key fingerprints of `store`: derived from the
/// master key when the store is encrypted (the fingerprint then tells nothing
/// to whoever lacks the key), else from the store's id.
pub fn fingerprint_key(store: &Store) -> [u8; 32] {
    match store.master_key() {
        Some(k) => blake3::derive_key(FINGERPRINT_CONTEXT, k),
        None => blake3::derive_key(FINGERPRINT_CONTEXT, store.config().id.as_bytes()),
    }
}

/// The fingerprint of an n8n encryption key: keyed BLAKE3 of its UTF-8, hex.
pub fn fingerprint(key: &[u8; 32], n8n_encryption_key: &str) -> String {
    blake3::keyed_hash(key, n8n_encryption_key.as_bytes())
        .to_hex()
        .to_string()
}

/// Backs up `paths` into `session` (see the module documentation).
/// `env_key` is `N8N_ENCRYPTION_KEY` as the operation's environment gives
/// it: fingerprinted when no backed-up file gives the key.
pub async fn back_up(
    session: &mut BackupSession,
    paths: &[ConfigPath],
    fingerprint_key: &[u8; 32],
    env_key: Option<&str>,
) -> Result<ConfigBackup> {
    let mut w = Walker {
        session,
        files: Vec::new(),
        seen: HashMap::new(),
    };
    for p in paths {
        w.configured(p).await?;
    }
    let Walker { files, .. } = w;
    let found = super::n8n_key::find(&files, &mut |p: &str| read_small(Path::new(p)));
    let (key, source) = match found {
        Some(k) => {
            let backed_up = files
                .iter()
                .any(|f| f.path == k.source && f.file_type == FileType::File);
            if !backed_up {
                tracing::warn!(
                    "{ENCRYPTION_KEY_VAR} was found in {}, which this backup does not hold: add it to \
                     the config paths, or a restore of this backup lacks n8n's key",
                    k.source
                );
            }
            (Some(k.key), Some(k.source))
        }
        None => match env_key {
            Some(k) if !k.is_empty() => (
                Some(Zeroizing::new(k.to_string())),
                Some("environment".to_string()),
            ),
            _ => (None, None),
        },
    };
    if key.is_none() {
        tracing::warn!(
            "{ENCRYPTION_KEY_VAR} was found neither through a backed-up compose file or .env file nor \
             in the environment: a restore cannot check that the target n8n can decrypt the credentials"
        );
    }
    Ok(ConfigBackup {
        files,
        encryption_key_fingerprint: key.map(|k| fingerprint(fingerprint_key, &k)),
        encryption_key_source: source,
    })
}

struct Walker<'a> {
    session: &'a mut BackupSession,
    files: Vec<ConfigFile>,
    /// Recorded paths (exact bytes) and their index in `files`.
    seen: HashMap<Vec<u8>, usize>,
}

/// A regular file's content (never through a symlink at its last
/// component), up to 1 MiB; None otherwise.
pub fn read_small(p: &Path) -> Option<Vec<u8>> {
    let md = std::fs::symlink_metadata(p).ok()?;
    if !md.is_file() || md.len() > 1 << 20 {
        return None;
    }
    std::fs::read(p).ok()
}

fn is_glob(p: &str) -> bool {
    p.contains(['*', '?', '['])
}

/// Where an absolute path really is (see the module documentation): its
/// directories resolved as the system resolves them, its last component as
/// it is; a path whose directories do not exist with `..` resolved by name.
fn normalise(p: &Path) -> PathBuf {
    use std::path::Component;
    let lexical = |p: &Path| -> PathBuf {
        let mut out = PathBuf::from("/");
        for c in p.components() {
            match c {
                Component::Normal(n) => out.push(n),
                Component::ParentDir => {
                    out.pop();
                }
                _ => {}
            }
        }
        out
    };
    let comps: Vec<Component> = p.components().collect();
    match comps.last() {
        // Ends in a name: resolve what holds it, keep the name.
        Some(Component::Normal(name)) => {
            let dir: PathBuf = comps[..comps.len() - 1].iter().collect();
            match std::fs::canonicalize(&dir) {
                Ok(d) => d.join(name),
                Err(_) => lexical(p),
            }
        }
        // `/`, or ends in `..` or `.`: a directory, resolved whole.
        _ => std::fs::canonicalize(p).unwrap_or_else(|_| lexical(p)),
    }
}

fn is_not_found(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR)
}

fn mtime_ms(md: &std::fs::Metadata) -> i64 {
    md.mtime()
        .saturating_mul(1000)
        .saturating_add(md.mtime_nsec() / 1_000_000)
}

fn entry(path: &Path, file_type: FileType, required: bool, md: &std::fs::Metadata) -> ConfigFile {
    let (path, path_bytes) = recorded_path(path);
    ConfigFile {
        path,
        path_bytes,
        file_type,
        required,
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        mtime_ms: mtime_ms(md),
        ..Default::default()
    }
}

impl Walker<'_> {
    async fn configured(&mut self, p: &ConfigPath) -> Result<()> {
        let pattern = p.pattern.as_str();
        if !pattern.starts_with('/') {
            return Err(SourceError::File(format!(
                "config path {pattern:?} is not absolute (config paths must start with /)"
            )));
        }
        if !is_glob(pattern) {
            return self.top(Path::new(pattern), p.required).await;
        }
        let matches = glob::glob(pattern).map_err(|e| {
            SourceError::File(format!("config path {pattern:?} is not a valid glob: {e}"))
        })?;
        let mut found = Vec::new();
        for m in matches {
            match m {
                Ok(path) => found.push(path),
                Err(e) => {
                    return Err(SourceError::File(format!(
                        "cannot read {} (matching config path {pattern}): {}",
                        e.path().display(),
                        e.error()
                    )))
                }
            }
        }
        if found.is_empty() {
            return self.missing(pattern, p.required);
        }
        for path in found {
            self.top(&path, p.required).await?;
        }
        Ok(())
    }

    fn missing(&mut self, path: &str, required: bool) -> Result<()> {
        if required {
            let what = if is_glob(path) {
                "matches nothing"
            } else {
                "does not exist"
            };
            return Err(SourceError::File(format!(
                "required config path {path} {what}"
            )));
        }
        if !self.seen.contains_key(path.as_bytes()) {
            self.seen.insert(path.as_bytes().to_vec(), self.files.len());
            self.files.push(ConfigFile {
                path: path.to_string(),
                file_type: FileType::Missing,
                ..Default::default()
            });
        }
        Ok(())
    }

    /// A configured path (or a glob's match).
    async fn top(&mut self, given: &Path, required: bool) -> Result<()> {
        let path = normalise(given);
        if path != given {
            tracing::info!(
                "config path {} is recorded where it is: {}",
                given.display(),
                path.display()
            );
        }
        let key = path.as_os_str().as_bytes().to_vec();
        if let Some(&i) = self.seen.get(&key) {
            let f = &mut self.files[i];
            if f.file_type == FileType::Missing {
                let p = f.path.clone();
                return self.missing(&p, required);
            }
            f.required |= required;
            return Ok(());
        }
        let md = match tokio::fs::symlink_metadata(&path).await {
            Ok(md) => md,
            Err(e) if is_not_found(&e) => {
                let (p, _) = recorded_path(&path);
                return self.missing(&p, required);
            }
            Err(e) => {
                return Err(SourceError::File(format!(
                    "cannot read config path {}: {e}",
                    path.display()
                )))
            }
        };
        if md.file_type().is_symlink() {
            tracing::warn!(
                "config path {} is a symlink: only the link is backed up, not what it points to \
                 (configure its target too to back that up)",
                path.display()
            );
        }
        self.walk(path, md, required).await
    }

    /// Records `root` and, when it is a directory, everything under it.
    async fn walk(&mut self, root: PathBuf, md: std::fs::Metadata, required: bool) -> Result<()> {
        let mut stack = vec![(root, Some(md))];
        while let Some((p, md)) = stack.pop() {
            if let Some(&i) = self.seen.get(p.as_os_str().as_bytes()) {
                self.files[i].required |= required;
                continue;
            }
            let md = match md {
                Some(md) => md,
                None => match tokio::fs::symlink_metadata(&p).await {
                    Ok(md) => md,
                    Err(e) if is_not_found(&e) => {
                        tracing::warn!(
                            "{} disappeared while its directory was backed up",
                            p.display()
                        );
                        continue;
                    }
                    Err(e) => {
                        return Err(SourceError::File(format!(
                            "cannot read {}: {e}",
                            p.display()
                        )))
                    }
                },
            };
            let ft = md.file_type();
            if ft.is_dir() {
                let children = list_dir(&p).await?;
                self.record(entry(&p, FileType::Directory, required, &md));
                for name in children.into_iter().rev() {
                    stack.push((p.join(name), None));
                }
            } else if ft.is_symlink() {
                let target = tokio::fs::read_link(&p).await.map_err(|e| {
                    SourceError::File(format!("cannot read the symlink {}: {e}", p.display()))
                })?;
                let mut f = entry(&p, FileType::Symlink, required, &md);
                let (t, t_bytes) = recorded_path(&target);
                f.link_target = Some(t);
                f.link_target_bytes = t_bytes;
                self.record(f);
            } else if ft.is_file() {
                if let Some(f) = self.file(&p, required).await? {
                    self.record(f);
                }
            } else {
                let what = if ft.is_socket() {
                    "a socket"
                } else if ft.is_fifo() {
                    "a FIFO"
                } else if ft.is_block_device() || ft.is_char_device() {
                    "a device"
                } else {
                    "not a file, directory or symlink"
                };
                tracing::warn!("skipping {}: it is {what}", p.display());
            }
        }
        Ok(())
    }

    fn record(&mut self, f: ConfigFile) {
        self.seen.insert(f.path_raw().to_vec(), self.files.len());
        self.files.push(f);
    }

    /// Stores a regular file's content; None when it turned into something
    /// else since it was listed.
    async fn file(&mut self, p: &Path, required: bool) -> Result<Option<ConfigFile>> {
        let shown = p.display();
        let unreadable =
            |e: std::io::Error| SourceError::File(format!("cannot read config file {shown}: {e}"));
        // O_NOFOLLOW: never through a symlink put there since the lstat;
        // O_NONBLOCK: a FIFO put there does not hang the backup.
        let mut file = tokio::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(p)
            .await
            .map_err(unreadable)?;
        let md = file.metadata().await.map_err(unreadable)?;
        if !md.is_file() {
            tracing::warn!("skipping {shown}: it is no longer a regular file");
            return Ok(None);
        }
        let mut f = entry(p, FileType::File, required, &md);
        let item = item_name_of(p.as_os_str().as_bytes());
        let mut head = Vec::with_capacity(md.len().min(BLOB_LIMIT) as usize + 1);
        (&mut file)
            .take(BLOB_LIMIT + 1)
            .read_to_end(&mut head)
            .await
            .map_err(unreadable)?;
        if head.len() as u64 <= BLOB_LIMIT {
            f.size = head.len() as u64;
            f.checksum = Some(blake3::hash(&head).to_hex().to_string());
            self.session.add_blob(&item, head).await?;
        } else {
            let mut hasher = blake3::Hasher::new();
            let mut size = 0u64;
            let reader = Hashing {
                inner: std::io::Cursor::new(head).chain(file),
                hasher: &mut hasher,
                size: &mut size,
            };
            self.session
                .add_stream(&item, reader)
                .await
                .map_err(|e| match e {
                    StoreError::Input(e) => unreadable(e),
                    e => SourceError::Store(e),
                })?;
            f.size = size;
            f.checksum = Some(hasher.finalize().to_hex().to_string());
        }
        f.item = Some(item);
        Ok(Some(f))
    }
}

/// The sorted names in a directory.
async fn list_dir(p: &Path) -> Result<Vec<std::ffi::OsString>> {
    let unreadable = |e: std::io::Error| {
        SourceError::File(format!("cannot read the directory {}: {e}", p.display()))
    };
    let mut rd = tokio::fs::read_dir(p).await.map_err(unreadable)?;
    let mut names = Vec::new();
    while let Some(e) = rd.next_entry().await.map_err(unreadable)? {
        names.push(e.file_name());
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

/// The value of `name` in `.env` text, as docker compose reads it: `KEY=VALUE`
/// lines, optionally after `export `; blank lines and lines starting with `#`
/// ignored; a value in double quotes (with `\` escapes) or single quotes (taken
/// literally), or bare (up to a ` #` comment, trimmed). The last assignment
/// wins; an empty value counts as absent.
pub fn env_value(text: &str, name: &str) -> Option<Zeroizing<String>> {
    let mut found = None;
    for line in text.lines() {
        let line = line.trim_start_matches('\u{feff}').trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = match line.strip_prefix("export") {
            Some(rest) if rest.starts_with([' ', '\t']) => rest.trim_start(),
            _ => line,
        };
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if k.trim_end() != name {
            continue;
        }
        let v = v.trim_start();
        let mut value = Zeroizing::new(String::new());
        if let Some(rest) = v.strip_prefix('"') {
            let mut chars = rest.chars();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => match chars.next() {
                        Some('n') => value.push('\n'),
                        Some('t') => value.push('\t'),
                        Some('r') => value.push('\r'),
                        Some(c) => value.push(c),
                        None => {}
                    },
                    c => value.push(c),
                }
            }
        } else if let Some(rest) = v.strip_prefix('\'') {
            value.push_str(rest.split('\'').next().unwrap_or(""));
        } else {
            let end = [v.find(" #"), v.find("\t#")]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(v.len());
            value.push_str(v[..end].trim_end());
        }
        found = Some(value);
    }
    found.filter(|v| !v.is_empty())
}

/// Hashes and counts what passes through it.
struct Hashing<'a, R> {
    inner: R,
    hasher: &'a mut blake3::Hasher,
    size: &'a mut u64,
}

impl<R: AsyncRead + Unpin> AsyncRead for Hashing<'_, R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &res {
            let new = &buf.filled()[before..];
            this.hasher.update(new);
            *this.size += new.len() as u64;
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values() {
        let text = "# n8n\n\
            N8N_HOST=example.org\n\
            export N8N_ENCRYPTION_KEY=first\n\
            N8N_ENCRYPTION_KEY = \"quoted \\\"key\\\" # not a comment\"  # comment\n";
        assert_eq!(
            env_value(text, "N8N_ENCRYPTION_KEY")
                .as_deref()
                .map(String::as_str),
            Some("quoted \"key\" # not a comment")
        );
        for (line, want) in [
            ("N8N_ENCRYPTION_KEY=plain", Some("plain")),
            ("N8N_ENCRYPTION_KEY=plain # comment", Some("plain")),
            ("N8N_ENCRYPTION_KEY=with#hash", Some("with#hash")),
            (
                "export\tN8N_ENCRYPTION_KEY='single $quoted\\n'",
                Some("single $quoted\\n"),
            ),
            ("  N8N_ENCRYPTION_KEY=spaced  \r", Some("spaced")),
            ("N8N_ENCRYPTION_KEY=", None),
            ("#N8N_ENCRYPTION_KEY=commented", None),
            ("N8N_ENCRYPTION_KEY_FILE=/run/secret", None),
            ("XN8N_ENCRYPTION_KEY=other", None),
            ("exportN8N_ENCRYPTION_KEY=x", None),
            ("\u{feff}N8N_ENCRYPTION_KEY=bom", Some("bom")),
        ] {
            assert_eq!(
                env_value(line, "N8N_ENCRYPTION_KEY")
                    .as_deref()
                    .map(String::as_str),
                want,
                "{line}"
            );
        }
    }

    #[test]
    fn fingerprints_are_keyed_blake3() {
        let k = [7u8; 32];
        assert_eq!(
            fingerprint(&k, "abc"),
            blake3::keyed_hash(&k, b"abc").to_hex().to_string()
        );
        assert_ne!(fingerprint(&k, "abc"), fingerprint(&[8u8; 32], "abc"));
    }

    #[test]
    fn defaults_are_absolute_and_optional() {
        let d = default_paths();
        assert!(d.iter().all(|p| p.pattern.starts_with('/') && !p.required));
        assert!(d.iter().any(|p| p.pattern == "/etc/letsencrypt"));
        assert_eq!(
            item_name("/etc/nginx/nginx.conf"),
            "config/etc/nginx/nginx.conf"
        );
        assert_eq!(
            normalise(Path::new("/etc//nginx/./conf.d/")),
            Path::new("/etc/nginx/conf.d")
        );
    }
}
