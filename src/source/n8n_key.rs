//! Where n8n's encryption key is: one finder for every place that looks for
//! it (the fingerprint a backup records, `restore full`'s check that n8n can
//! decrypt its credentials after the restore, and verification's test
//! decryption of a credential).
//!
//! n8n reads `N8N_ENCRYPTION_KEY` (or the file named by
//! `N8N_ENCRYPTION_KEY_FILE`) from its environment. On a docker compose
//! server that environment is written in the compose project, which the
//! finder reads as docker compose does:
//!
//! 1. Each compose file among the files (`docker-compose.yml`,
//!    `docker-compose.yaml`, `compose.yml`, `compose.yaml`), in order: its n8n
//!    service (the service named `n8n`, else the first whose image is n8n's,
//!    `n8nio/n8n` or `docker.n8n.io/n8nio/n8n`; YAML anchors and `<<` merges
//!    applied, as queue-mode setups share one block between n8n and its
//!    workers):
//!    - `environment`, as a map (`N8N_ENCRYPTION_KEY: value`) or a list
//!      (`- N8N_ENCRYPTION_KEY=value`), wins over
//!    - `env_file`, a path or a list of paths (or of `{path: ...}` maps),
//!      relative to the compose file's directory, read as `.env` files
//!      ([`crate::source::config_files::env_value`]); of several, the last
//!      that sets the key wins;
//!    - values in the compose file are interpolated as docker compose does
//!      (`${VAR}`, `$VAR`, `${VAR:-default}`, `${VAR-default}`,
//!      `${VAR:?error}`, `$$` for a `$`) from the project's `.env` (beside the
//!      compose file);
//!    - `N8N_ENCRYPTION_KEY_FILE` (when the key itself is not set) names a
//!      file inside the container: `/run/secrets/NAME` of a top-level
//!      `secrets: NAME: file: PATH`, or a path under a bind mount
//!      (`volumes: - HOST:CONTAINER`); the key is that file's content, less
//!      its final line break.
//! 2. Else each file named `.env` among the files, in order (n8n run without
//!    compose, or a compose file that was not backed up).
//!
//! The source of a key is the file that holds its text (the env file, the
//! `.env` an interpolation read, the compose file itself, the key file).
//! The process's own environment is the caller's last resort, not the
//! finder's.
use super::config_files::env_value;
use serde_yaml_ng::Value;
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use store_format::contents::{ConfigFile, FileType};
use zeroize::Zeroizing;

/// The environment variable (and `.env` key) holding n8n's encryption key.
pub const KEY_VAR: &str = "N8N_ENCRYPTION_KEY";
/// The variable naming a file that holds the key.
pub const KEY_FILE_VAR: &str = "N8N_ENCRYPTION_KEY_FILE";

/// The names docker compose looks for.
pub const COMPOSE_FILE_NAMES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// A key found, and the file that holds its text.
#[derive(Clone, PartialEq, Eq)]
pub struct FoundKey {
    pub key: Zeroizing<String>,
    pub source: String,
}

impl std::fmt::Debug for FoundKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FoundKey")
            .field("key", &"<redacted>")
            .field("source", &self.source)
            .finish()
    }
}

/// Reads a file by its absolute path (as recorded), up to a size the caller
/// chooses; None when it is not there.
pub type Reader<'a> = dyn FnMut(&str) -> Option<Vec<u8>> + 'a;

/// Finds the key among `files` (as a backup records them), reading their
/// content (and the files they reference) through `read`. See the module
/// documentation for the order.
pub fn find(files: &[ConfigFile], read: &mut Reader<'_>) -> Option<FoundKey> {
    let is_file = |f: &&ConfigFile| f.file_type == FileType::File && f.path_bytes.is_none();
    for f in files.iter().filter(is_file) {
        let name = Path::new(&f.path).file_name().and_then(|n| n.to_str());
        if name.is_some_and(|n| COMPOSE_FILE_NAMES.contains(&n)) {
            if let Some(k) = from_compose(&f.path, read) {
                return Some(k);
            }
        }
    }
    for f in files.iter().filter(is_file) {
        if Path::new(&f.path).file_name().and_then(|n| n.to_str()) == Some(".env") {
            if let Some(k) = from_env_file(&f.path, read) {
                return Some(k);
            }
        }
    }
    None
}

