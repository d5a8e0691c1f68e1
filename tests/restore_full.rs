//! `restore full` through the binary, against real parts: an ephemeral
//! PostgreSQL cluster loaded with the n8n fixture, a scratch server tree
//! (.env, compose file, nginx, certbot's live/archive symlinks), stop and
//! start commands that are real scripts recording what they did, a real
//! HTTP health endpoint on 127.0.0.1 that answers 200 only once "n8n" was
//! started, and (in the Docker test) real containers of a compose project
//! stopped and started through the Docker engine.
mod common;

use common::pg::{bin_dir, PgCluster, FIXTURE_ENCRYPTION_KEY};
use common::{rt, stderr, Ark, PASSPHRASE};
use serde_json::Value;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use store_format::{Event, Manifest};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn write(path: &Path, content: &[u8], mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn symlink(target: &str, link: &Path) {
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(link);
    std::os::unix::fs::symlink(target, link).unwrap();
}

/// `recorded` (an absolute path) under `root`.
fn under(root: &Path, recorded: &Path) -> PathBuf {
    root.join(recorded.strip_prefix("/").unwrap())
}

const DOMAIN: &str = "n8n.example.org";

/// A single-server layout under `base`: n8n's compose project in
/// `opt/<project_dir>`, nginx, certbot's tree with its `live/` symlinks.
/// `env_key`: the N8N_ENCRYPTION_KEY line of the .env (None: none).
fn build_server(base: &Path, project_dir: &str, env_key: Option<&str>) {
    let key_line = env_key
        .map(|k| format!("N8N_ENCRYPTION_KEY={k}\n"))
        .unwrap_or_default();
    write(
        &base.join(format!("opt/{project_dir}/.env")),
        format!(
            "# n8n\nN8N_HOST={DOMAIN}\n{key_line}DB_TYPE=postgresdb\nDB_POSTGRESDB_DATABASE=n8n\n\
             DB_POSTGRESDB_PASSWORD=pg-secret\n"
        )
        .as_bytes(),
        0o600,
    );
    write(
        &base.join(format!("opt/{project_dir}/docker-compose.yaml")),
        b"services:\n  n8n:\n    image: n8nio/n8n:1.123.0\n    env_file: .env\n  postgres:\n    image: postgres:15\n",
        0o644,
    );
    write(
        &base.join("etc/nginx/nginx.conf"),
        b"user www-data;\nhttp { include /etc/nginx/conf.d/*.conf; }\n",
        0o644,
    );
    write(
        &base.join("etc/nginx/conf.d/n8n.conf"),
        format!(
            "server {{ listen 443 ssl; server_name {DOMAIN};\n  ssl_certificate /etc/letsencrypt/live/{DOMAIN}/fullchain.pem;\n  location / {{ proxy_pass http://127.0.0.1:5678; }} }}\n"
        )
        .as_bytes(),
        0o640,
    );
    let archive = base.join(format!("etc/letsencrypt/archive/{DOMAIN}"));
    write(
        &archive.join("cert1.pem"),
        b"-----BEGIN CERTIFICATE-----\nMIIB1\n-----END CERTIFICATE-----\n",
        0o644,
    );
    write(
        &archive.join("chain1.pem"),
        b"-----BEGIN CERTIFICATE-----\nMIIC1\n-----END CERTIFICATE-----\n",
        0o644,
    );
    write(
        &archive.join("fullchain1.pem"),
        b"-----BEGIN CERTIFICATE-----\nMIIB1\nMIIC1\n-----END CERTIFICATE-----\n",
        0o644,
    );
    write(
        &archive.join("privkey1.pem"),
        b"-----BEGIN PRIVATE KEY-----\nsecret-key-1\n-----END PRIVATE KEY-----\n",
        0o600,
    );
    let live = base.join(format!("etc/letsencrypt/live/{DOMAIN}"));
    for name in ["cert", "chain", "fullchain", "privkey"] {
        symlink(
            &format!("../../archive/{DOMAIN}/{name}1.pem"),
            &live.join(format!("{name}.pem")),
        );
    }
    write(
        &base.join(format!("etc/letsencrypt/renewal/{DOMAIN}.conf")),
        format!("archive_dir = /etc/letsencrypt/archive/{DOMAIN}\n").as_bytes(),
        0o644,
    );
}

/// What a day of changes does to the tree after the backup.
fn change_server(base: &Path, project_dir: &str) {
    write(
        &base.join(format!("opt/{project_dir}/.env")),
        format!("# n8n, edited\nN8N_HOST=other.example.org\nN8N_ENCRYPTION_KEY={FIXTURE_ENCRYPTION_KEY}\n").as_bytes(),
        0o644,
    );
    write(&base.join("etc/nginx/nginx.conf"), b"user nginx;\n", 0o600);
    std::fs::remove_file(base.join("etc/nginx/conf.d/n8n.conf")).unwrap();
    // certbot renewed: a second generation, live/ pointing at it.
    let archive = base.join(format!("etc/letsencrypt/archive/{DOMAIN}"));
    write(
        &archive.join("cert2.pem"),
        b"-----BEGIN CERTIFICATE-----\nMIIB2\n-----END CERTIFICATE-----\n",
        0o644,
    );
    symlink(
        &format!("../../archive/{DOMAIN}/cert2.pem"),
        &base.join(format!("etc/letsencrypt/live/{DOMAIN}/cert.pem")),
    );
    std::fs::set_permissions(
        archive.join("privkey1.pem"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
}

/// Every entry under `dir` (never through a symlink): kind, mode, and the
/// content's hash or the link's target.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            let mode = md.permissions().mode() & 0o7777;
            let v = if md.file_type().is_symlink() {
                format!("link -> {}", std::fs::read_link(&p).unwrap().display())
            } else if md.is_dir() {
                stack.push(p.clone());
                format!("dir {mode:o}")
            } else {
                format!(
                    "file {mode:o} {}",
                    blake3::hash(&std::fs::read(&p).unwrap()).to_hex()
                )
            };
            out.insert(rel, v);
        }
    }
    out
}

