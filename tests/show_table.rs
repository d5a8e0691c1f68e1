//! `show BACKUP --table NAME`: rows of any table of a backed-up database,
//! read through the binary from a local browse sandbox the dump is loaded
//! into, compared with the source database's own rows; secrets masked unless
//! asked for; unknown tables refused before any sandbox is made; a second
//! request reusing the sandbox; the sandbox gone after its idle time.
mod common;

use common::pg::PgCluster;
use common::{stderr, Ark};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Seconds a browse sandbox stays up after its last use in these tests.
const IDLE: u64 = 4;

struct Env(Ark);

impl std::ops::Deref for Env {
    type Target = Ark;
    fn deref(&self) -> &Ark {
        &self.0
    }
}

impl Env {
    fn new() -> Env {
        let ark = Ark::new();
        let sandboxes = ark.path("sandboxes");
        std::fs::create_dir_all(&sandboxes).unwrap();
        Env(ark
            .env("ARK_SANDBOX_TMPDIR", sandboxes)
            .env("ARK_SANDBOX_IDLE", IDLE.to_string())
            .init(&["--chunk-avg-kib", "64"]))
    }
    /// Where the local sandboxes of these tests are made.
    fn sandboxes(&self) -> PathBuf {
        self.path("sandboxes")
    }
    /// `show latest --table NAME --sandbox local --json ARGS...`.
    fn table(&self, name: &str, args: &[&str]) -> (Value, String, Duration) {
        let t = Instant::now();
        let o = self.ark(
            &[
                &[
                    "--json",
                    "show",
                    "latest",
                    "--table",
                    name,
                    "--sandbox",
                    "local",
                ],
                args,
            ]
            .concat(),
        );
        let took = t.elapsed();
        assert!(o.status.success(), "show --table {name}: {}", stderr(&o));
        (serde_json::from_slice(&o.stdout).unwrap(), stderr(&o), took)
    }
    /// The local sandbox directories that exist now.
    fn live_sandboxes(&self) -> Vec<PathBuf> {
        live_sandboxes(&self.sandboxes())
    }
}