fn text(read: &mut Reader<'_>, path: &str) -> Option<String> {
    read(path).map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn from_env_file(path: &str, read: &mut Reader<'_>) -> Option<FoundKey> {
    let t = Zeroizing::new(text(read, path)?);
    env_value(&t, KEY_VAR).map(|key| FoundKey {
        key,
        source: path.to_string(),
    })
}

/// `rel` against the compose file's directory, without `.` and `..`.
fn resolve(dir: &Path, rel: &str) -> String {
    let joined = dir.join(rel);
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out.to_string_lossy().into_owned()
}

/// The variables of a `.env` text, as docker compose reads them for
/// interpolation (the last assignment of a name wins).
fn env_map(text: &str) -> HashMap<String, Zeroizing<String>> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let line = line.trim_start_matches('\u{feff}').trim_start();
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        if line.starts_with('#') {
            continue;
        }
        let Some((k, _)) = line.split_once('=') else {
            continue;
        };
        let k = k.trim();
        if k.is_empty() || out.contains_key(k) {
            continue;
        }
        if let Some(v) = env_value(text, k) {
            out.insert(k.to_string(), v);
        } else {
            out.insert(k.to_string(), Zeroizing::new(String::new()));
        }
    }
    out
}

/// `s` with docker compose's interpolation applied; also whether it read a
/// variable.
fn interpolate(s: &str, vars: &HashMap<String, Zeroizing<String>>) -> (Zeroizing<String>, bool) {
    let mut out = Zeroizing::new(String::new());
    let mut used = false;
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(a) = after.strip_prefix('$') {
            out.push('$');
            rest = a;
        } else if let Some(a) = after.strip_prefix('{') {
            let Some(end) = a.find('}') else {
                out.push_str(&rest[i..]);
                rest = "";
                break;
            };
            let expr = &a[..end];
            rest = &a[end + 1..];
            let (name, op, arg) = match expr.find([':', '-', '?', '+']) {
                Some(p) => {
                    let (n, o) = expr.split_at(p);
                    if let Some(o2) = o.strip_prefix(':') {
                        let (op, arg) = o2.split_at(o2.len().min(1));
                        (n, format!(":{op}"), arg)
                    } else {
                        let (op, arg) = o.split_at(1);
                        (n, op.to_string(), arg)
                    }
                }
                None => (expr, String::new(), ""),
            };
            let value = vars.get(name).map(|v| v.as_str());
            used = true;
            let v = match (op.as_str(), value) {
                (":-", Some(v)) if !v.is_empty() => v.to_string(),
                (":-", _) => arg.to_string(),
                ("-", Some(v)) => v.to_string(),
                ("-", None) => arg.to_string(),
                (":+", Some(v)) if !v.is_empty() => arg.to_string(),
                ("+", Some(_)) => arg.to_string(),
                (":+" | "+", _) => String::new(),
                (_, Some(v)) => v.to_string(),
                (_, None) => String::new(),
            };
            out.push_str(&v);
        } else {
            let n = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if n == 0 {
                out.push('$');
                rest = after;
            } else {
                used = true;
                if let Some(v) = vars.get(&after[..n]) {
                    out.push_str(v);
                }
                rest = &after[n..];
            }
        }
    }
    out.push_str(rest);
    (out, used)
}

/// A scalar of the compose file as text (numbers and booleans as written).
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `name` in a service's `environment` (map or list), as written.
fn environment_value(service: &Value, name: &str) -> Option<String> {
    match service.get("environment")? {
        Value::Mapping(m) => m.get(name).and_then(scalar),
        Value::Sequence(list) => list.iter().filter_map(Value::as_str).rev().find_map(|e| {
            let (k, v) = e.split_once('=')?;
            (k.trim() == name).then(|| v.to_string())
        }),
        _ => None,
    }
}

fn is_n8n_image(image: &str) -> bool {
    let repo = image.split(['@']).next().unwrap_or(image);
    let repo = match repo.rfind(':') {
        Some(p) if !repo[p..].contains('/') => &repo[..p],
        _ => repo,
    };
    repo == "n8nio/n8n" || repo.ends_with("/n8nio/n8n") || repo == "n8n"
}

/// The n8n service of a compose document.
fn n8n_service(doc: &Value) -> Option<&Value> {
    let services = doc.get("services")?.as_mapping()?;
    if let Some(s) = services.get("n8n") {
        return Some(s);
    }
    services.iter().map(|(_, s)| s).find(|s| {
        s.get("image")
            .and_then(Value::as_str)
            .is_some_and(is_n8n_image)
    })
}

