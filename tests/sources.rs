//! Sources against real things: config files in a scratch tree backed up into
//! a real (encrypted) store and read back; n8n's public API played by a local
//! HTTP server on 127.0.0.1 that pages like n8n does.
mod common;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use n8n_ark::source::config_files::{self, ConfigPath};
use n8n_ark::source::json::Json as Doc;
use n8n_ark::source::n8n_api::N8nApi;
use n8n_ark::source::workflow::canonical_from_api;
use n8n_ark::source::SourceError;
use n8n_ark::store::ingest::BackupSession;
use n8n_ark::store::Store;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use store_format::contents::{ConfigFile, FileType};
use store_format::{Contents, ItemKind, ObjectId};

const N8N_KEY: &str = "acc-n8n-fixed-encryption-key-0123456789";

fn fixture(name: &str) -> String {
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let path = if local.exists() {
        local
    } else {
        PathBuf::from("/work/shared/fixtures").join(name)
    };
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn write(path: &Path, content: &[u8], mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// A single-server layout under `root`: n8n's compose project, nginx,
/// certbot's tree with its `live/` symlinks, a few extras.
fn build_tree(root: &Path) {
    write(
        &root.join("opt/n8n/.env"),
        format!(
            "# n8n\nN8N_HOST=n8n.example.org\nexport N8N_ENCRYPTION_KEY=\"{N8N_KEY}\"  # never lose it\n\
             POSTGRES_PASSWORD=pg-secret\n"
        )
        .as_bytes(),
        0o600,
    );
    write(
        &root.join("opt/n8n/docker-compose.yml"),
        b"services:\n  n8n:\n    image: n8nio/n8n\n    env_file: .env\n  postgres:\n    image: postgres:15\n",
        0o644,
    );
    write(
        &root.join("etc/nginx/nginx.conf"),
        b"user www-data;\nhttp { include /etc/nginx/conf.d/*.conf; }\n",
        0o644,
    );
    write(
        &root.join("etc/nginx/conf.d/n8n.conf"),
        b"server { listen 443 ssl; server_name n8n.example.org;\n  ssl_certificate /etc/letsencrypt/live/n8n.example.org/fullchain.pem;\n  location / { proxy_pass http://127.0.0.1:5678; } }\n",
        0o644,
    );
    write(&root.join("etc/nginx/conf.d/zz-default.conf"), b"", 0o640);
    // A FIFO in a walked directory: skipped, not an error, and never opened.
    let fifo = std::ffi::CString::new(s(&root.join("etc/nginx/conf.d/control.fifo"))).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let le = root.join("etc/letsencrypt");
    for f in ["cert", "chain", "fullchain"] {
        write(
            &le.join(format!("archive/n8n.example.org/{f}1.pem")),
            format!("-----BEGIN CERTIFICATE-----\n{f}\n-----END CERTIFICATE-----\n").as_bytes(),
            0o644,
        );
    }
    write(
        &le.join("archive/n8n.example.org/privkey1.pem"),
        b"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n",
        0o600,
    );
    std::fs::create_dir_all(le.join("live/n8n.example.org")).unwrap();
    for f in ["cert", "chain", "fullchain", "privkey"] {
        std::os::unix::fs::symlink(
            format!("../../archive/n8n.example.org/{f}1.pem"),
            le.join(format!("live/n8n.example.org/{f}.pem")),
        )
        .unwrap();
    }
    write(
        &le.join("live/README"),
        b"This directory contains your keys.\n",
        0o644,
    );
    write(
        &le.join("renewal/n8n.example.org.conf"),
        b"version = 2.9.0\narchive_dir = /etc/letsencrypt/archive/n8n.example.org\n",
        0o644,
    );
    std::fs::set_permissions(le.join("archive"), std::fs::Permissions::from_mode(0o700)).unwrap();
    write(&root.join("srv/extra/a.conf"), b"a = 1\n", 0o644);
    write(&root.join("srv/extra/b.conf"), b"b = 2\n", 0o644);
    write(&root.join("srv/extra/c.txt"), b"not matched\n", 0o644);
    write(&root.join("srv/empty"), b"", 0o644);
    // Larger than a blob: stored as a chunked stream.
    write(
        &root.join("srv/big.bin"),
        &common::random_bytes(7, (config_files::BLOB_LIMIT as usize) + 1_234_567),
        0o644,
    );
}

async fn session(store: &Store) -> BackupSession {
    BackupSession::begin(store, "n8n_config").await.unwrap()
}

#[tokio::test]
async fn config_files_round_trip_through_a_store() {
    common::fast_kdf();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("host");
    build_tree(&root);
    let owned = root.join("opt/n8n/docker-compose.yml");
    if is_root() {
        std::os::unix::fs::chown(&owned, Some(1234), Some(5678)).unwrap();
    }
    let store = common::new_store(&tmp.path().join("store")).await;
    let fkey = config_files::fingerprint_key(&store);
    let r = |p: &str| s(&root.join(p));
    let paths = vec![
        ConfigPath::required(r("opt/n8n/.env")),
        ConfigPath::optional(r("opt/n8n/docker-compose.yml")),
        ConfigPath::optional(r("opt/n8n/docker-compose.yaml")),
        ConfigPath::optional(r("etc/nginx/nginx.conf")),
        ConfigPath::optional(r("etc/nginx/conf.d/")),
        ConfigPath::optional(r("etc/letsencrypt")),
        ConfigPath::optional(r("srv/extra/*.conf")),
        ConfigPath::optional(r("srv/nothing/*.conf")),
        ConfigPath::optional(r("srv/empty")),
        ConfigPath::optional(r("srv/big.bin")),
        // Given twice, and inside a directory given above: recorded once
        // (and required, as one of its mentions says).
        ConfigPath::optional(r("opt/n8n/.env")),
        ConfigPath::required(r("etc/nginx/conf.d/n8n.conf")),
        ConfigPath::optional(r("etc/nginx/./conf.d//n8n.conf")),
    ];
    let mut sess = session(&store).await;
    let cb = config_files::back_up(&mut sess, &paths, &fkey, None)
        .await
        .unwrap();
    let contents = Contents {
        config_files: cb.files.clone(),
        encryption_key_fingerprint: cb.encryption_key_fingerprint.clone(),
        encryption_key_source: cb.encryption_key_source.clone(),
        ..Default::default()
    };
    let summary = sess
        .commit_with(BTreeMap::new(), Some(contents))
        .await
        .unwrap();

    // What the manifest says, read back from the store.
    let manifest = store
        .read_manifest(&ObjectId::from_hex(&summary.manifest).unwrap())
        .await
        .unwrap();
    let files = manifest.contents.clone().unwrap().config_files;
    assert_eq!(files, cb.files);
    let by_path: HashMap<&str, &ConfigFile> = files.iter().map(|f| (f.path.as_str(), f)).collect();
    assert_eq!(
        by_path.len(),
        files.len(),
        "a path recorded twice: {files:#?}"
    );
    let get = |p: &str| {
        *by_path
            .get(r(p).as_str())
            .unwrap_or_else(|| panic!("{p} not recorded"))
    };
    let restored = common::restore_all(&store, &summary.manifest).await;

    // Every regular file: content, checksum, size, mode, owner, mtime.
    let mut file_count = 0;
    for f in files.iter().filter(|f| f.file_type == FileType::File) {
        file_count += 1;
        let on_disk = std::fs::read(&f.path).unwrap();
        let md = std::fs::symlink_metadata(&f.path).unwrap();
        let item = f.item.as_deref().unwrap();
        assert_eq!(item, format!("config{}", f.path));
        assert_eq!(restored[item], on_disk, "{}", f.path);
        assert_eq!(f.size, on_disk.len() as u64);
        assert_eq!(
            f.checksum.as_deref(),
            Some(blake3::hash(&on_disk).to_hex().as_str())
        );
        assert_eq!(f.mode, md.mode() & 0o7777, "{}", f.path);
        assert_eq!((f.uid, f.gid), (md.uid(), md.gid()));
        assert_eq!(f.mtime_ms, md.mtime() * 1000 + md.mtime_nsec() / 1_000_000);
        assert!(f.link_target.is_none());
    }
    // .env, compose, nginx.conf, 2 in conf.d, 4 in archive, README, renewal,
    // a.conf, b.conf, empty, big.bin.
    assert_eq!(file_count, 15, "{files:#?}");
    assert_eq!(
        get("etc/letsencrypt/archive/n8n.example.org/privkey1.pem").mode,
        0o600
    );
    assert_eq!(get("opt/n8n/.env").mode, 0o600);
    assert_eq!(get("etc/nginx/conf.d/zz-default.conf").mode, 0o640);
    if is_root() {
        let c = get("opt/n8n/docker-compose.yml");
        assert_eq!((c.uid, c.gid), (1234, 5678));
    }
    assert!(get("opt/n8n/.env").required);
    assert!(get("etc/nginx/conf.d/n8n.conf").required);
    assert!(!get("etc/nginx/nginx.conf").required);
    assert_eq!(get("srv/empty").size, 0);
    assert_eq!(restored[&format!("config{}", r("srv/empty"))], b"");
    // Small files are one blob; the big one a chunked stream.
    let kind = |p: &str| {
        manifest
            .items
            .iter()
            .find(|i| i.name == format!("config{}", r(p)))
            .unwrap()
    };
    assert_eq!(kind("etc/nginx/nginx.conf").kind, ItemKind::Blob);
    assert_eq!(kind("srv/big.bin").kind, ItemKind::Stream);
    assert!(kind("srv/big.bin").chunks.len() > 1);

    // Symlinks: recorded as written, never followed.
    for f in ["cert", "chain", "fullchain", "privkey"] {
        let l = get(&format!("etc/letsencrypt/live/n8n.example.org/{f}.pem"));
        assert_eq!(l.file_type, FileType::Symlink);
        assert_eq!(
            l.link_target.as_deref(),
            Some(format!("../../archive/n8n.example.org/{f}1.pem").as_str())
        );
        assert!(l.item.is_none() && l.checksum.is_none());
    }
    // Directories: recorded with their mode, walked in sorted order.
    assert_eq!(
        get("etc/letsencrypt/archive").file_type,
        FileType::Directory
    );
    assert_eq!(get("etc/letsencrypt/archive").mode, 0o700);
    assert_eq!(get("etc/nginx/conf.d").file_type, FileType::Directory);
    let le: Vec<&str> = files
        .iter()
        .map(|f| f.path.as_str())
        .filter(|p| p.starts_with(&r("etc/letsencrypt")))
        .collect();
    let rel: Vec<String> = le
        .iter()
        .map(|p| p[r("etc/letsencrypt").len()..].to_string())
        .collect();
    assert_eq!(
        rel,
        [
            "",
            "/archive",
            "/archive/n8n.example.org",
            "/archive/n8n.example.org/cert1.pem",
            "/archive/n8n.example.org/chain1.pem",
            "/archive/n8n.example.org/fullchain1.pem",
            "/archive/n8n.example.org/privkey1.pem",
            "/live",
            "/live/README",
            "/live/n8n.example.org",
            "/live/n8n.example.org/cert.pem",
            "/live/n8n.example.org/chain.pem",
            "/live/n8n.example.org/fullchain.pem",
            "/live/n8n.example.org/privkey.pem",
            "/renewal",
            "/renewal/n8n.example.org.conf",
        ]
    );
    // Skipped: the FIFO; not matched by the glob: c.txt.
    assert!(!by_path.contains_key(r("etc/nginx/conf.d/control.fifo").as_str()));
    assert!(!by_path.contains_key(r("srv/extra/c.txt").as_str()));
    assert_eq!(get("srv/extra/a.conf").file_type, FileType::File);
    // Missing optional paths: one entry each, the glob under its pattern.
    for p in ["opt/n8n/docker-compose.yaml", "srv/nothing/*.conf"] {
        let m = get(p);
        assert_eq!(m.file_type, FileType::Missing);
        assert!(m.item.is_none() && !m.required);
    }
    assert_eq!(summary.counts.config_files, file_count + 4 + 7);

    // The n8n encryption key: a keyed fingerprint, never the key.
    let want = blake3::keyed_hash(&fkey, N8N_KEY.as_bytes())
        .to_hex()
        .to_string();
    assert_eq!(
        cb.encryption_key_fingerprint.as_deref(),
        Some(want.as_str())
    );
    assert_eq!(
        cb.encryption_key_source.as_deref(),
        Some(r("opt/n8n/.env").as_str())
    );
    assert_eq!(config_files::fingerprint(&fkey, N8N_KEY), want);
    assert_eq!(
        fkey,
        blake3::derive_key(
            "n8n-ark 2026-11 n8n encryption key fingerprint",
            store.master_key().unwrap()
        )
    );
    let plain = manifest.encode_plaintext();
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    assert!(
        !contains(&plain, N8N_KEY.as_bytes()),
        "the key is in the manifest"
    );
    assert!(contains(&plain, want.as_bytes()));
    // Nor is it anywhere in the store's files in clear (the .env's content is
    // stored, encrypted).
    for (path, _) in common::snapshot(&tmp.path().join("store")) {
        if let Ok(b) = std::fs::read(&path) {
            assert!(!contains(&b, N8N_KEY.as_bytes()), "{path}");
        }
    }
    assert!(contains(
        &restored[&format!("config{}", r("opt/n8n/.env"))],
        N8N_KEY.as_bytes()
    ));

    // The same tree again: every object is reused.
    let mut again = session(&store).await;
    let cb2 = config_files::back_up(&mut again, &paths, &fkey, None)
        .await
        .unwrap();
    assert_eq!(cb2, cb);
    let s2 = again.commit_with(BTreeMap::new(), None).await.unwrap();
    assert_eq!(s2.new_objects, 0);
}

#[tokio::test]
async fn missing_required_and_relative_paths_are_errors() {
    common::fast_kdf();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("host");
    build_tree(&root);
    let store = common::new_store(&tmp.path().join("store")).await;
    let fkey = config_files::fingerprint_key(&store);
    let r = |p: &str| s(&root.join(p));
    let cases: Vec<(Vec<ConfigPath>, String)> = vec![
        (
            vec![
                ConfigPath::optional(r("etc/nginx/nginx.conf")),
                ConfigPath::required(r("opt/n8n/compose.yaml")),
            ],
            format!(
                "required config path {} does not exist",
                r("opt/n8n/compose.yaml")
            ),
        ),
        (
            vec![ConfigPath::required(r("srv/nothing/*.conf"))],
            format!(
                "required config path {} matches nothing",
                r("srv/nothing/*.conf")
            ),
        ),
        (
            // Missing because a parent is a file.
            vec![ConfigPath::required(r("etc/nginx/nginx.conf/sub"))],
            "does not exist".into(),
        ),
        (
            vec![ConfigPath::optional("etc/nginx/nginx.conf")],
            "config path \"etc/nginx/nginx.conf\" is not absolute".into(),
        ),
        (
            vec![ConfigPath::optional("./opt/*.env")],
            "\"./opt/*.env\" is not absolute".into(),
        ),
        (
            vec![ConfigPath::optional(r("srv/[extra"))],
            "is not a valid glob".into(),
        ),
    ];
    for (paths, want) in cases {
        let mut sess = session(&store).await;
        match config_files::back_up(&mut sess, &paths, &fkey, None).await {
            Err(SourceError::File(m)) => assert!(m.contains(&want), "{m:?} lacks {want:?}"),
            other => panic!("{paths:?}: {other:?}"),
        }
        sess.abort().await;
    }
    // The same paths optional: missing entries, no error.
    let mut sess = session(&store).await;
    let cb = config_files::back_up(
        &mut sess,
        &[
            ConfigPath::optional(r("opt/n8n/compose.yaml")),
            ConfigPath::optional(r("etc/nginx/nginx.conf/sub")),
            ConfigPath::optional(r("opt/n8n/compose.yaml")),
        ],
        &fkey,
        None,
    )
    .await
    .unwrap();
    sess.abort().await;
    let kinds: Vec<(String, FileType)> = cb
        .files
        .iter()
        .map(|f| (f.path.clone(), f.file_type))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (r("opt/n8n/compose.yaml"), FileType::Missing),
            (r("etc/nginx/nginx.conf/sub"), FileType::Missing),
        ]
    );
}