fn live_sandboxes(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

impl Drop for Env {
    /// Whatever a failed assertion left up goes with the test.
    fn drop(&mut self) {
        for s in self.live_sandboxes() {
            let _ = self.ark(&["sandbox", "remove", s.to_str().unwrap()]).status;
        }
    }
}

/// The source's rows as `row_to_json` (timestamps in UTC), in key order.
fn source_rows(pg: &PgCluster, sql: &str) -> Vec<Value> {
    let out = pg.psql(
        "n8n",
        &format!("SET TimeZone = 'UTC'; SELECT row_to_json(q) FROM ({sql}) q"),
    );
    out.lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn rows(v: &Value) -> Vec<Value> {
    v["rows"].as_array().unwrap().clone()
}

#[test]
fn rows_of_the_dump_masked_reused_and_gone_after_the_idle_time() {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let env = Env::new();
    let o = env.backup_output("postgres_n8n", &["--no-verify", "--n8n-db", &pg.url("n8n")]);
    assert!(o.status.success(), "backup: {}", stderr(&o));
    // The source changes after the backup: the rows shown are the backup's.
    let executions_at_backup =
        source_rows(&pg, "SELECT * FROM execution_entity ORDER BY id LIMIT 7");
    let newest_at_backup = source_rows(
        &pg,
        "SELECT * FROM execution_entity ORDER BY id DESC LIMIT 3",
    );
    let settings_at_backup = source_rows(&pg, "SELECT * FROM settings ORDER BY key");
    let credentials_at_backup = source_rows(&pg, "SELECT * FROM credentials_entity ORDER BY id");
    let total: u64 = pg
        .psql("n8n", "SELECT count(*) FROM execution_entity")
        .parse()
        .unwrap();
    assert!(total >= 8 && settings_at_backup.len() > 2 && credentials_at_backup.len() > 2);
    pg.psql(
        "n8n",
        "DELETE FROM settings WHERE key = 'ui.banners.dismissed'; \
         UPDATE credentials_entity SET name = name || ' (renamed)'",
    );

    // An unknown table, a table name trying SQL: refused, no sandbox made.
    for bad in [
        "no_such_table",
        "settings; DROP TABLE settings",
        "\"settings\"",
    ] {
        let o = env.ark(&["show", "latest", "--table", bad, "--sandbox", "local"]);
        assert!(!o.status.success(), "{bad} accepted");
        let err = stderr(&o);
        assert!(err.contains("has no table"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    assert!(env.live_sandboxes().is_empty(), "a refusal made a sandbox");
    let o = env.ark(&["show", "latest", "--table", "settings", "--limit", "0"]);
    assert!(!o.status.success());
    let o = env.ark(&["show", "latest", "--limit", "5"]);
    assert!(!o.status.success(), "--limit without --table accepted");

    // First request: the dump is loaded into a new sandbox.
    let (first, err, _) = env.table("execution_entity", &["--limit", "7"]);
    assert_eq!(first["loaded"], true, "{err}");
    assert_eq!(first["total_rows"].as_u64(), Some(total));
    assert_eq!(first["order_by"], serde_json::json!(["id"]));
    assert_eq!(rows(&first), executions_at_backup);
    let sandboxes = env.live_sandboxes();
    assert_eq!(sandboxes.len(), 1, "{sandboxes:?}");
    assert!(err.contains("sandbox: local:"), "{err}");

    // Second request of the same backup: the same sandbox, the dump already
    // in it (not loaded again).
    let (newest, err, _) = env.table("execution_entity", &["--limit", "3", "--desc"]);
    assert_eq!(newest["loaded"], false, "{err}");
    assert!(err.contains("(reused)"), "{err}");
    assert_eq!(rows(&newest), newest_at_backup);
    assert_eq!(env.live_sandboxes(), sandboxes, "a second sandbox was made");

    let (settings, _, _) = env.table("settings", &["--limit", "100"]);
    assert_eq!(rows(&settings), settings_at_backup);
    assert!(settings["columns"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["masked"] == false));

    // Credentials: every column but the encrypted data as in the source; the
    // data masked, and never in the output.
    let (creds, _, _) = env.table("public.credentials_entity", &["--limit", "100"]);
    let shown = rows(&creds);
    assert_eq!(shown.len(), credentials_at_backup.len());
    let text = serde_json::to_string(&creds).unwrap();
    for (s, src) in shown.iter().zip(&credentials_at_backup) {
        assert_eq!(s["data"], "[masked]");
        let secret = src["data"].as_str().unwrap();
        assert!(!text.contains(secret), "a secret was printed");
        let (mut s, mut src) = (s.clone(), src.clone());
        s.as_object_mut().unwrap().remove("data");
        src.as_object_mut().unwrap().remove("data");
        assert_eq!(s, src);
    }
    let masked: Vec<&str> = creds["columns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["masked"] == true)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(masked, ["data"]);
    // The text form says so, and does not print the secret either.
    let o = env.ark(&[
        "show",
        "latest",
        "--table",
        "credentials_entity",
        "--sandbox",
        "local",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("masked: data"), "{out}");
    assert!(
        out.contains(credentials_at_backup[0]["name"].as_str().unwrap()),
        "{out}"
    );
    assert!(!out.contains("U2FsdGVkX1"), "{out}");

    // Asked for: the secrets as in the source, with a warning.
    let (creds, err, _) = env.table("credentials_entity", &["--limit", "100", "--show-secrets"]);
    assert_eq!(rows(&creds), credentials_at_backup);
    assert!(err.contains("warning: --show-secrets"), "{err}");

    // Nobody asks again: the sandbox goes by itself after its idle time.
    let deadline = Instant::now() + Duration::from_secs(IDLE + 30);
    while !env.live_sandboxes().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the browse sandbox is still there {}s after its idle time: {:?}",
            30,
            env.live_sandboxes()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}