fn from_compose(path: &str, read: &mut Reader<'_>) -> Option<FoundKey> {
    let source = Zeroizing::new(text(read, path)?);
    let mut doc: Value = match serde_yaml_ng::from_str(&source) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!("{path} is not a compose file n8n-ark can read ({e}): looked past it for N8N_ENCRYPTION_KEY");
            return None;
        }
    };
    let _ = doc.apply_merge();
    let service = n8n_service(&doc)?;
    let dir = Path::new(path).parent().unwrap_or(Path::new("/"));
    let dot_env = resolve(dir, ".env");
    let vars = text(read, &dot_env)
        .map(|t| env_map(&Zeroizing::new(t)))
        .unwrap_or_default();
    let expand = |raw: &str, own: &str| -> Option<FoundKey> {
        let (v, used) = interpolate(raw, &vars);
        (!v.is_empty()).then(|| FoundKey {
            key: v,
            source: if used {
                dot_env.clone()
            } else {
                own.to_string()
            },
        })
    };
    // `environment` wins over `env_file`.
    if let Some(raw) = environment_value(service, KEY_VAR) {
        let raw = Zeroizing::new(raw);
        return expand(&raw, path);
    }
    let env_files: Vec<String> = match service.get("env_file") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Sequence(list)) => list
            .iter()
            .filter_map(|e| match e {
                Value::String(s) => Some(s.clone()),
                m @ Value::Mapping(_) => m.get("path").and_then(Value::as_str).map(String::from),
                _ => None,
            })
            .collect(),
        _ => vec![],
    };
    let mut found = None;
    let mut key_file = environment_value(service, KEY_FILE_VAR);
    for f in &env_files {
        let (rel, _) = interpolate(f, &vars);
        let p = resolve(dir, &rel);
        let Some(t) = text(read, &p).map(Zeroizing::new) else {
            continue;
        };
        if let Some(key) = env_value(&t, KEY_VAR) {
            found = Some(FoundKey { key, source: p });
        } else if key_file.is_none() {
            key_file = env_value(&t, KEY_FILE_VAR).map(|v| v.to_string());
        }
    }
    if found.is_some() {
        return found;
    }
    let key_file = key_file?;
    let (inside, _) = interpolate(&key_file, &vars);
    let host = key_file_on_host(&doc, service, dir, &inside, &vars)?;
    let content = Zeroizing::new(text(read, &host)?);
    let key = content.trim_end_matches(['\n', '\r']);
    (!key.is_empty()).then(|| FoundKey {
        key: Zeroizing::new(key.to_string()),
        source: host,
    })
}