/// A health endpoint like n8n's `/healthz`: 200 once the flag file exists
/// (the start script creates it), 503 before.
struct Health {
    url: String,
    hits: Arc<AtomicUsize>,
    _rt: tokio::runtime::Runtime,
}

fn health_server(ready: impl Fn() -> bool + Send + Sync + 'static) -> Health {
    let rt = rt();
    let hits = Arc::new(AtomicUsize::new(0));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}/healthz", listener.local_addr().unwrap());
    let ready = Arc::new(ready);
    let h = hits.clone();
    let app = axum::Router::new().route(
        "/healthz",
        axum::routing::get(move || {
            let ready = ready.clone();
            let h = h.clone();
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                let ok = tokio::task::spawn_blocking(move || ready()).await.unwrap();
                if ok {
                    (axum::http::StatusCode::OK, "{\"status\":\"ok\"}")
                } else {
                    (
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        "n8n is starting",
                    )
                }
            }
        }),
    );
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
    Health { url, hits, _rt: rt }
}

/// A store, a catalog, a scratch server tree and the scripts that stand for
/// n8n's service.
struct Env(Ark);

impl std::ops::Deref for Env {
    type Target = Ark;
    fn deref(&self) -> &Ark {
        &self.0
    }
}

impl Env {
    fn new() -> Env {
        Env(Ark::new().init(&["--chunk-avg-kib", "64"]))
    }
    /// The backed-up server's files.
    fn server(&self) -> PathBuf {
        self.path("server")
    }
    /// The restore's root.
    fn root(&self) -> PathBuf {
        self.path("root")
    }
    /// Where the restore writes the server's files: the recorded paths under the root.
    fn target(&self) -> PathBuf {
        under(&self.root(), &self.server())
    }
    fn log(&self) -> String {
        std::fs::read_to_string(self.path("service.log")).unwrap_or_default()
    }
    /// `full_system` of the cluster's n8n database and the server tree.
    fn backup_full_system(&self, pg: &PgCluster, project_dir: &str, env: &[(&str, &str)]) -> Value {
        let s = self.server();
        let o = self
            .cmd()
            .envs(env.iter().copied())
            .args([
                "--json",
                "backup",
                "--type",
                "full_system",
                "--no-default-config-paths",
            ])
            .args(["--n8n-db", &pg.url("n8n")])
            .arg("--config-path")
            .arg(s.join(format!("opt/{project_dir}/.env")))
            .arg("--config-path")
            .arg(s.join(format!("opt/{project_dir}/docker-compose.yaml")))
            .arg("--config-path")
            .arg(s.join("etc/nginx"))
            .arg("--config-path")
            .arg(s.join("etc/letsencrypt"))
            .output()
            .unwrap();
        assert!(o.status.success(), "backup: {}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    }
    /// Stop and start scripts: each appends a line to service.log; stop
    /// records how many manifests the store held (the safety backup must be
    /// there already) and removes the "running" flag; start sets it again a
    /// second later (n8n takes a moment to come up). With the file `inject`
    /// present, stop also makes the database server refuse TCP connections
    /// (once).
    fn scripts(&self, pg: &PgCluster) -> (String, String) {
        let stop = self.path("stop.sh");
        let start = self.path("start.sh");
        let psql = bin_dir().join("psql");
        std::fs::write(
            &stop,
            format!(
                "#!/bin/sh\nset -e\n\
                 echo \"stop $(ls {store}/manifests | wc -l)\" >> {log}\n\
                 rm -f {flag}\n\
                 if [ -f {inject} ]; then\n\
                   rm -f {inject}\n\
                   printf 'local all all trust\\nhost all all 127.0.0.1/32 reject\\n' > {hba}\n\
                   {psql} -X -q -h {sock} -p {port} -U postgres -d postgres -c 'SELECT pg_reload_conf()' >/dev/null\n\
                 fi\n",
                store = self.store().display(),
                log = self.path("service.log").display(),
                flag = self.path("running").display(),
                inject = self.path("inject").display(),
                hba = pg.data_dir().join("pg_hba.conf").display(),
                psql = psql.display(),
                sock = pg.socket_dir().display(),
                port = pg.port(),
            ),
        )
        .unwrap();
        std::fs::write(
            &start,
            format!(
                "#!/bin/sh\necho start >> {log}\n( sleep 1; touch {flag} ) >/dev/null 2>&1 &\n",
                log = self.path("service.log").display(),
                flag = self.path("running").display(),
            ),
        )
        .unwrap();
        (
            format!("sh {}", stop.display()),
            format!("sh {}", start.display()),
        )
    }
    fn health(&self) -> Health {
        let flag = self.path("running");
        std::fs::write(&flag, b"").unwrap();
        health_server(move || flag.exists())
    }
}

/// The n8n database after a day of work.
fn change_database(pg: &PgCluster) {
    pg.psql(
        "n8n",
        "UPDATE workflow_entity SET name = left(name, 100) || ' (edited)';
         INSERT INTO tag_entity (name, id) VALUES ('after-backup', 'ark-test-tag-1');
         DELETE FROM settings WHERE key = (SELECT min(key) FROM settings);",
    );
}

fn manifest_rows(m: &Manifest, db: &str) -> BTreeMap<String, u64> {
    m.contents
        .as_ref()
        .unwrap()
        .databases
        .iter()
        .find(|d| d.name == db)
        .unwrap_or_else(|| panic!("no database {db} in {}", m.backup_id))
        .tables
        .iter()
        .map(|t| (format!("{}.{}", t.schema, t.name), t.rows))
        .collect()
}

/// Waits until the cluster accepts TCP connections again.
fn wait_tcp(pg: &PgCluster) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ok = pg
            .client("psql")
            .env("PGHOST", "127.0.0.1")
            .args(["-X", "-q", "-d", "postgres", "-c", "SELECT 1"])
            .output()
            .unwrap()
            .status
            .success();
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the cluster still refuses TCP: {}",
            pg.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn full_restore_puts_back_databases_and_files_after_a_pinned_safety_backup() {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let env = Env::new();
    build_server(&env.server(), "n8n", Some(FIXTURE_ENCRYPTION_KEY));
    let b = env.backup_full_system(&pg, "n8n", &[]);
    let backup_id = b["backup_id"].as_str().unwrap().to_string();
    let at_backup_counts = pg.table_counts("n8n");
    let at_backup_sums = pg.table_checksums("n8n");
    let at_backup_files = tree(&env.server());

    // The target: the same server a day later, its files under the scratch root.
    build_server(&env.target(), "n8n", Some(FIXTURE_ENCRYPTION_KEY));
    change_server(&env.target(), "n8n");
    std::fs::write(
        env.target().join("etc/nginx/conf.d/extra.conf"),
        b"# added later\n",
    )
    .unwrap();
    change_database(&pg);
    let before_counts = pg.table_counts("n8n");
    let before_sums = pg.table_checksums("n8n");
    let before_files = tree(&env.target());
    assert_ne!(before_sums, at_backup_sums);
    assert_ne!(before_files, at_backup_files);

    let (stop, start) = env.scripts(&pg);
    let health = env.health();
    let root = env.root();
    let url = pg.url("n8n");
    let restore = |extra: &[&str]| {
        env.cmd()
            .args(["restore", "full", "latest", "--root"])
            .arg(&root)
            .args([
                "--n8n-db",
                &url,
                "--stop-command",
                &stop,
                "--start-command",
                &start,
            ])
            .args(["--health-url", &health.url, "--health-timeout", "60"])
            .args(extra)
            .output()
            .unwrap()
    };
    let unchanged = |what: &str| {
        assert_eq!(
            tree(&env.target()),
            before_files,
            "{what} changed the files"
        );
        assert_eq!(
            pg.table_checksums("n8n"),
            before_sums,
            "{what} changed the database"
        );
        assert_eq!(env.manifest_count(), 1, "{what} took a backup");
        assert_eq!(env.log(), "", "{what} stopped or started n8n");
    };

    // --dry-run: the plan, nothing changed, nothing recorded.
    let journal = env.journal_len();
    let o = restore(&["--dry-run"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let plan = stdout(&o);
    let port = pg.port();
    for needle in [
        format!("Restore plan: backup {backup_id} (full_system"),
        format!("n8n (n8n) -> postgres@127.0.0.1:{port}/n8n: replace"),
        format!("n8n is stopped with `{stop}` and started with `{start}`"),
        "a full_system backup of the current databases".to_string(),
        format!(
            "{} -> {}: ",
            env.server().join("opt/n8n/.env").display(),
            env.target().join("opt/n8n/.env").display()
        ),
        format!("wait up to 60 s for {}", health.url),
        "Encryption key (match)".to_string(),
        "dry run: nothing was changed".to_string(),
    ] {
        assert!(
            plan.contains(&needle),
            "{needle:?} not in the plan:\n{plan}"
        );
    }
    let o = env
        .cmd()
        .args([
            "--json",
            "restore",
            "full",
            &backup_id[..12],
            "--dry-run",
            "--root",
        ])
        .arg(&root)
        .args([
            "--n8n-db",
            &url,
            "--stop-command",
            &stop,
            "--start-command",
            &start,
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["result"], "planned");
    assert_eq!(j["plan"]["databases"][0]["action"], "replace");
    assert_eq!(j["plan"]["safety_backup"]["kind"], "full_system");
    assert_eq!(j["plan"]["encryption_key"]["verdict"], "match");
    unchanged("--dry-run");
    assert_eq!(env.journal_len(), journal, "--dry-run recorded something");

    // Without --yes: the plan, then a refusal that says what to add.
    let o = restore(&[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("--yes") && err.contains("read the plan"),
        "{err}"
    );
    assert!(stdout(&o).contains("Restore plan"));
    unchanged("restore without --yes");
    assert_eq!(env.journal_len(), journal);

    // --yes: safety backup, stop, database, files, start, health, counts.
    let t0 = Instant::now();
    let o = restore(&["--yes", "--json"]);
    let err = stderr(&o);
    assert!(
        o.status.success(),
        "restore full failed: {err}\n{}",
        stdout(&o)
    );
    eprintln!("restore full took {:?}", t0.elapsed());
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["result"], "ok", "{report:#}");
    let safety = report["safety_backup"]
        .as_str()
        .expect("a safety backup")
        .to_string();
    let restore_id = report["restore_id"].as_str().unwrap().to_string();

    // The files are the backup's, byte for byte, with their modes and links.
    let after = tree(&env.target());
    for (path, v) in &at_backup_files {
        assert_eq!(after.get(path), Some(v), "{path} after the restore");
    }
    assert_eq!(
        std::fs::read_link(
            env.target()
                .join(format!("etc/letsencrypt/live/{DOMAIN}/cert.pem"))
        )
        .unwrap(),
        PathBuf::from(format!("../../archive/{DOMAIN}/cert1.pem"))
    );
    assert!(
        !after.keys().any(|k| k.contains(".ark-before-restore")),
        "no .ark-before-restore copies by default: {after:#?}"
    );
    // The database is the backup's: counts and contents.
    assert_eq!(pg.table_counts("n8n"), at_backup_counts);
    assert_eq!(pg.table_checksums("n8n"), at_backup_sums);

    // n8n was stopped after the safety backup existed, and started again;
    // the health endpoint was asked until it answered.
    assert_eq!(env.log(), "stop 2\nstart\n");
    assert!(
        health.hits.load(Ordering::SeqCst) >= 2,
        "the health endpoint was polled"
    );
    let items: BTreeMap<String, (String, String)> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap().to_string(),
                (
                    i["outcome"].as_str().unwrap().to_string(),
                    i["detail"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect();
    for name in [
        "n8n:stop",
        "database:n8n",
        "n8n:start",
        "n8n:health",
        "verify:n8n",
    ] {
        assert_eq!(
            items.get(name).map(|i| i.0.as_str()),
            Some("restored"),
            "{name}: {items:#?}"
        );
    }
    assert!(
        items.keys().any(|k| k.contains("opt/n8n/.env")),
        "{items:#?}"
    );

    // The safety backup: pinned, and it holds the state from before the restore.
    let m = env.manifest_of(&safety);
    assert_eq!(m.kind, "full_system");
    assert_eq!(
        m.labels.get("pinned").map(String::as_str),
        Some(format!("safety backup before restore {restore_id}").as_str())
    );
    assert_eq!(manifest_rows(&m, "n8n"), before_counts);
    let c = m.contents.as_ref().unwrap();
    let recorded: BTreeMap<PathBuf, &store_format::contents::ConfigFile> = c
        .config_files
        .iter()
        .map(|f| (PathBuf::from(&f.path), f))
        .collect();
    for (rel, v) in &before_files {
        // Directories above the recorded paths (opt, etc) are not recorded.
        let Some(f) = recorded.get(&env.target().join(rel)) else {
            assert!(v.starts_with("dir"), "{rel} is not in the safety backup");
            continue;
        };
        if let Some(hash) = v
            .strip_prefix("file ")
            .and_then(|r| r.split_once(' '))
            .map(|(_, h)| h)
        {
            assert_eq!(
                f.checksum.as_deref(),
                Some(hash),
                "{rel} in the safety backup"
            );
        }
        if let Some(link) = v.strip_prefix("link -> ") {
            assert_eq!(
                f.link_target.as_deref(),
                Some(link),
                "{rel} in the safety backup"
            );
        }
    }

    // Recorded: one RestorePerformed with the safety backup.
    let h = env.restore_history();
    assert_eq!(h.len(), 1, "{h:#?}");
    assert_eq!(h[0]["restore_id"], restore_id.as_str());
    assert_eq!(h[0]["what"], "full");
    assert_eq!(h[0]["result"], "ok");
    assert_eq!(h[0]["backup_id"], backup_id.as_str());
    assert_eq!(h[0]["safety_backup"], safety.as_str());
    assert!(h[0]["target"]
        .as_str()
        .unwrap()
        .starts_with(&format!("root:{}", root.display())));
}

#[test]
fn a_failure_midway_starts_n8n_again_and_says_how_to_go_back() {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let env = Env::new();
    build_server(&env.server(), "n8n", Some(FIXTURE_ENCRYPTION_KEY));
    let b = env.backup_full_system(&pg, "n8n", &[]);
    let backup_id = b["backup_id"].as_str().unwrap().to_string();
    build_server(&env.target(), "n8n", Some(FIXTURE_ENCRYPTION_KEY));
    change_server(&env.target(), "n8n");
    change_database(&pg);
    let before_sums = pg.table_checksums("n8n");
    let before_files = tree(&env.target());
    let hba = pg.data_dir().join("pg_hba.conf");
    let original_hba = std::fs::read(&hba).unwrap();

    // The stop script makes the server refuse connections: after the safety
    // backup, before the database is restored.
    let (stop, start) = env.scripts(&pg);
    let health = env.health();
    std::fs::write(env.path("inject"), b"").unwrap();
    let o = env
        .cmd()
        .args(["restore", "full", &backup_id, "--yes", "--root"])
        .arg(env.root())
        .args([
            "--n8n-db",
            &pg.url("n8n"),
            "--stop-command",
            &stop,
            "--start-command",
            &start,
        ])
        .args(["--health-url", &health.url, "--health-timeout", "60"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    let last = err.trim().lines().last().unwrap().to_string();
    assert!(
        last.starts_with("error: restore full failed at database: "),
        "{err}"
    );
    assert!(
        last.contains("127.0.0.1"),
        "the message says what refused: {last}"
    );
    assert!(last.contains("n8n was started again."), "{last}");
    // It says exactly what changed: the server refused before any swap.
    assert!(
        last.contains("No database and no config file was changed."),
        "{last}"
    );
    assert!(!last.contains("partly"), "{last}");
    // n8n was stopped once and started again.
    assert_eq!(env.log(), "stop 2\nstart\n");

    // Recorded, with the safety backup; the message says how to go back.
    let h = env.restore_history();
    assert_eq!(h.len(), 1, "{h:#?}");
    assert_eq!(h[0]["result"], "failed");
    assert_eq!(h[0]["failed_stage"], "database");
    let safety = h[0]["safety_backup"]
        .as_str()
        .expect("the safety backup")
        .to_string();
    assert_eq!(
        h[0]["message"].as_str().unwrap(),
        last.trim_start_matches("error: ")
    );
    let m = env.manifest_of(&safety);
    assert!(m.labels.contains_key("pinned"), "{:?}", m.labels);
    let (_, go_back) = last
        .split_once("to go back, run: ")
        .unwrap_or_else(|| panic!("no go-back command in: {last}"));
    let expected = format!(
        "n8n-ark --store {} --data-dir {} restore full {safety} --root / --yes --n8n-db {} --pg-restore ",
        env.store().display(),
        env.path("data").display(),
        pg.url("n8n"),
    );
    assert!(
        go_back.starts_with(&expected),
        "{go_back}\nexpected it to start with\n{expected}"
    );
    for part in [
        format!("--stop-command '{stop}' --start-command '{start}'"),
        format!("--health-url {} --health-timeout 60", health.url),
    ] {
        assert!(go_back.contains(&part), "{part:?} not in {go_back}");
    }
    assert!(!go_back.contains(PASSPHRASE));

    // Nothing was restored (the server refused before the swap)...
    assert_eq!(tree(&env.target()), before_files);
    assert_eq!(pg.table_checksums("n8n"), before_sums);

    // ...but as if the restore had got halfway: the server comes back, the
    // database and a file are damaged, and the printed command puts back the
    // state from before the restore.
    std::fs::write(&hba, &original_hba).unwrap();
    pg.psql("postgres", "SELECT pg_reload_conf()");
    wait_tcp(&pg);
    pg.psql(
        "n8n",
        "DELETE FROM tag_entity; UPDATE workflow_entity SET active = NOT active;",
    );
    std::fs::remove_file(env.target().join("opt/n8n/.env")).unwrap();
    std::fs::write(env.target().join("etc/nginx/nginx.conf"), b"half written").unwrap();
    let cmd = go_back.replacen("n8n-ark", &common::bin().display().to_string(), 1);
    let o = env.cmd().arg("--version").output().unwrap();
    assert!(o.status.success());
    let o = Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .env("ARK_PASSWORD", PASSPHRASE)
        .env("ARK_KDF_TARGET_MS", "20")
        .env_remove("ARK_N8N_DB")
        .env_remove("N8N_ENCRYPTION_KEY")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "going back failed: {}\n{}",
        stderr(&o),
        stdout(&o)
    );
    assert_eq!(
        tree(&env.target()),
        before_files,
        "the files from before the restore"
    );
    assert_eq!(
        pg.table_checksums("n8n"),
        before_sums,
        "the database from before the restore"
    );
    let h = env.restore_history();
    assert_eq!(h.len(), 2);
    assert_eq!(h[1]["result"], "ok");
    assert_eq!(h[1]["backup_id"], safety.as_str());
    assert_eq!(env.log(), "stop 2\nstart\nstop 3\nstart\n");
}

#[test]
fn an_encryption_key_the_target_cannot_use_is_refused_unless_forced() {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let env = Env::new();
    // The key is not in the .env: n8n and the backup get it from the environment.
    build_server(&env.server(), "n8n", None);
    let b = env.backup_full_system(
        &pg,
        "n8n",
        &[("N8N_ENCRYPTION_KEY", FIXTURE_ENCRYPTION_KEY)],
    );
    let backup_id = b["backup_id"].as_str().unwrap().to_string();
    build_server(&env.target(), "n8n", None);
    change_database(&pg);
    let before_sums = pg.table_checksums("n8n");
    let before_files = tree(&env.target());
    let (stop, start) = env.scripts(&pg);
    let restore = |key: &str, extra: &[&str]| {
        env.cmd()
            .env("N8N_ENCRYPTION_KEY", key)
            .args(["restore", "full", &backup_id, "--root"])
            .arg(env.root())
            .args([
                "--n8n-db",
                &pg.url("n8n"),
                "--stop-command",
                &stop,
                "--start-command",
                &start,
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    // The target runs with another key: its n8n could not decrypt the
    // restored credentials.
    let o = restore("another-instance-key-0000", &["--yes"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let err = stderr(&o);
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error: ")).count(),
        1,
        "one error line: {err}"
    );
    assert!(
        err.contains("refused, nothing was changed") && err.contains("encryption key mismatch"),
        "{err}"
    );
    assert!(err.contains("--force"), "{err}");
    assert!(
        !err.contains("another-instance-key") && !err.contains(FIXTURE_ENCRYPTION_KEY),
        "{err}"
    );
    assert!(stdout(&o).contains("REFUSED:"));
    assert_eq!(pg.table_checksums("n8n"), before_sums);
    assert_eq!(tree(&env.target()), before_files);
    assert_eq!(env.manifest_count(), 1, "no safety backup");
    assert_eq!(env.log(), "", "n8n was not stopped");
    let h = env.restore_history();
    assert_eq!(h.len(), 1);
    assert_eq!(
        (h[0]["result"].as_str(), h[0]["failed_stage"].as_str()),
        (Some("failed"), Some("check"))
    );
    assert!(h[0]["safety_backup"].is_null());

    // --force lifts it (the plan says so); the same key matches.
    let o = restore("another-instance-key-0000", &["--dry-run", "--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("--force: restoring despite an encryption key mismatch"),
        "{}",
        stdout(&o)
    );
    let o = restore(FIXTURE_ENCRYPTION_KEY, &["--dry-run", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["plan"]["encryption_key"]["verdict"], "match", "{j:#}");
    assert_eq!(j["plan"]["encryption_key"]["backup_source"], "environment");

    // Config only: the backup's .env carries another key than the one the
    // target's database was encrypted with.
    let other = env.path("other");
    build_server(&other, "n8n", Some("the-old-servers-key-1111"));
    let o = env
        .cmd()
        .args([
            "--json",
            "backup",
            "--type",
            "n8n_config",
            "--no-default-config-paths",
            "--config-path",
        ])
        .arg(other.join("opt/n8n/.env"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let config_backup: Value = serde_json::from_slice(&o.stdout).unwrap();
    let target = env.path("root2");
    build_server(&under(&target, &other), "n8n", Some(FIXTURE_ENCRYPTION_KEY));
    let o = env
        .cmd()
        .args([
            "--json",
            "restore",
            "full",
            config_backup["backup_id"].as_str().unwrap(),
            "--dry-run",
            "--no-stop",
        ])
        .arg("--root")
        .arg(&target)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the restore would be refused: encryption key mismatch"),
        "{}",
        stderr(&o)
    );
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["plan"]["encryption_key"]["verdict"], "mismatch", "{j:#}");
    assert!(j["plan"]["databases"].as_array().unwrap().is_empty());
}

/// Docker containers of a test compose project; removed on drop.
struct Containers(Vec<String>);

impl Drop for Containers {
    fn drop(&mut self) {
        for c in &self.0 {
            let _ = common::docker::docker().args(["rm", "-f", c]).output();
        }
    }
}

fn inspect(container: &str, format: &str) -> String {
    let o = common::docker::docker()
        .args(["inspect", "--format", format, container])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "docker inspect {container}: {}",
        stderr(&o)
    );
    stdout(&o).trim().to_string()
}

fn docker_time(s: &str) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

#[test]
#[ignore = "needs a Docker engine and ARK_TEST_PG_IMAGE (./setup.sh test provides both)"]
fn compose_containers_are_stopped_and_started_through_the_docker_engine() {
    let image = common::docker::test_image();
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let env = Env::new();
    // The compose file's directory names the project, as docker compose does.
    let project = format!("ark-restore-{:08x}", rand::random::<u32>());
    build_server(&env.server(), &project, Some(FIXTURE_ENCRYPTION_KEY));
    let b = env.backup_full_system(&pg, &project, &[]);
    let backup_id = b["backup_id"].as_str().unwrap().to_string();
    let at_backup_sums = pg.table_checksums("n8n");
    change_database(&pg);
    build_server(&env.target(), &project, Some(FIXTURE_ENCRYPTION_KEY));

    // Two services of the project: n8n (stopped and started) and its
    // database (left running). No network; `read` waits on the open stdin.
    let mut containers = Containers(vec![]);
    for service in ["n8n", "postgres"] {
        let name = format!("{project}-{service}-1");
        let o = common::docker::docker()
            .args([
                "run",
                "-d",
                "-i",
                "--network",
                "none",
                "--stop-timeout",
                "1",
                "--name",
                &name,
            ])
            .args(["--label", common::docker::LABEL])
            .args(["--label", &format!("com.docker.compose.project={project}")])
            .args(["--label", &format!("com.docker.compose.service={service}")])
            .args([&image, "sh", "-c", "read line"])
            .output()
            .unwrap();
        assert!(o.status.success(), "docker run: {}", stderr(&o));
        containers.0.push(name);
    }
    let (n8n, db) = (containers.0[0].clone(), containers.0[1].clone());
    let db_started = inspect(&db, "{{.State.StartedAt}}");
    let before = chrono::Utc::now();
    // n8n's health endpoint answers while its container runs.
    let watched = n8n.clone();
    let health = health_server(move || {
        common::docker::docker()
            .args(["inspect", "--format", "{{.State.Running}}", &watched])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "true")
            .unwrap_or(false)
    });

    let o = env
        .cmd()
        .args(["restore", "full", &backup_id, "--yes", "--root"])
        .arg(env.root())
        .args([
            "--n8n-db",
            &pg.url("n8n"),
            "--health-url",
            &health.url,
            "--health-timeout",
            "60",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}\n{}", stderr(&o), stdout(&o));
    let plan = stdout(&o);
    for needle in [
        format!("the containers of compose project {project} are stopped and started again: {n8n}"),
        format!("{n8n} (service n8n, running): stop and start"),
        format!("{db} (service postgres, running): keep running"),
        format!(
            "(compose project from the directory of {}",
            env.server()
                .join(format!("opt/{project}/docker-compose.yaml"))
                .display()
        ),
        format!("stopped {n8n}"),
        format!("started {n8n}"),
    ] {
        assert!(plan.contains(&needle), "{needle:?} not in:\n{plan}");
    }
    // n8n's container was stopped during the restore and runs again; the
    // database's was never stopped.
    assert_eq!(inspect(&n8n, "{{.State.Running}}"), "true");
    let finished = docker_time(&inspect(&n8n, "{{.State.FinishedAt}}"));
    let started = docker_time(&inspect(&n8n, "{{.State.StartedAt}}"));
    assert!(
        finished > before && started > finished,
        "stopped at {finished}, started at {started}, restore began {before}"
    );
    assert_eq!(inspect(&db, "{{.State.Running}}"), "true");
    assert_eq!(inspect(&db, "{{.State.StartedAt}}"), db_started);
    assert!(inspect(&db, "{{.State.FinishedAt}}").starts_with("0001-01-01"));
    assert_eq!(pg.table_checksums("n8n"), at_backup_sums);
    let h = env.restore_history();
    assert_eq!(h[0]["result"], "ok");
    let items = h[0]["items"].as_array().unwrap();
    assert!(
        items
            .iter()
            .any(|i| i["name"] == "n8n:stop" && i["detail"] == format!("stopped {n8n}")),
        "{items:#?}"
    );
    assert!(
        items
            .iter()
            .any(|i| i["name"] == "n8n:start" && i["detail"] == format!("started {n8n}")),
        "{items:#?}"
    );
}

/// A backup whose manifest was written by hand: `files` as its config files
/// (each regular file's content is its path), recorded like a real backup.
fn crafted_backup(env: &Env, files: Vec<store_format::contents::ConfigFile>) -> String {
    use n8n_ark::store::ingest::{new_backup_id, BackupSession};
    use store_format::contents::{Contents, FileType};
    rt().block_on(async {
        let store = common::open_store(&env.store()).await;
        let id = new_backup_id();
        n8n_ark::store::journal::append(
            &store,
            Event::BackupStarted(store_format::event::BackupStarted {
                backup_id: id.clone(),
                kind: "n8n_config".into(),
                host: "crafted".into(),
                sources: vec![],
                ..Default::default()
            }),
        )
        .await
        .unwrap();
        let mut session = BackupSession::begin_as(&store, "n8n_config", id.clone())
            .await
            .unwrap();
        let mut contents = Contents::default();
        for (i, mut f) in files.into_iter().enumerate() {
            if f.file_type == FileType::File {
                let data = f.path.as_bytes().to_vec();
                let item = format!("config/crafted/{i}");
                session.add_blob(&item, data.clone()).await.unwrap();
                f.size = data.len() as u64;
                f.checksum = Some(blake3::hash(&data).to_hex().to_string());
                f.item = Some(item);
            }
            contents.config_files.push(f);
        }
        session
            .commit_with(BTreeMap::new(), Some(contents))
            .await
            .unwrap();
        id
    })
}

#[test]
fn a_crafted_manifest_that_escapes_the_root_is_refused_before_anything_happens() {
    use store_format::contents::{ConfigFile, FileType};
    let env = Env::new();
    let file = |path: &str| ConfigFile {
        path: path.into(),
        file_type: FileType::File,
        mode: 0o644,
        ..Default::default()
    };
    let link = |path: &str, target: &str| ConfigFile {
        path: path.into(),
        file_type: FileType::Symlink,
        mode: 0o777,
        link_target: Some(target.into()),
        ..Default::default()
    };
    let root = env.root();
    std::fs::create_dir_all(&root).unwrap();
    let (stop, start) = (
        format!("touch {}", env.path("stopped").display()),
        format!("touch {}", env.path("started").display()),
    );
    for (files, culprit) in [
        (
            vec![
                file("/srv/app/ok.conf"),
                file("/srv/app/../../../escape.conf"),
            ],
            "/srv/app/../../../escape.conf",
        ),
        // A link is data (restored as the link it is, wherever it points);
        // a path recorded twice is not something a backup writes.
        (
            vec![
                file("/srv/app/ok.conf"),
                link("/srv/app/certs", "../../../../../etc"),
                file("/srv/app/ok.conf"),
            ],
            "/srv/app/ok.conf",
        ),
    ] {
        let id = crafted_backup(&env, files);
        let manifests = env.manifest_count();
        let o = env
            .cmd()
            .args(["restore", "full", &id, "--yes", "--root"])
            .arg(&root)
            .args(["--stop-command", &stop, "--start-command", &start])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
        let err = stderr(&o);
        let line = err
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_else(|| panic!("{err}"));
        assert!(
            line.contains("refused, nothing was changed") && line.contains(culprit),
            "{line}"
        );
        // Nothing written, nothing stopped, no safety backup; recorded.
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
        assert!(
            !env.path("escape.conf").exists()
                && !env
                    .dir
                    .path()
                    .parent()
                    .unwrap()
                    .join("escape.conf")
                    .exists()
        );
        assert!(!env.path("stopped").exists() && !env.path("started").exists());
        assert_eq!(env.manifest_count(), manifests);
        let h = env.restore_history();
        let last = h.last().unwrap();
        assert_eq!(
            (last["backup_id"].as_str(), last["failed_stage"].as_str()),
            (Some(id.as_str()), Some("check"))
        );
    }
    assert_eq!(env.restore_history().len(), 2);

    // No way to stop n8n: the backup's compose project cannot be listed when
    // the Docker engine is out of reach; the plan says what to pass instead.
    let id = crafted_backup(
        &env,
        vec![file("/opt/n8n/docker-compose.yaml"), file("/opt/n8n/.env")],
    );
    let o = env
        .cmd()
        .env(
            "DOCKER_HOST",
            format!("unix://{}", env.path("no-docker.sock").display()),
        )
        .args(["restore", "full", &id, "--dry-run", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains("dry run: the restore would be refused")
            && err.contains("compose project n8n"),
        "{err}"
    );
    assert!(
        err.contains("--stop-command") && err.contains("--no-stop"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);

    // The config file's [restore] section says how to stop and start n8n
    // and where its health endpoint is; flags still win.
    let config = env.path("ark.toml");
    std::fs::write(
        &config,
        "[restore]\nstop_command = \"systemctl stop n8n\"\nstart_command = \"systemctl start n8n\"\n\
         health_url = \"http://127.0.0.1:5678/healthz\"\nhealth_timeout_secs = 45\n",
    )
    .unwrap();
    let o = env
        .cmd()
        .arg("--config")
        .arg(&config)
        .args(["restore", "full", &id, "--dry-run", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let plan = stdout(&o);
    assert!(
        plan.contains(
            "n8n is stopped with `systemctl stop n8n` and started with `systemctl start n8n`"
        ),
        "{plan}"
    );
    assert!(
        plan.contains("wait up to 45 s for http://127.0.0.1:5678/healthz"),
        "{plan}"
    );
    let o = env
        .cmd()
        .arg("--config")
        .arg(&config)
        .args(["restore", "full", &id, "--dry-run", "--no-stop", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("nothing is stopped or started (--no-stop"),
        "{}",
        stdout(&o)
    );
    // Bad input: one clear line, nothing changed.
    for (args, needle) in [
        (
            vec!["--stop-command", "true"],
            "--stop-command and --start-command go together",
        ),
        (
            vec!["--health-url", "http://u:pw@127.0.0.1:5678/healthz"],
            "holds a user name or password",
        ),
        (
            vec!["--compose-project", "Not A Project"],
            "is not a compose project name",
        ),
    ] {
        let o = env
            .cmd()
            .args(["restore", "full", &id, "--yes", "--root"])
            .arg(&root)
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stdout(&o));
        let err = stderr(&o);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(needle) && !err.contains("pw@"), "{err}");
    }
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
    assert_eq!(
        env.restore_history().len(),
        2,
        "usage errors are not restores"
    );
}

/// n8n's own role (the usual setup): it owns the n8n database and all of its
/// tables, but may not create databases.
fn load_as_n8n_role(pg: &PgCluster) {
    pg.psql(
        "postgres",
        "CREATE ROLE n8n_app LOGIN; CREATE DATABASE n8n OWNER n8n_app",
    );
    let o = pg
        .client("psql")
        .env("PGUSER", "n8n_app")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "n8n", "-f"])
        .arg(common::pg::fixture_path(common::pg::FIXTURE_SQL))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

/// The checks of the plan cover what the restore needs to change things:
/// a connecting role that may create and swap databases, stop and start
/// commands that can run. Refused before anything is touched: no safety
/// backup, n8n not stopped, nothing written, and the message says how.
#[test]
fn what_the_restore_needs_is_checked_in_the_plan_before_anything_is_touched() {
    let pg = PgCluster::start();
    load_as_n8n_role(&pg);
    let env = Env::new();
    build_server(&env.server(), "n8n", Some(FIXTURE_ENCRYPTION_KEY));
    env.backup_full_system(&pg, "n8n", &[]);
    build_server(&env.target(), "n8n", Some(FIXTURE_ENCRYPTION_KEY));
    change_server(&env.target(), "n8n");
    change_database(&pg);
    let before_sums = pg.table_checksums("n8n");
    let before_files = tree(&env.target());
    let (stop, start) = env.scripts(&pg);
    let health = env.health();
    let port = pg.port();
    let restore = |n8n_db: &str, stop: &str| {
        env.cmd()
            .args(["restore", "full", "latest", "--yes", "--root"])
            .arg(env.root())
            .args(["--n8n-db", n8n_db, "--stop-command", stop])
            .args(["--start-command", &start])
            .args(["--health-url", &health.url, "--health-timeout", "30"])
            .output()
            .unwrap()
    };
    let unchanged = |what: &str| {
        assert_eq!(tree(&env.target()), before_files, "{what}: files");
        assert_eq!(pg.table_checksums("n8n"), before_sums, "{what}: database");
        assert_eq!(env.manifest_count(), 1, "{what}: a safety backup was taken");
        assert_eq!(env.log(), "", "{what}: n8n was stopped or started");
    };

    // n8n's role, as configured for backups: no CREATEDB.
    let o = restore(&format!("postgres://n8n_app@127.0.0.1:{port}/n8n"), &stop);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    let last = err.trim().lines().last().unwrap();
    assert!(
        last.starts_with("error: restore full refused, nothing was changed"),
        "{err}"
    );
    assert!(last.contains("CREATEDB"), "{last}");
    assert!(
        last.contains(&format!(
            "--n8n-db postgres://postgres@127.0.0.1:{port}/n8n"
        )),
        "{last}"
    );
    assert!(!last.contains("partly"), "{last}");
    assert!(stdout(&o).contains("REFUSED"), "the plan shows it");
    unchanged("a role without CREATEDB");

    // A stop command that cannot run.
    let missing = env.path("no-such-stop.sh");
    let o = restore(&pg.url("n8n"), &format!("sh {}", missing.display()));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("the stop command") && err.contains("does not exist"),
        "{err}"
    );
    unchanged("a stop command that cannot run");

    // Both refusals are recorded, without a safety backup.
    let h = env.restore_history();
    assert_eq!(h.len(), 2, "{h:#?}");
    for r in &h {
        assert_eq!(r["result"], "failed");
        assert_eq!(r["failed_stage"], "check");
        assert!(r["safety_backup"].is_null());
        assert!(r["message"]
            .as_str()
            .unwrap()
            .starts_with("restore full refused, nothing was changed"));
    }
}

/// The key check reads the compose project as n8n gets its key: here from
/// `env_file: n8n.env`, which the restore would replace with the backup's,
/// whose key is not the one the target's database was encrypted with.
#[test]
fn the_key_check_reads_the_env_file_the_compose_file_names() {
    let env = Env::new();
    let compose = "services:\n  n8n:\n    image: docker.n8n.io/n8nio/n8n\n    env_file: n8n.env\n    environment:\n      - DB_TYPE=postgresdb\n";
    let project = |base: &Path, key: &str| {
        write(
            &base.join("opt/n8n/docker-compose.yml"),
            compose.as_bytes(),
            0o644,
        );
        write(&base.join("opt/n8n/.env"), b"POSTGRES_PASSWORD=pg\n", 0o600);
        write(
            &base.join("opt/n8n/n8n.env"),
            format!("N8N_ENCRYPTION_KEY={key}\n").as_bytes(),
            0o600,
        );
    };
    let src = env.path("src");
    project(&src, "the-backups-key-2222");
    let o = env
        .cmd()
        .env_remove("N8N_ENCRYPTION_KEY")
        .args([
            "--json",
            "backup",
            "--type",
            "n8n_config",
            "--no-default-config-paths",
            "--config-path",
        ])
        .arg(src.join("opt/n8n"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let b: Value = serde_json::from_slice(&o.stdout).unwrap();
    let target = env.path("target");
    project(&under(&target, &src), FIXTURE_ENCRYPTION_KEY);
    let o = env
        .cmd()
        .env_remove("N8N_ENCRYPTION_KEY")
        .args([
            "--json",
            "restore",
            "full",
            b["backup_id"].as_str().unwrap(),
            "--dry-run",
            "--no-stop",
        ])
        .arg("--root")
        .arg(&target)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    let k = &j["plan"]["encryption_key"];
    assert_eq!(k["verdict"], "mismatch", "{j:#}");
    assert!(k.to_string().contains("n8n.env"), "{k:#}");
    // The same key on both sides: they match.
    project(&under(&target, &src), "the-backups-key-2222");
    let o = env
        .cmd()
        .env_remove("N8N_ENCRYPTION_KEY")
        .args([
            "--json",
            "restore",
            "full",
            b["backup_id"].as_str().unwrap(),
            "--dry-run",
            "--no-stop",
        ])
        .arg("--root")
        .arg(&target)
        .output()
        .unwrap();
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        j["plan"]["encryption_key"]["verdict"],
        "match",
        "{j:#} {}",
        stderr(&o)
    );
}