#[tokio::test]
async fn encryption_key_from_the_environment_when_no_env_file_has_it() {
    common::fast_kdf();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("host");
    write(
        &root.join("opt/n8n/.env"),
        b"N8N_HOST=x\n# N8N_ENCRYPTION_KEY=commented\n",
        0o600,
    );
    write(&root.join("opt/n8n/compose.yaml"), b"services: {}\n", 0o644);
    let store = common::new_store(&tmp.path().join("store")).await;
    let fkey = config_files::fingerprint_key(&store);
    // The operation's environment gives it (the engine never reads the
    // process's).
    let mut sess = session(&store).await;
    let cb = config_files::back_up(
        &mut sess,
        &[ConfigPath::optional(s(&root.join("opt/n8n")))],
        &fkey,
        Some("key-from-the-environment"),
    )
    .await
    .unwrap();
    sess.abort().await;
    assert_eq!(cb.encryption_key_source.as_deref(), Some("environment"));
    assert_eq!(
        cb.encryption_key_fingerprint.unwrap(),
        blake3::keyed_hash(&fkey, b"key-from-the-environment")
            .to_hex()
            .to_string()
    );
    assert_eq!(cb.files.len(), 3);
}

/// Runs `f` with filesystem permission checks made as user and group 65534
/// (nobody) when this process is root, on a thread of its own and a runtime
/// whose threads all do the same: root reads every file whatever its mode,
/// but `setfsuid` to an unprivileged id drops the capabilities that let it,
/// for this thread alone (other tests of this binary are unaffected).
fn as_unprivileged<F: std::future::Future<Output = ()>>(f: impl FnOnce() -> F + Send + 'static) {
    fn drop_fs_privileges() {
        unsafe {
            libc::setfsgid(65534);
            libc::setfsuid(65534);
        }
    }
    let run = move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .on_thread_start(|| {
                if unsafe { libc::geteuid() } == 0 {
                    drop_fs_privileges()
                }
            })
            .build()
            .unwrap();
        rt.block_on(f());
    };
    if !is_root() {
        return run();
    }
    std::thread::spawn(move || {
        drop_fs_privileges();
        // setfsuid answers the previous id: asking again tells whether it took.
        assert_eq!(
            unsafe { libc::setfsuid(65534) },
            65534,
            "setfsuid did not take"
        );
        run()
    })
    .join()
    .unwrap();
}