/// Where a file inside the n8n container is on the host: a compose secret
/// (`/run/secrets/NAME`) or a bind mount.
fn key_file_on_host(
    doc: &Value,
    service: &Value,
    dir: &Path,
    inside: &str,
    vars: &HashMap<String, Zeroizing<String>>,
) -> Option<String> {
    if let Some(name) = inside.strip_prefix("/run/secrets/") {
        if let Some(file) = doc
            .get("secrets")
            .and_then(|s| s.get(name))
            .and_then(|s| s.get("file"))
            .and_then(Value::as_str)
        {
            return Some(resolve(dir, &interpolate(file, vars).0));
        }
    }
    for v in service.get("volumes")?.as_sequence()? {
        let (host, container) = match v {
            Value::String(s) => {
                let mut parts = s.splitn(3, ':');
                (parts.next()?.to_string(), parts.next()?.to_string())
            }
            m @ Value::Mapping(_) => (
                m.get("source").and_then(Value::as_str)?.to_string(),
                m.get("target").and_then(Value::as_str)?.to_string(),
            ),
            _ => continue,
        };
        let host = interpolate(&host, vars).0;
        if !(host.starts_with('.') || host.starts_with('/')) {
            continue; // a named volume: not on the host's file tree
        }
        let container = container.trim_end_matches('/');
        let rest = if inside == container {
            ""
        } else if let Some(r) = inside.strip_prefix(&format!("{container}/")) {
            r
        } else {
            continue;
        };
        let base = resolve(dir, &host);
        return Some(if rest.is_empty() {
            base
        } else {
            resolve(Path::new(&base), rest)
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> ConfigFile {
        ConfigFile {
            path: path.into(),
            file_type: FileType::File,
            ..Default::default()
        }
    }

    fn find_in(files: &[(&str, &str)]) -> Option<(String, String)> {
        let map: HashMap<String, Vec<u8>> = files
            .iter()
            .map(|(p, t)| (p.to_string(), t.as_bytes().to_vec()))
            .collect();
        let recorded: Vec<ConfigFile> = files.iter().map(|(p, _)| file(p)).collect();
        find(&recorded, &mut |p: &str| map.get(p).cloned()).map(|k| (k.key.to_string(), k.source))
    }

    #[test]
    fn env_file_string_and_list_forms() {
        let compose = "services:\n  n8n:\n    image: docker.n8n.io/n8nio/n8n:1.123.0\n    env_file: n8n.env\n";
        assert_eq!(
            find_in(&[
                ("/opt/n8n/docker-compose.yml", compose),
                ("/opt/n8n/n8n.env", "N8N_ENCRYPTION_KEY=from-n8n-env\n"),
            ]),
            Some(("from-n8n-env".into(), "/opt/n8n/n8n.env".into()))
        );
        let compose = "services:\n  app:\n    image: n8nio/n8n\n    env_file:\n      - ./common.env\n      - path: ./secrets/n8n.env\n        required: false\n";
        assert_eq!(
            find_in(&[
                ("/srv/compose.yaml", compose),
                ("/srv/common.env", "N8N_ENCRYPTION_KEY=first\nTZ=UTC\n"),
                ("/srv/secrets/n8n.env", "N8N_ENCRYPTION_KEY=last-wins\n"),
            ]),
            Some(("last-wins".into(), "/srv/secrets/n8n.env".into()))
        );
    }

    #[test]
    fn environment_map_and_list_with_interpolation() {
        let compose = "services:\n  n8n:\n    image: n8nio/n8n\n    env_file: n8n.env\n    environment:\n      N8N_ENCRYPTION_KEY: ${N8N_KEY}\n      N8N_PORT: 5678\n";
        // environment wins over env_file; the value is read from .env.
        assert_eq!(
            find_in(&[
                ("/opt/n8n/docker-compose.yaml", compose),
                ("/opt/n8n/n8n.env", "N8N_ENCRYPTION_KEY=loses\n"),
                ("/opt/n8n/.env", "N8N_KEY=\"from-dot-env\"\n"),
            ]),
            Some(("from-dot-env".into(), "/opt/n8n/.env".into()))
        );
        let compose = "services:\n  n8n:\n    image: n8nio/n8n\n    environment:\n      - DB_TYPE=postgresdb\n      - N8N_ENCRYPTION_KEY=inline-$$-key\n";
        assert_eq!(
            find_in(&[("/opt/n8n/compose.yml", compose)]),
            Some(("inline-$-key".into(), "/opt/n8n/compose.yml".into()))
        );
        let compose = "services:\n  n8n:\n    image: n8nio/n8n\n    environment:\n      N8N_ENCRYPTION_KEY: ${MISSING:-fallback}\n";
        assert_eq!(
            find_in(&[("/a/compose.yml", compose)]).unwrap().0,
            "fallback"
        );
    }

    #[test]
    fn queue_mode_anchors_and_key_files() {
        // n8n and its worker share one block through an anchor and a merge.
        let compose = "x-shared: &shared\n  image: docker.n8n.io/n8nio/n8n\n  environment:\n    - N8N_ENCRYPTION_KEY_FILE=/run/secrets/n8n_key\nservices:\n  n8n-main:\n    <<: *shared\n  n8n-worker:\n    <<: *shared\n    command: worker\nsecrets:\n  n8n_key:\n    file: ./secrets/key.txt\n";
        assert_eq!(
            find_in(&[
                ("/opt/n8n/docker-compose.yml", compose),
                ("/opt/n8n/secrets/key.txt", "secret-in-a-file\n"),
            ]),
            Some(("secret-in-a-file".into(), "/opt/n8n/secrets/key.txt".into()))
        );
        let compose = "services:\n  n8n:\n    image: n8nio/n8n:latest\n    environment:\n      N8N_ENCRYPTION_KEY_FILE: /keys/n8n\n    volumes:\n      - n8n_data:/home/node/.n8n\n      - ./keys:/keys:ro\n";
        assert_eq!(
            find_in(&[
                ("/opt/n8n/docker-compose.yml", compose),
                ("/opt/n8n/keys/n8n", "mounted-key"),
            ]),
            Some(("mounted-key".into(), "/opt/n8n/keys/n8n".into()))
        );
    }

    #[test]
    fn a_plain_env_file_when_no_compose_file_says() {
        let compose = "services:\n  postgres:\n    image: postgres:15\n";
        assert_eq!(
            find_in(&[
                ("/opt/n8n/docker-compose.yml", compose),
                ("/opt/n8n/.env", "N8N_ENCRYPTION_KEY=plain\n"),
            ]),
            Some(("plain".into(), "/opt/n8n/.env".into()))
        );
        assert_eq!(find_in(&[("/opt/n8n/compose.yaml", "not: [yaml")]), None);
        assert_eq!(find_in(&[]), None);
        assert!(is_n8n_image("n8nio/n8n"));
        assert!(is_n8n_image("docker.n8n.io/n8nio/n8n:1.123.0"));
        assert!(is_n8n_image("n8nio/n8n@sha256:abc"));
        assert!(!is_n8n_image("postgres:15"));
        assert!(!is_n8n_image("n8nio/runners"));
    }
}