#[test]
fn unreadable_files_and_directories_are_errors_even_when_optional() {
    common::fast_kdf();
    let tmp = tempfile::tempdir().unwrap();
    // The store is created by the unprivileged user: it needs a writable place.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let root = tmp.path().join("host");
    write(
        &root.join("etc/nginx/nginx.conf"),
        b"user www-data;\n",
        0o644,
    );
    write(
        &root.join("etc/letsencrypt/archive/x/privkey1.pem"),
        b"KEY",
        0o000,
    );
    write(&root.join("etc/locked/inner.conf"), b"inner", 0o644);
    std::fs::set_permissions(
        root.join("etc/locked"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    let r = |p: &str| s(&root.join(p));
    let key_path = r("etc/letsencrypt/archive/x/privkey1.pem");
    let cases: Vec<(Vec<ConfigPath>, String)> = vec![
        (
            vec![ConfigPath::required(key_path.clone())],
            format!("cannot read config file {key_path}: Permission denied"),
        ),
        (
            vec![
                ConfigPath::optional(r("etc/nginx/nginx.conf")),
                ConfigPath::optional(key_path.clone()),
            ],
            format!("cannot read config file {key_path}: Permission denied"),
        ),
        (
            // Reached by walking a directory.
            vec![ConfigPath::optional(r("etc/letsencrypt"))],
            format!("cannot read config file {key_path}: Permission denied"),
        ),
        (
            vec![ConfigPath::optional(r("etc/locked"))],
            format!(
                "cannot read the directory {}: Permission denied",
                r("etc/locked")
            ),
        ),
        (
            // Inside a directory that cannot be searched: not "missing".
            vec![ConfigPath::optional(r("etc/locked/inner.conf"))],
            format!(
                "cannot read config path {}: Permission denied",
                r("etc/locked/inner.conf")
            ),
        ),
        (
            vec![ConfigPath::optional(r("etc/locked/*.conf"))],
            format!("cannot read {}", r("etc/locked")),
        ),
    ];
    let store_dir = tmp.path().join("store");
    as_unprivileged(move || async move {
        let store = common::new_store(&store_dir).await;
        let fkey = config_files::fingerprint_key(&store);
        for (paths, want) in cases {
            let mut sess = session(&store).await;
            match config_files::back_up(&mut sess, &paths, &fkey, None).await {
                Err(SourceError::File(m)) => assert!(m.contains(&want), "{m:?} lacks {want:?}"),
                other => panic!("{paths:?}: {other:?}"),
            }
            sess.abort().await;
        }
    });
    std::fs::set_permissions(
        root.join("etc/locked"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
}

// ---------------------------------------------------------------------------
// n8n's public API, played by a local server.

const API_KEY: &str = "n8n_api_test_0123456789abcdef";

#[derive(Clone)]
struct FakeN8n {
    workflows: Arc<Vec<Value>>,
    /// The most workflows a page holds, whatever the limit asked (n8n: 250).
    max_limit: usize,
    /// Answer every page with the same cursor (a broken server).
    stuck_cursor: bool,
    requests: Arc<AtomicUsize>,
    limits_asked: Arc<std::sync::Mutex<Vec<String>>>,
}

fn b64_encode(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn b64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

fn message(status: StatusCode, m: &str) -> Response {
    (status, Json(json!({ "message": m }))).into_response()
}

async fn list_workflows(
    State(s): State<FakeN8n>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    s.requests.fetch_add(1, Ordering::SeqCst);
    if headers.get("x-n8n-api-key").and_then(|v| v.to_str().ok()) != Some(API_KEY) {
        return message(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    s.limits_asked
        .lock()
        .unwrap()
        .push(q.get("limit").cloned().unwrap_or_default());
    // As n8n: the cursor is base64 of {"limit", "offset"} and wins over `limit`.
    let (limit, offset) = match q.get("cursor") {
        Some(c) => {
            let Some(v) = b64_decode(c).and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            else {
                return message(StatusCode::BAD_REQUEST, "An invalid cursor was provided");
            };
            (
                v["limit"].as_u64().unwrap_or(100) as usize,
                v["offset"].as_u64().unwrap_or(0) as usize,
            )
        }
        None => match q.get("limit").map(|l| l.parse::<usize>()) {
            None => (100, 0),
            Some(Ok(l)) if (1..=250).contains(&l) => (l, 0),
            _ => {
                return message(
                    StatusCode::BAD_REQUEST,
                    "request/query/limit must be <= 250",
                )
            }
        },
    };
    let limit = limit.min(s.max_limit);
    let all = &s.workflows;
    let end = (offset + limit).min(all.len());
    let data: Vec<Value> = all.get(offset.min(all.len())..end).unwrap_or(&[]).to_vec();
    let next = if s.stuck_cursor {
        Some(b64_encode(br#"{"limit":1,"offset":0}"#))
    } else if end < all.len() {
        Some(b64_encode(
            json!({"limit": limit, "offset": end})
                .to_string()
                .as_bytes(),
        ))
    } else {
        None
    };
    Json(json!({ "data": data, "nextCursor": next })).into_response()
}

/// Seven n8n-shaped workflows: the fixtures' bodies under new ids.
fn fixture_workflows() -> Vec<Value> {
    let list: Value = serde_json::from_str(&fixture("api-workflows-list.json")).unwrap();
    let one: Value = serde_json::from_str(&fixture("api-workflow-get.json")).unwrap();
    let mut bases: Vec<Value> = list["data"].as_array().unwrap().clone();
    bases.push(one);
    (0..7)
        .map(|i| {
            let mut w = bases[i % bases.len()].clone();
            w["id"] = json!(format!("wf{i:02}xxxxxxxxxxxx"));
            w["name"] = json!(format!("{} / copy {i}", w["name"].as_str().unwrap()));
            w
        })
        .collect()
}

async fn fake_n8n(max_limit: usize, stuck_cursor: bool) -> (String, FakeN8n) {
    fake_n8n_serving(fixture_workflows(), max_limit, stuck_cursor).await
}

async fn fake_n8n_serving(
    workflows: Vec<Value>,
    max_limit: usize,
    stuck_cursor: bool,
) -> (String, FakeN8n) {
    let state = FakeN8n {
        workflows: Arc::new(workflows),
        max_limit,
        stuck_cursor,
        requests: Arc::default(),
        limits_asked: Arc::default(),
    };
    let app = axum::Router::new()
        .route("/api/v1/workflows", axum::routing::get(list_workflows))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), state)
}

#[tokio::test]
async fn lists_every_workflow_across_pages() {
    let (url, state) = fake_n8n(250, false).await;
    let api = N8nApi::new(&url, API_KEY.into()).unwrap().with_page_size(2);
    api.check().await.unwrap();
    let before = state.requests.load(Ordering::SeqCst);
    let got = api.list_workflows().await.unwrap();
    assert_eq!(
        state.requests.load(Ordering::SeqCst) - before,
        4,
        "7 workflows, 2 a page"
    );
    let want: Vec<Doc> = state.workflows.iter().map(Doc::from).collect();
    assert!(got == want, "every workflow, whole, in order");
    // Each body canonicalises, without what n8n derives from other tables.
    for w in state.workflows.iter() {
        let c = canonical_from_api(Doc::from(w)).unwrap();
        let back: Value = serde_json::from_slice(&c.json).unwrap();
        assert!(back.get("shared").is_none() && back.get("activeVersion").is_none());
        assert_eq!(back["nodes"], w["nodes"]);
        assert_eq!(c.summary.id, w["id"].as_str().unwrap());
        assert_eq!(c.summary.nodes.len(), w["nodes"].as_array().unwrap().len());
        for t in back["tags"].as_array().unwrap() {
            assert_eq!(
                t.as_object().unwrap().len(),
                2,
                "tags are reduced to id and name"
            );
        }
    }
}

#[tokio::test]
async fn follows_the_servers_page_size() {
    // The client asks for 100; this server gives 3 at most.
    let (url, state) = fake_n8n(3, false).await;
    let api = N8nApi::new(&format!("{url}/"), API_KEY.into()).unwrap();
    let got = api.list_workflows().await.unwrap();
    assert_eq!(got.len(), 7);
    assert_eq!(state.requests.load(Ordering::SeqCst), 3);
    assert_eq!(state.limits_asked.lock().unwrap()[0], "100");
}

#[tokio::test]
async fn a_repeated_cursor_stops_the_listing() {
    let (url, _) = fake_n8n(2, true).await;
    let api = N8nApi::new(&url, API_KEY.into()).unwrap();
    match api.list_workflows().await {
        Err(SourceError::Api(m)) => assert!(m.contains("same page cursor twice"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_wrong_key_gets_a_clear_message() {
    let (url, _) = fake_n8n(250, false).await;
    let api = N8nApi::new(&url, "n8n_api_wrong".into()).unwrap();
    for res in [api.check().await, api.list_workflows().await.map(|_| ())] {
        match res {
            Err(SourceError::Api(m)) => {
                assert!(
                    m.starts_with(&format!(
                        "n8n at {url} refused the API key (create one in n8n: Settings → n8n API)"
                    )),
                    "{m}"
                );
                assert!(!m.contains("n8n_api_wrong"), "{m}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn other_errors_carry_status_and_message() {
    let (url, _) = fake_n8n(250, false).await;
    // No such route on this server: 404, with the hint.
    let api = N8nApi::new(&format!("{url}/elsewhere"), API_KEY.into()).unwrap();
    match api.check().await {
        Err(SourceError::Api(m)) => assert!(m.contains("404") && m.contains("public API"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_closed_port_does_not_answer() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let api = N8nApi::new(&url, API_KEY.into()).unwrap();
    for res in [api.check().await, api.list_workflows().await.map(|_| ())] {
        match res {
            Err(e @ SourceError::Api(_)) => {
                let m = e.to_string();
                assert!(
                    m.starts_with(&format!("n8n at {url} does not answer: ")),
                    "{m}"
                );
                assert!(e.is_retryable());
            }
            other => panic!("{other:?}"),
        }
    }
}

/// The binary with a fresh store in `dir` and the fake's key in a file.
fn api_runner(dir: &Path) -> impl Fn(Vec<String>) -> std::process::Output + Clone + Send + 'static {
    let keyfile = dir.join("api-key");
    std::fs::write(&keyfile, format!("{API_KEY}\n")).unwrap();
    let dir = dir.to_path_buf();
    move |args: Vec<String>| {
        let mut c = std::process::Command::new(common::bin());
        c.env_remove("ARK_N8N_DB")
            .env_remove("ARK_STORE")
            .env("ARK_PASSWORD", common::PASSPHRASE)
            .env("ARK_KDF_TARGET_MS", "20")
            .env("ARK_N8N_API_KEY_FILE", dir.join("api-key"))
            .arg("--store")
            .arg(dir.join("store"))
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(args);
        c.output().unwrap()
    }
}

/// A value nested `depth` levels deep (objects and arrays in turn), built
/// without parsing.
fn nested_value(depth: usize) -> Value {
    let mut v = json!(1);
    for i in (0..depth).rev() {
        v = if i % 2 == 0 {
            json!({ "a": v })
        } else {
            json!([v])
        };
    }
    v
}

/// Through n8n's API too, a workflow nested deeper than serde_json reads is
/// stored whole, and one that has not the shape of a workflow is named in
/// the manifest while every other is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flows_backup_through_the_api_stores_a_deep_workflow_and_names_a_bad_one() {
    let mut workflows = fixture_workflows();
    let mut deep = workflows[0].clone();
    deep["id"] = json!("deepxxxxxxxxxxxx");
    deep["pinData"] = json!({ "Webhook": [{ "json": nested_value(200) }] });
    let mut bad = workflows[1].clone();
    bad["id"] = json!("badxxxxxxxxxxxxx");
    bad["nodes"] = json!("not a list");
    workflows.push(deep.clone());
    workflows.push(bad);
    let (url, _server) = fake_n8n_serving(workflows, 250, false).await;
    let dir = tempfile::tempdir().unwrap();
    let run = api_runner(dir.path());
    let run2 = run.clone();
    let o = tokio::task::spawn_blocking(move || run2(vec!["init".into()]))
        .await
        .unwrap();
    assert!(o.status.success());
    let args: Vec<String> = ["--json", "backup", "--type", "flows", "--n8n-url", &url]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let o = tokio::task::spawn_blocking(move || run(args))
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{err}");
    assert!(err.contains("badxxxxxxxxxxxxx"), "{err}");
    let s: Value = serde_json::from_slice(&o.stdout).unwrap();
    let store = common::open_store(&dir.path().join("store")).await;
    let m = store
        .read_manifest(&store_format::ObjectId::from_hex(s["manifest"].as_str().unwrap()).unwrap())
        .await
        .unwrap();
    let c = m.contents.unwrap();
    assert_eq!(c.workflows.len(), 8);
    assert_eq!(c.workflows_not_stored.len(), 1);
    let n = &c.workflows_not_stored[0];
    assert_eq!(n.id, "badxxxxxxxxxxxxx");
    assert!(n.name.ends_with("copy 1"), "{n:?}");
    assert!(n.reason.contains("nodes is not an array"), "{n:?}");
    let items = common::restore_all(&store, s["manifest"].as_str().unwrap()).await;
    let w = c
        .workflows
        .iter()
        .find(|w| w.id == "deepxxxxxxxxxxxx")
        .unwrap();
    let obj = Doc::parse(&items[&w.item]).unwrap();
    assert!(obj.get("pinData").unwrap() == &Doc::from(&deep["pinData"]));
    assert_eq!(obj.get("pinData").unwrap().depth(), 203);
}

/// `backup --type flows` without a database reads n8n's API, page by page,
/// through the binary; the key comes from a file and never shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flows_backup_through_the_api() {
    let (url, server) = fake_n8n(3, false).await;
    let dir = tempfile::tempdir().unwrap();
    let keyfile = dir.path().join("api-key");
    std::fs::write(&keyfile, format!("{API_KEY}\n")).unwrap();
    let run = {
        let dir = dir.path().to_path_buf();
        move |args: Vec<String>| {
            let mut c = std::process::Command::new(common::bin());
            c.env_remove("ARK_N8N_DB")
                .env_remove("ARK_STORE")
                .env("ARK_PASSWORD", common::PASSPHRASE)
                .env("ARK_KDF_TARGET_MS", "20")
                .env("ARK_N8N_API_KEY_FILE", dir.join("api-key"))
                .arg("--store")
                .arg(dir.join("store"))
                .arg("--data-dir")
                .arg(dir.join("data"))
                .args(args);
            c.output().unwrap()
        }
    };
    let run2 = run.clone();
    let o = tokio::task::spawn_blocking(move || run2(vec!["init".into()]))
        .await
        .unwrap();
    assert!(o.status.success());
    let args: Vec<String> = ["--json", "backup", "--type", "flows", "--n8n-url", &url]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let o = tokio::task::spawn_blocking(move || run(args))
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{err}");
    assert!(!err.contains(API_KEY) && !String::from_utf8_lossy(&o.stdout).contains(API_KEY));
    let s: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["counts"]["workflows"], 7);
    assert!(server.requests.load(Ordering::SeqCst) >= 3, "paged");
    let store = common::open_store(&dir.path().join("store")).await;
    let m = store
        .read_manifest(&store_format::ObjectId::from_hex(s["manifest"].as_str().unwrap()).unwrap())
        .await
        .unwrap();
    let c = m.contents.unwrap();
    assert_eq!(c.workflow_source, Some(format!("n8n-api:{url}")));
    let items = common::restore_all(&store, s["manifest"].as_str().unwrap()).await;
    for (w, body) in c.workflows.iter().zip(server.workflows.iter()) {
        let obj: Value = serde_json::from_slice(&items[&w.item]).unwrap();
        assert_eq!(obj["nodes"], body["nodes"]);
        assert_eq!(obj["name"], body["name"]);
        assert!(obj.get("shared").is_none());
    }
}

/// n8n's key is found where docker compose gives it to n8n: the compose
/// file's `env_file` (string and list forms), its `environment` (map and
/// list forms, interpolated from the project's `.env`), a secret file;
/// whichever way a real project writes it.
#[tokio::test]
async fn the_encryption_key_is_found_where_the_compose_file_gives_it_to_n8n() {
    common::fast_kdf();
    let tmp = tempfile::tempdir().unwrap();
    let store = common::new_store(&tmp.path().join("store")).await;
    let fkey = config_files::fingerprint_key(&store);
    /// What the layout is, its files (name, content), the file holding the key.
    type Layout<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
    let layouts: Vec<Layout> = vec![
        (
            "env_file: n8n.env",
            vec![
                (
                    "docker-compose.yml",
                    "services:\n  postgres:\n    image: postgres:15\n    env_file: .env\n  n8n:\n    image: docker.n8n.io/n8nio/n8n:1.123.0\n    restart: always\n    env_file: n8n.env\n    ports:\n      - \"127.0.0.1:5678:5678\"\n    depends_on:\n      - postgres\n",
                ),
                (".env", "POSTGRES_PASSWORD=pg-secret\n"),
                ("n8n.env", "DB_TYPE=postgresdb\nN8N_ENCRYPTION_KEY=KEY-1\n"),
            ],
            "n8n.env",
        ),
        (
            "env_file list with a path map",
            vec![
                (
                    "compose.yaml",
                    "services:\n  n8n:\n    image: n8nio/n8n\n    env_file:\n      - ./config/common.env\n      - path: ./config/n8n.env\n        required: true\n",
                ),
                ("config/common.env", "GENERIC_TIMEZONE=Europe/Berlin\n"),
                ("config/n8n.env", "N8N_ENCRYPTION_KEY='KEY-1'\n"),
            ],
            "config/n8n.env",
        ),
        (
            "environment map interpolated from .env (n8n's own docker-compose example)",
            vec![
                (
                    "docker-compose.yml",
                    "volumes:\n  n8n_storage:\nservices:\n  n8n:\n    image: docker.n8n.io/n8nio/n8n\n    environment:\n      - DB_TYPE=postgresdb\n      - DB_POSTGRESDB_PASSWORD=${POSTGRES_NON_ROOT_PASSWORD}\n      - N8N_ENCRYPTION_KEY=${N8N_ENCRYPTION_KEY}\n    volumes:\n      - n8n_storage:/home/node/.n8n\n",
                ),
                (".env", "POSTGRES_NON_ROOT_PASSWORD=x\nN8N_ENCRYPTION_KEY=KEY-1\n"),
            ],
            ".env",
        ),
        (
            "environment map, inline",
            vec![(
                "docker-compose.yaml",
                "services:\n  n8n:\n    image: n8nio/n8n:latest\n    environment:\n      N8N_HOST: n8n.example.org\n      N8N_ENCRYPTION_KEY: \"KEY-1\"\n",
            )],
            "docker-compose.yaml",
        ),
        (
            "a secret file",
            vec![
                (
                    "docker-compose.yml",
                    "services:\n  n8n:\n    image: n8nio/n8n\n    environment:\n      N8N_ENCRYPTION_KEY_FILE: /run/secrets/n8n_encryption_key\n    secrets:\n      - n8n_encryption_key\nsecrets:\n  n8n_encryption_key:\n    file: ./secrets/n8n_encryption_key.txt\n",
                ),
                ("secrets/n8n_encryption_key.txt", "KEY-1\n"),
            ],
            "secrets/n8n_encryption_key.txt",
        ),
    ];
    for (i, (what, files, holder)) in layouts.iter().enumerate() {
        let project = tmp.path().join(format!("p{i}/opt/n8n"));
        for (name, content) in files {
            write(&project.join(name), content.as_bytes(), 0o600);
        }
        let mut sess = session(&store).await;
        let cb =
            config_files::back_up(&mut sess, &[ConfigPath::optional(s(&project))], &fkey, None)
                .await
                .unwrap();
        sess.abort().await;
        assert_eq!(
            cb.encryption_key_source.as_deref(),
            Some(s(&project.join(holder)).as_str()),
            "{what}"
        );
        assert_eq!(
            cb.encryption_key_fingerprint.as_deref(),
            Some(config_files::fingerprint(&fkey, "KEY-1").as_str()),
            "{what}"
        );
    }
}
