//! `n8n-ark restore database`: real backups of the n8n fixture (tests/fixtures)
//! restored by the binary into ephemeral PostgreSQL clusters, checked the way
//! an operator would check them: row counts and per-table content checksums
//! against the source at backup time, the safety backup of `--replace`, what
//! refusals leave behind, and the restore history.
mod common;

use common::pg::PgCluster;
use common::{ok_json, rt, stderr, Ark};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A store and a data directory for its catalog, driven through the binary.
struct Env(Ark);

impl std::ops::Deref for Env {
    type Target = Ark;
    fn deref(&self) -> &Ark {
        &self.0
    }
}

impl Env {
    fn new() -> Env {
        Self::with_init(&["--chunk-avg-kib", "64"])
    }
    fn with_init(args: &[&str]) -> Env {
        Env(Ark::new().init(args))
    }
    /// `restore database …` (with `--json` first).
    fn restore(&self, args: &[&str]) -> Output {
        self.cmd()
            .args(["--json", "restore", "database"])
            .args(args)
            .output()
            .unwrap()
    }
}

/// A failure with one clear `error:` line holding `needle`.
fn assert_refused(o: &Output, needle: &str) -> String {
    assert!(
        !o.status.success(),
        "expected a refusal: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let err = stderr(o);
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    err
}

fn id(summary: &Value) -> String {
    summary["backup_id"].as_str().unwrap().to_string()
}

fn databases(pg: &PgCluster) -> Vec<String> {
    pg.psql(
        "postgres",
        "SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY 1",
    )
    .lines()
    .map(String::from)
    .collect()
}

/// A role owning one of the fixture's tables, so that restores must deal with
/// roles as on a real server (n8n's tables belong to n8n's user).
fn give_a_table_to_a_role(pg: &PgCluster, db: &str) {
    pg.psql(
        db,
        "CREATE ROLE ark_n8n_owner LOGIN; ALTER TABLE public.tag_entity OWNER TO ark_n8n_owner",
    );
}

#[test]
fn restored_as_a_new_database_it_equals_the_source_at_backup_time() {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    give_a_table_to_a_role(&pg, "n8n");
    let counts = pg.table_counts("n8n");
    let sums = pg.table_checksums("n8n");
    assert!(counts.values().sum::<u64>() > 100, "{counts:?}");
    let env = Env::new();
    let n8n_backup = id(&env.backup("postgres_n8n", &["--n8n-db", &pg.url("n8n")]));
    let full_backup = id(&env.backup(
        "postgres_full",
        &[
            "--n8n-db",
            &pg.url("n8n"),
            "--pg-server",
            &pg.url("postgres"),
        ],
    ));
    // The source moves on after the backups.
    pg.psql(
        "n8n",
        "DELETE FROM execution_data; UPDATE workflow_entity SET name = name || ' (edited)'",
    );
    assert_ne!(pg.table_checksums("n8n"), sums);

    let target = PgCluster::start();
    let before = databases(&target);
    let to = target.url("postgres");

    // A fresh server lacks the role owning tag_entity: refused, nothing created.
    let o = env.restore(&[&n8n_backup, "n8n", "--target-url", &to, "--as", "n8n_copy"]);
    assert_refused(&o, "ark_n8n_owner");
    assert_eq!(databases(&target), before);
    // A postgres_n8n backup holds no roles to restore.
    let o = env.restore(&[
        &n8n_backup,
        "n8n",
        "--target-url",
        &to,
        "--as",
        "n8n_copy",
        "--with-roles",
    ]);
    assert_refused(&o, "holds no roles");
    assert_eq!(databases(&target), before);

    // From the postgres_full backup with its roles: the role is created, the
    // database equals the source at backup time, table by table.
    let r = ok_json(&env.restore(&[
        &full_backup,
        "n8n",
        "--target-url",
        &to,
        "--as",
        "n8n_full",
        "--with-roles",
    ]));
    assert_eq!(r["roles"]["created"], serde_json::json!(["ark_n8n_owner"]));
    assert!(r["roles"]["existing"]
        .as_array()
        .unwrap()
        .contains(&Value::from("postgres")));
    assert_eq!(target.table_counts("n8n_full"), counts);
    assert_eq!(target.table_checksums("n8n_full"), sums);
    assert_eq!(
        target.psql(
            "n8n_full",
            "SELECT tableowner FROM pg_tables WHERE tablename = 'tag_entity'"
        ),
        "ark_n8n_owner"
    );
    let d = &r["database"];
    assert_eq!(d["mismatches"], 0);
    assert_eq!(d["tables"].as_array().unwrap().len(), counts.len());
    for t in d["tables"].as_array().unwrap() {
        let name = t["table"].as_str().unwrap();
        assert_eq!(t["expected"], t["found"], "{t}");
        assert_eq!(t["found"].as_u64(), counts.get(name).copied(), "{name}");
    }
    let full_manifest = env.manifest_of(&full_backup);
    let dump = full_manifest
        .items
        .iter()
        .find(|i| i.name == "db/n8n.dump")
        .unwrap();
    assert_eq!(d["dump_bytes"].as_u64(), Some(dump.size));

    // Now the role exists: the postgres_n8n backup restores too (text output).
    let o = env
        .cmd()
        .args([
            "restore",
            "database",
            &n8n_backup,
            "n8n",
            "--target-url",
            &to,
        ])
        .args(["--as", "n8n_copy"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("public.workflow_entity")
            && text.contains("every row count equals the backup's"),
        "{text}"
    );
    assert_eq!(target.table_checksums("n8n_copy"), sums);
    // The database belongs to the role owning most of the dump (the fixture
    // was loaded as postgres).
    assert_eq!(
        target.psql(
            "postgres",
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'n8n_copy'"
        ),
        "postgres"
    );

    // --no-owner: everything belongs to the connecting user.
    let fresh = PgCluster::start();
    ok_json(&env.restore(&[
        &n8n_backup,
        "n8n",
        "--target-url",
        &fresh.url("postgres"),
        "--as",
        "plain",
        "--no-owner",
    ]));
    assert_eq!(fresh.table_checksums("plain"), sums);
    assert_eq!(
        fresh.psql(
            "plain",
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner <> 'postgres'"
        ),
        "0"
    );

    // Every restore is in the history: the two refused ones too.
    let h = env.restore_history();
    let results: Vec<(&str, &str)> = h
        .iter()
        .map(|r| (r["result"].as_str().unwrap(), r["what"].as_str().unwrap()))
        .collect();
    assert_eq!(
        results,
        vec![
            ("failed", "database"),
            ("failed", "database"),
            ("ok", "database"),
            ("ok", "database"),
            ("ok", "database"),
        ]
    );
    assert_eq!(h[0]["failed_stage"], "check");
    assert!(h[0]["message"].as_str().unwrap().contains("ark_n8n_owner"));
    assert_eq!(h[2]["backup_id"], full_backup.as_str());
    assert_eq!(
        h[2]["target"],
        format!("postgres:n8n_full@127.0.0.1:{}", target.port())
    );
    assert_eq!(h[2]["items"][0]["name"], "database:n8n");
}

#[test]
fn replace_takes_a_pinned_safety_backup_that_brings_the_old_state_back() {
    let pg = PgCluster::start_with_password("s3cret-pw");
    pg.load_fixture("n8n");
    let at_backup = pg.table_checksums("n8n");
    let env = Env::new();
    let backup = {
        let o = env
            .cmd()
            .env("ARK_N8N_DB_PASSWORD", "s3cret-pw")
            .args(["--json", "backup", "--type", "postgres_n8n"])
            .args(["--no-default-config-paths", "--n8n-db", &pg.url("n8n")])
            .output()
            .unwrap();
        id(&ok_json(&o))
    };
    // What the operator has now, and wants back if the restore was a mistake.
    pg.psql(
        "n8n",
        "INSERT INTO tag_entity (id, name) VALUES ('tagAfterBackup1', 'after the backup');
         DELETE FROM execution_entity WHERE id IN (SELECT id FROM execution_entity ORDER BY id LIMIT 3)",
    );
    let now = pg.table_checksums("n8n");
    assert_ne!(now, at_backup);
    let to = pg.url("postgres");

    // Without --yes: a usage error, nothing happens, nothing is recorded.
    let o = env
        .cmd()
        .env("ARK_TARGET_DB_PASSWORD", "s3cret-pw")
        .args([
            "restore",
            "database",
            &backup,
            "n8n",
            "--target-url",
            &to,
            "--replace",
        ])
        .output()
        .unwrap();
    assert_refused(&o, "add --yes");
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(pg.table_checksums("n8n"), now);
    assert!(env.restore_history().is_empty());

    // Without the password: the server refuses, nothing happens.
    let o = env.restore(&[&backup, "n8n", "--target-url", &to, "--replace", "--yes"]);
    let err = assert_refused(&o, "password");
    assert!(!err.contains("s3cret-pw"));
    assert_eq!(pg.table_checksums("n8n"), now);

    // A session of n8n stays connected: the replace ends it.
    let mut session = pg
        .client("psql")
        .env("PGHOST", "127.0.0.1")
        .env("PGPASSWORD", "s3cret-pw")
        .args(["-X", "-d", "n8n", "-c", "SELECT pg_sleep(120)"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while pg.psql(
        "postgres",
        "SELECT count(*) FROM pg_stat_activity WHERE datname = 'n8n' AND query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()",
    ) != "1"
    {
        assert!(Instant::now() < deadline, "the session did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    let o = env
        .cmd()
        .env("ARK_TARGET_DB_PASSWORD", "s3cret-pw")
        .args(["--json", "restore", "database", &backup, "n8n"])
        .args(["--target-url", &to, "--replace", "--yes"])
        .output()
        .unwrap();
    let r = ok_json(&o);
    assert!(!String::from_utf8_lossy(&o.stdout).contains("s3cret-pw"));
    assert_eq!(pg.table_checksums("n8n"), at_backup);
    assert_eq!(r["database"]["replaced"], true);
    assert_eq!(r["database"]["target_database"], "n8n");
    let status = session.wait().unwrap();
    assert!(!status.success(), "the old session should have been ended");
    // No restore copy is left beside it.
    assert_eq!(databases(&pg), vec!["n8n", "postgres"]);

    // The safety backup: pinned, naming the restore, holding the state before.
    let safety = r["safety_backup"].as_str().unwrap().to_string();
    let m = env.manifest_of(&safety);
    assert_eq!(m.kind, "postgres_n8n");
    let restore_id = r["restore_id"].as_str().unwrap();
    assert_eq!(
        m.labels.get("pinned").map(String::as_str),
        Some(format!("safety backup before restore {restore_id}").as_str())
    );
    let h = env.restore_history();
    let last = h.last().unwrap();
    assert_eq!(last["result"], "ok");
    assert_eq!(last["safety_backup"], safety.as_str());
    assert_eq!(last["restore_id"], restore_id);

    // Going back: the safety backup restores what there was before.
    let o = env
        .cmd()
        .env("ARK_TARGET_DB_PASSWORD", "s3cret-pw")
        .args(["--json", "restore", "database", &safety, "n8n"])
        .args(["--target-url", &to, "--replace", "--yes"])
        .output()
        .unwrap();
    ok_json(&o);
    assert_eq!(pg.table_checksums("n8n"), now);
}

#[test]
fn refusals_are_clear_recorded_and_change_nothing() {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let env = Env::new();
    let backup = id(&env.backup("postgres_n8n", &["--n8n-db", &pg.url("n8n")]));
    let flows = id(&env.backup("flows", &["--n8n-db", &pg.url("n8n")]));
    let sums = pg.table_checksums("n8n");
    let dbs = databases(&pg);
    let to = pg.url("postgres");
    let unchanged = || {
        assert_eq!(databases(&pg), dbs);
        assert_eq!(pg.table_checksums("n8n"), sums);
    };

    // Neither --as nor --replace: the suggestion, with the backup's date.
    let o = env.restore(&[&backup, "n8n", "--target-url", &to]);
    let date = chrono_date(&env, &backup);
    assert_refused(&o, &format!("--as n8n_restored_{date}"));
    assert_eq!(o.status.code(), Some(2));
    // A password on the command line.
    let o = env.restore(&[
        &backup,
        "n8n",
        "--target-url",
        &format!(
            "postgres://postgres:hunter2@127.0.0.1:{}/postgres",
            pg.port()
        ),
        "--as",
        "x",
    ]);
    let err = assert_refused(&o, "ARK_TARGET_DB_PASSWORD");
    assert!(!err.contains("hunter2"), "{err}");
    // An unknown backup.
    let o = env.restore(&[
        "20990101T000000Z-nope",
        "n8n",
        "--target-url",
        &to,
        "--as",
        "x",
    ]);
    assert_refused(&o, "20990101T000000Z-nope");
    unchanged();
    assert!(
        env.restore_history().is_empty(),
        "usage errors record nothing"
    );

    // An existing name for --as.
    let o = env.restore(&[&backup, "n8n", "--target-url", &to, "--as", "n8n"]);
    assert_refused(&o, "the database \"n8n\" already exists");
    unchanged();
    // A database the backup does not hold.
    let o = env.restore(&[&backup, "nope", "--target-url", &to, "--as", "x"]);
    assert_refused(&o, "has no database \"nope\"; it has: n8n");
    // A backup without any dump.
    let o = env.restore(&[&flows, "n8n", "--target-url", &to, "--as", "x"]);
    assert_refused(&o, "holds no database dump");
    // A pg_restore older than the server the dump came from.
    let old = env.dir.path().join("old-bin");
    std::fs::create_dir_all(&old).unwrap();
    let fake = old.join("pg_restore");
    std::fs::write(
        &fake,
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'pg_restore (PostgreSQL) 12.22'; exit 0; fi\nexit 3\n",
    )
    .unwrap();
    chmod_x(&fake);
    let o = env.restore(&[
        &backup,
        "n8n",
        "--target-url",
        &to,
        "--as",
        "x",
        "--pg-restore",
        fake.to_str().unwrap(),
    ]);
    assert_refused(
        &o,
        "is version 12, older than the server the dump came from (version 15)",
    );
    // A pg_restore that does not exist.
    let o = env.restore(&[
        &backup,
        "n8n",
        "--target-url",
        &to,
        "--as",
        "x",
        "--pg-restore",
        "/nonexistent/pg_restore",
    ]);
    assert_refused(&o, "pg_restore not found at /nonexistent/pg_restore");
    // A server that does not answer.
    let closed = format!(
        "postgres://postgres@127.0.0.1:{}/postgres",
        common::pg::free_port()
    );
    let o = env.restore(&[&backup, "n8n", "--target-url", &closed, "--as", "x"]);
    assert_refused(&o, "cannot reach PostgreSQL at 127.0.0.1");
    // A name PostgreSQL cannot take.
    let long = "x".repeat(64);
    let o = env.restore(&[&backup, "n8n", "--target-url", &to, "--as", &long]);
    assert_refused(&o, "is not a usable database name");
    assert_eq!(o.status.code(), Some(2));
    unchanged();

    // Each refusal after the backup was found is recorded, with its reason
    // (not bad input, as the name: nothing began).
    let h = env.restore_history();
    let messages: Vec<&str> = h.iter().map(|r| r["message"].as_str().unwrap()).collect();
    assert_eq!(h.len(), 6, "{messages:#?}");
    assert!(h
        .iter()
        .all(|r| r["result"] == "failed" && r["what"] == "database"));
    for (r, needle) in h.iter().zip([
        "already exists",
        "has no database",
        "holds no database dump",
        "is version 12",
        "not found",
        "cannot reach",
    ]) {
        assert!(r["message"].as_str().unwrap().contains(needle), "{r}");
    }
}

/// `YYYYMMDD` of a backup's end (UTC), as `restore database` suggests it.
fn chrono_date(env: &Env, backup: &str) -> String {
    let m = env.manifest_of(backup);
    let secs = m.finished_ms / 1000;
    let o = Command::new("date")
        .args(["-u", "-d", &format!("@{secs}"), "+%Y%m%d"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn chmod_x(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Writes a backup by hand whose manifest claims one more row in
/// workflow_entity than its (real) dump holds: a dump that does not hold what
/// its manifest says. Returns its id.
fn backup_with_a_wrong_count(env: &Env, real: &str) -> String {
    let m = env.manifest_of(real);
    rt().block_on(async {
        let store = common::open_store(&env.store()).await;
        let dump = m.items.iter().find(|i| i.name == "db/n8n.dump").unwrap();
        let mut bytes = Vec::new();
        n8n_ark::store::reader::write_item(&store, dump, &mut bytes)
            .await
            .unwrap();
        let mut session = n8n_ark::store::ingest::BackupSession::begin(&store, "postgres_n8n")
            .await
            .unwrap();
        session
            .add_stream("db/n8n.dump", std::io::Cursor::new(bytes))
            .await
            .unwrap();
        let mut contents = m.contents.clone().unwrap();
        contents.workflows.clear();
        let t = contents.databases[0]
            .tables
            .iter_mut()
            .find(|t| t.name == "workflow_entity")
            .unwrap();
        t.rows += 1;
        let s = session
            .commit_with(BTreeMap::new(), Some(contents))
            .await
            .unwrap();
        s.backup_id
    })
}

#[test]
fn a_restore_whose_row_counts_differ_from_the_backup_is_an_error() {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let env = Env::new();
    let real = id(&env.backup("postgres_n8n", &["--n8n-db", &pg.url("n8n")]));
    let wrong = backup_with_a_wrong_count(&env, &real);
    let workflows: u64 = pg
        .psql("n8n", "SELECT count(*) FROM workflow_entity")
        .parse()
        .unwrap();
    let to = pg.url("postgres");
    let sums = pg.table_checksums("n8n");

    // Into a new database: an error naming the table, the copy left to look at.
    let o = env.restore(&[&wrong, "n8n", "--target-url", &to, "--as", "checked"]);
    assert_refused(
        &o,
        &format!(
            "public.workflow_entity (expected {}, found {workflows})",
            workflows + 1
        ),
    );
    assert!(stderr(&o).contains("left in place for inspection"));
    assert!(databases(&pg).contains(&"checked".to_string()));

    // Over the existing one: the copy is dropped, the database untouched, and
    // the message says how to go back to the safety backup anyway.
    let o = env.restore(&[&wrong, "n8n", "--target-url", &to, "--replace", "--yes"]);
    let err = assert_refused(&o, "1 table(s) differ");
    assert!(
        err.contains("the database \"n8n\" was not touched"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "--target-url postgres://postgres@127.0.0.1:{}/postgres --replace --yes",
            pg.port()
        )),
        "{err}"
    );
    assert_eq!(pg.table_checksums("n8n"), sums);
    assert_eq!(databases(&pg), vec!["checked", "n8n", "postgres"]);

    let h = env.restore_history();
    assert_eq!(h.len(), 2);
    for r in &h {
        assert_eq!(r["result"], "failed");
        assert_eq!(r["failed_stage"], "verify");
        assert_eq!(r["backup_id"], wrong.as_str());
    }
    assert!(h[0]["safety_backup"].is_null());
    let safety = h[1]["safety_backup"].as_str().unwrap();
    assert!(err.contains(&format!("n8n-ark restore database {safety} n8n")));
    // The real backup restores cleanly.
    ok_json(&env.restore(&[&real, "n8n", "--target-url", &to, "--as", "good"]));
    assert_eq!(pg.table_checksums("good"), sums);
}

#[test]
fn a_restore_that_breaks_midway_leaves_the_target_as_it_was() {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let env = Env::new();
    let backup = id(&env.backup("postgres_n8n", &["--n8n-db", &pg.url("n8n")]));
    pg.psql("n8n", "DELETE FROM execution_data");
    let sums = pg.table_checksums("n8n");
    let dbs = databases(&pg);
    let to = pg.url("postgres");
    // The real pg_restore, whose input breaks off after 600 kB (of about
    // 1.9 MB): it creates the schema and part of the data, then fails.
    let dir = env.dir.path().join("broken-bin");
    std::fs::create_dir_all(&dir).unwrap();
    let wrapper = dir.join("pg_restore");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\ncase \"$1\" in --version|--list) exec {real} \"$@\";; esac\n\
             head -c 600000 | {real} \"$@\"\n",
            real = common::pg::bin_dir().join("pg_restore").display()
        ),
    )
    .unwrap();
    chmod_x(&wrapper);
    let broken = ["--pg-restore", wrapper.to_str().unwrap()];

    // Into a new database: pg_restore's own message; the part restored dropped.
    let mut args = vec![
        backup.as_str(),
        "n8n",
        "--target-url",
        &to,
        "--as",
        "partial",
    ];
    args.extend(broken);
    let err = assert_refused(&env.restore(&args), "pg_restore (local:");
    assert!(err.contains("pg_restore: error:"), "{err}");
    // It was restored under a work name: "partial" never existed.
    assert!(
        err.contains("the partly restored database \"partial_ark_new_")
            && err
                .contains("was dropped; nothing was changed (no database \"partial\" was created)"),
        "{err}"
    );
    assert_eq!(databases(&pg), dbs);

    // Over the existing one: the safety backup is taken, the existing
    // database is untouched, and the message says how to go back.
    let mut args = vec![
        backup.as_str(),
        "n8n",
        "--target-url",
        &to,
        "--replace",
        "--yes",
    ];
    args.extend(broken);
    let err = assert_refused(&env.restore(&args), "pg_restore: error:");
    assert!(
        err.contains("the database \"n8n\" was not touched"),
        "{err}"
    );
    assert_eq!(pg.table_checksums("n8n"), sums);
    assert_eq!(databases(&pg), dbs);
    let h = env.restore_history();
    assert_eq!(h.len(), 2);
    assert!(h.iter().all(|r| r["failed_stage"] == "database"));
    let safety = h[1]["safety_backup"].as_str().unwrap();
    assert!(
        err.contains(&format!(
            "to go back: n8n-ark restore database {safety} n8n --target-url {to} --replace --yes"
        )),
        "{err}"
    );
    // Following that advice works (and here changes nothing).
    ok_json(&env.restore(&[safety, "n8n", "--target-url", &to, "--replace", "--yes"]));
    assert_eq!(pg.table_checksums("n8n"), sums);
}

/// Peak resident memory (VmHWM, KiB) of a running process, polled until it exits.
fn run_measuring_memory(mut cmd: Command) -> (Output, u64) {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let p = peak.clone();
    let poller = std::thread::spawn(move || {
        while let Ok(s) = std::fs::read_to_string(&status) {
            if let Some(kib) = s
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
            {
                p.fetch_max(kib, std::sync::atomic::Ordering::Relaxed);
            }
            if s.lines()
                .any(|l| l.starts_with("State:") && l.contains("zombie"))
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let out = child.wait_with_output().unwrap();
    poller.join().unwrap();
    (out, peak.load(std::sync::atomic::Ordering::Relaxed))
}

#[test]
fn the_dump_streams_from_the_store_into_pg_restore_without_being_staged() {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let target = PgCluster::start();
    // A store as `init` makes it by default.
    let env = Env::with_init(&[]);
    // Nothing may be staged in the temporary directory either.
    let tmp = env.dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let restore = |backup: &str, name: &str| {
        let mut cmd = env.cmd();
        // One malloc arena: the peak then shows what the process holds, not
        // what glibc's per-thread arenas keep cached after it was freed.
        cmd.env("TMPDIR", &tmp).env("MALLOC_ARENA_MAX", "1").args([
            "--json",
            "restore",
            "database",
            backup,
            "n8n",
            "--target-url",
            &target.url("postgres"),
            "--as",
            name,
        ]);
        let (o, peak_kib) = run_measuring_memory(cmd);
        (ok_json(&o), peak_kib * 1024)
    };
    let dump_size = |backup: &str| {
        env.manifest_of(backup)
            .items
            .iter()
            .find(|i| i.name == "db/n8n.dump")
            .unwrap()
            .size
    };

    // The fixture alone (2 MB): the process's own footprint.
    let small = id(&env.backup("postgres_n8n", &["--n8n-db", &pg.url("n8n")]));
    let (_, base) = restore(&small, "small");

    // About 64 MiB more of execution data (as n8n keeps it), in the dump.
    pg.psql(
        "n8n",
        "CREATE TABLE public.big_history (id int PRIMARY KEY, payload text);
         INSERT INTO public.big_history
              SELECT i, repeat(md5(i::text), 64) FROM generate_series(1, 32000) i",
    );
    let big = id(&env.backup("postgres_n8n", &["--n8n-db", &pg.url("n8n")]));
    let size = dump_size(&big);
    assert!(size > 60 << 20, "dump of {size} bytes");
    let (r, peak) = restore(&big, "streamed");
    assert_eq!(r["database"]["dump_bytes"].as_u64(), Some(size));
    assert_eq!(target.table_counts("streamed"), pg.table_counts("n8n"));
    let digest = "SELECT md5(string_agg(md5(payload), '' ORDER BY id)) FROM public.big_history";
    assert_eq!(target.psql("streamed", digest), pg.psql("n8n", digest));
    eprintln!(
        "peak RSS: {} MiB restoring a {} MiB dump, {} MiB restoring a {} MiB one",
        peak >> 20,
        size >> 20,
        base >> 20,
        dump_size(&small) >> 20
    );
    // Thirty times the data, about the same memory: a few chunks (up to
    // 2 MiB each) in flight, never the dump (which would add all its size).
    assert!(base > 0 && peak > 0);
    assert!(
        peak < base + size / 2,
        "peak RSS {peak} bytes for a dump of {size} (base {base}): the dump was held in memory"
    );
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
}

/// [`PgCluster::table_checksums`] of a database in a container.
fn container_checksums(c: &common::docker::PgContainer, db: &str) -> BTreeMap<String, String> {
    let sql = "SELECT format('SELECT %L, md5(coalesce(string_agg(md5(ROW(t.*)::text), '''' ORDER BY md5(ROW(t.*)::text)), '''')) FROM %I.%I t', n.nspname || '.' || c.relname, n.nspname, c.relname)
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
                ORDER BY 1
               \\gexec";
    c.exec_psql(db, &format!("\\pset fieldsep '\\t'\n{sql}"))
        .lines()
        .filter(|l| l.contains('\t'))
        .map(|l| {
            let (k, v) = l.rsplit_once('\t').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
#[ignore = "needs a Docker engine and ARK_TEST_PG_IMAGE (./setup.sh test provides both)"]
fn pg_restore_runs_inside_the_database_container() {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let sums = pg.table_checksums("n8n");
    let env = Env::new();
    let backup = id(&env.backup("postgres_n8n", &["--n8n-db", &pg.url("n8n")]));
    // The target server in a container (network host, 127.0.0.1 only); its own
    // pg_restore reads the dump streamed through docker exec's standard input.
    let c = common::docker::PgContainer::start();
    let port = c.port().to_string();
    let in_container = [
        "--pg-container",
        c.name(),
        "--pg-container-host",
        "/tmp",
        "--pg-container-port",
        &port,
        // Never used: the container's tools run.
        "--pg-restore",
        "/nonexistent/pg_restore",
        "--pg-dump",
        "/nonexistent/pg_dump",
    ];
    let to = c.url("postgres");
    let mut args = vec![backup.as_str(), "n8n", "--target-url", &to, "--as", "copy"];
    args.extend(in_container);
    let r = ok_json(&env.restore(&args));
    let tool = r["database"]["pg_restore"].as_str().unwrap();
    assert!(
        tool.contains("pg_restore (PostgreSQL) 15.")
            && tool.contains(&format!("docker:{}", c.name())),
        "{tool}"
    );
    assert_eq!(container_checksums(&c, "copy"), sums);

    // --replace there: the safety backup's pg_dump runs in the container too.
    c.load_fixture("n8n");
    c.exec_psql("n8n", "DELETE FROM execution_entity");
    let before = container_checksums(&c, "n8n");
    let mut args = vec![
        backup.as_str(),
        "n8n",
        "--target-url",
        &to,
        "--replace",
        "--yes",
    ];
    args.extend(in_container);
    let r = ok_json(&env.restore(&args));
    assert_eq!(container_checksums(&c, "n8n"), sums);
    let safety = env.manifest_of(r["safety_backup"].as_str().unwrap());
    let d = &safety.contents.as_ref().unwrap().databases[0];
    assert_eq!(d.pg_dump_runner, format!("docker:{}", c.name()));
    assert!(safety.labels.contains_key("pinned"));
    // Restored from the safety backup, the container's database is as it was.
    let mut args = vec![
        r["safety_backup"].as_str().unwrap(),
        "n8n",
        "--target-url",
        &to,
        "--replace",
        "--yes",
    ];
    args.extend(in_container);
    ok_json(&env.restore(&args));
    assert_eq!(container_checksums(&c, "n8n"), before);
}

// ---------------------------------------------------------------------------
// Interruptions: kills and signals at any moment never leave the server
// without its database, and what they leave is cleaned up by the next run.

/// The databases of n8n-ark's restores in progress (work copies, replaced
/// originals set aside).
fn work_databases(pg: &PgCluster) -> Vec<String> {
    pg.psql(
        "postgres",
        "SELECT datname FROM pg_database WHERE datname LIKE '%\\_ark\\_%' ORDER BY 1",
    )
    .lines()
    .map(String::from)
    .collect()
}

/// A pg_restore that, when it restores (not for --version or --list),
/// writes its pid to `pid` and waits for the file `gate` before it runs the
/// real one: the restore is held while its work database exists.
struct Gated {
    wrapper: std::path::PathBuf,
    pid: std::path::PathBuf,
    gate: std::path::PathBuf,
}

impl Gated {
    fn new(env: &Env) -> Gated {
        let dir = env.dir.path().join("gated-bin");
        std::fs::create_dir_all(&dir).unwrap();
        let g = Gated {
            wrapper: dir.join("pg_restore"),
            pid: dir.join("pid"),
            gate: dir.join("gate"),
        };
        let _ = std::fs::remove_file(&g.gate);
        let _ = std::fs::remove_file(&g.pid);
        std::fs::write(
            &g.wrapper,
            format!(
                "#!/bin/sh\ncase \"$1\" in --version|--list) exec {real} \"$@\";; esac\n\
                 echo $$ > {pid}.tmp && mv {pid}.tmp {pid}\n\
                 while [ ! -f {gate} ]; do sleep 0.05; done\n\
                 exec {real} \"$@\"\n",
                real = common::pg::bin_dir().join("pg_restore").display(),
                pid = g.pid.display(),
                gate = g.gate.display(),
            ),
        )
        .unwrap();
        chmod_x(&g.wrapper);
        g
    }
    fn arg(&self) -> [&str; 2] {
        ["--pg-restore", self.wrapper.to_str().unwrap()]
    }
    /// Waits until the held pg_restore runs; its pid.
    fn wait(&self, child: &mut std::process::Child) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(p) = std::fs::read_to_string(&self.pid)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                return p;
            }
            if let Some(s) = child.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                panic!("the restore ended ({s}) before pg_restore ran: {err}");
            }
            assert!(Instant::now() < deadline, "pg_restore did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A test that fails while a restore is held opens the gate, so that the
/// held restore runs to its end instead of waiting for ever.
impl Drop for Gated {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.gate, b"");
    }
}

fn alive(pid: i32) -> bool {
    // A zombie counts as gone: it runs nothing.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn assert_dies(pid: i32, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        assert!(Instant::now() < deadline, "{what} (pid {pid}) still runs");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &std::process::Child, sig: i32) {
    // SAFETY: kill(2) on a child this test started.
    unsafe { libc::kill(child.id() as i32, sig) };
}

#[test]
fn a_replace_killed_midway_keeps_the_database_and_the_next_run_removes_what_it_left() {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let env = Env::new();
    let backup = id(&env.backup("postgres_n8n", &["--n8n-db", &pg.url("n8n")]));
    let at_backup = pg.table_checksums("n8n");
    pg.psql("n8n", "DELETE FROM execution_data");
    let now = pg.table_checksums("n8n");
    let to = pg.url("postgres");
    let gated = Gated::new(&env);

    let mut child = env
        .cmd()
        .args(["restore", "database", &backup, "n8n", "--target-url", &to])
        .args(["--replace", "--yes"])
        .args(gated.arg())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pg_restore = gated.wait(&mut child);
    // The dump goes into a work database of a recognisable name, beside n8n.
    let work = work_databases(&pg);
    assert_eq!(work.len(), 1, "{work:?}");
    assert!(work[0].starts_with("n8n_ark_new_"), "{work:?}");
    signal(&child, libc::SIGKILL);
    child.wait().unwrap();
    // pg_restore died with n8n-ark; the database is as it was.
    assert_dies(pg_restore, "pg_restore");
    assert_eq!(pg.table_checksums("n8n"), now);
    assert_eq!(work_databases(&pg), work, "a killed process cleans nothing");

    // The next run removes what the killed one left, then restores.
    let o = env
        .cmd()
        .args(["restore", "database", &backup, "n8n", "--target-url", &to])
        .args(["--replace", "--yes"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(
        all.contains(&work[0]) && all.contains("interrupted restore"),
        "the cleanup is not reported: {all}"
    );
    assert_eq!(pg.table_checksums("n8n"), at_backup);
    assert!(work_databases(&pg).is_empty(), "{:?}", work_databases(&pg));
    assert_eq!(databases(&pg), vec!["n8n", "postgres"]);
}

#[test]
fn signals_end_a_restore_cleanly_with_a_restore_failed_event() {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let env = Env::new();
    let backup = id(&env.backup("postgres_n8n", &["--n8n-db", &pg.url("n8n")]));
    pg.psql("n8n", "DELETE FROM execution_data");
    let now = pg.table_checksums("n8n");
    let to = pg.url("postgres");
    let dbs = databases(&pg);

    for (sig, name, code) in [
        (libc::SIGTERM, "SIGTERM", 143),
        (libc::SIGINT, "SIGINT", 130),
        (libc::SIGHUP, "SIGHUP", 129),
    ] {
        let gated = Gated::new(&env);
        let mut child = env
            .cmd()
            .args(["restore", "database", &backup, "n8n", "--target-url", &to])
            .args(["--as", "copy"])
            .args(gated.arg())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pg_restore = gated.wait(&mut child);
        // The asked name appears only when the copy is complete and checked.
        assert!(!databases(&pg).contains(&"copy".to_string()));
        assert_eq!(work_databases(&pg).len(), 1);
        signal(&child, sig);
        let o = child.wait_with_output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(code), "{name}: {err}");
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{err}");
        assert!(
            errors[0].contains(&format!("interrupted by {name}")),
            "{err}"
        );
        assert!(errors[0].contains("nothing was changed"), "{err}");
        assert_dies(pg_restore, "pg_restore");
        assert_eq!(databases(&pg), dbs, "{name}");
        assert!(work_databases(&pg).is_empty());
        let h = env.restore_history();
        let last = h.last().unwrap();
        assert_eq!(last["result"], "failed", "{last}");
        assert_eq!(last["failed_stage"], "database");
        assert!(
            last["message"]
                .as_str()
                .unwrap()
                .contains(&format!("interrupted by {name}")),
            "{last}"
        );
    }
    assert_eq!(env.restore_history().len(), 3);

    // Over the existing database: its safety backup is kept, it is untouched.
    let gated = Gated::new(&env);
    let mut child = env
        .cmd()
        .args(["restore", "database", &backup, "n8n", "--target-url", &to])
        .args(["--replace", "--yes"])
        .args(gated.arg())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    gated.wait(&mut child);
    signal(&child, libc::SIGTERM);
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(143), "{err}");
    assert!(
        err.contains("the database \"n8n\" was not touched"),
        "{err}"
    );
    assert_eq!(pg.table_checksums("n8n"), now);
    assert!(work_databases(&pg).is_empty());
    let h = env.restore_history();
    let last = h.last().unwrap();
    assert_eq!(last["result"], "failed");
    assert!(last["safety_backup"].is_string(), "{last}");
}

/// Sessions stay connected to the database being replaced and to the work
/// copy (as a running n8n, or an operator's psql, would); a watcher looks
/// every few milliseconds. At no moment is there no `n8n` database, and the
/// restore ends them and swaps.
#[test]
fn a_replace_never_leaves_the_server_without_the_database() {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let env = Env::new();
    let backup = id(&env.backup("postgres_n8n", &["--n8n-db", &pg.url("n8n")]));
    let at_backup = pg.table_checksums("n8n");
    pg.psql("n8n", "DELETE FROM execution_data");
    let to = pg.url("postgres");

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let missing = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let looks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sock = pg.socket_dir().to_path_buf();
    let port = pg.port();
    let psql = move |db: &str| {
        let mut c = common::pg::clean_command(common::pg::bin_dir().join("psql"));
        c.env("PGHOST", &sock)
            .env("PGPORT", port.to_string())
            .env("PGUSER", "postgres")
            .args(["-X", "-q", "-At", "-d", db]);
        c
    };
    let watcher = {
        let (stop, missing, looks, psql) =
            (stop.clone(), missing.clone(), looks.clone(), psql.clone());
        std::thread::spawn(move || {
            let mut sessions = Vec::new();
            let mut seen = std::collections::BTreeSet::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let o = psql("postgres")
                    .args(["-c", "SELECT datname FROM pg_database"])
                    .output()
                    .unwrap();
                let names: Vec<String> = String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(String::from)
                    .collect();
                if o.status.success() {
                    looks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if !names.iter().any(|n| n == "n8n") {
                        missing.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                }
                // A session in each new database of the restore, and in n8n.
                for n in names
                    .iter()
                    .filter(|n| n.as_str() == "n8n" || n.contains("_ark_"))
                {
                    if seen.insert(n.clone()) {
                        sessions.push(
                            psql(n)
                                .args(["-c", "SELECT pg_sleep(120)"])
                                .stdout(Stdio::null())
                                .stderr(Stdio::null())
                                .spawn()
                                .unwrap(),
                        );
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            sessions
        })
    };
    let o = env.restore(&[&backup, "n8n", "--target-url", &to, "--replace", "--yes"]);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut sessions = watcher.join().unwrap();
    assert!(looks.load(std::sync::atomic::Ordering::SeqCst) > 10);
    assert_eq!(
        missing.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "there was a moment without the n8n database: {}",
        stderr(&o)
    );
    ok_json(&o);
    assert_eq!(pg.table_checksums("n8n"), at_backup);
    assert!(work_databases(&pg).is_empty(), "{:?}", work_databases(&pg));
    // The sessions in the replaced database and in the work copy were ended.
    assert!(sessions.len() >= 2);
    for s in &mut sessions {
        let _ = s.kill();
        let _ = s.wait();
    }
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

#[test]
fn a_role_that_cannot_swap_databases_is_refused_before_anything_is_touched() {
    let pg = PgCluster::start();
    load_as_n8n_role(&pg);
    pg.psql("postgres", "CREATE ROLE helper LOGIN CREATEDB");
    let env = Env::new();
    let backup = id(&env.backup("postgres_n8n", &["--n8n-db", &pg.url("n8n")]));
    pg.psql("n8n", "DELETE FROM execution_data");
    let now = pg.table_checksums("n8n");
    let dbs = databases(&pg);
    let manifests = env.manifest_count();
    let port = pg.port();
    let as_role = |role: &str| format!("postgres://{role}@127.0.0.1:{port}/postgres");

    // n8n's role: no CREATEDB. Refused with the fix, before the safety backup.
    let o = env.restore(&[
        &backup,
        "n8n",
        "--target-url",
        &as_role("n8n_app"),
        "--replace",
        "--yes",
    ]);
    let err = assert_refused(&o, "CREATEDB");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains(&format!(
            "--target-url postgres://postgres@127.0.0.1:{port}/postgres"
        )),
        "{err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");
    assert!(!err.contains("partly"), "{err}");
    assert_eq!(env.manifest_count(), manifests, "a safety backup was taken");
    assert_eq!(pg.table_checksums("n8n"), now);
    assert_eq!(databases(&pg), dbs);
    // --as needs CREATEDB too.
    let o = env.restore(&[
        &backup,
        "n8n",
        "--target-url",
        &as_role("n8n_app"),
        "--as",
        "copy",
    ]);
    assert_refused(&o, "CREATEDB");
    // A role that may create databases but neither owns n8n nor is a
    // superuser cannot set it aside.
    let o = env.restore(&[
        &backup,
        "n8n",
        "--target-url",
        &as_role("helper"),
        "--replace",
        "--yes",
    ]);
    let err = assert_refused(&o, "owner");
    assert!(err.contains("n8n_app"), "{err}");
    assert_eq!(env.manifest_count(), manifests);
    assert_eq!(databases(&pg), dbs);
    let h = env.restore_history();
    assert_eq!(h.len(), 3);
    for r in &h {
        assert_eq!(r["failed_stage"], "check", "{r}");
        assert!(r["safety_backup"].is_null());
    }

    // With CREATEDB, n8n's role (the owner) replaces its own database.
    pg.psql("postgres", "ALTER ROLE n8n_app CREATEDB");
    let r = ok_json(&env.restore(&[
        &backup,
        "n8n",
        "--target-url",
        &as_role("n8n_app"),
        "--replace",
        "--yes",
    ]));
    assert_eq!(r["database"]["replaced"], true);
    assert_ne!(pg.table_checksums("n8n"), now);
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'n8n'"
        ),
        "n8n_app"
    );
    assert!(work_databases(&pg).is_empty());
}

/// The processes of a container, as `docker top` lists them.
fn container_processes(c: &common::docker::PgContainer) -> String {
    let o = common::docker::docker()
        .args(["top", c.name()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A pg_restore run inside the database container through `docker exec`
/// ends with the restore: killed with it (SIGKILL: its input closes) or
/// stopped by it (SIGTERM: the restore kills it); nothing of it is left in
/// the container, and the next run removes the work database.
#[test]
fn a_pg_restore_in_the_container_ends_with_the_restore() {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    // Enough data that pg_restore runs for a while.
    pg.psql(
        "n8n",
        "CREATE TABLE public.big_history (id int PRIMARY KEY, payload text);
         INSERT INTO public.big_history
              SELECT i, repeat(md5(i::text), 64) FROM generate_series(1, 24000) i",
    );
    let env = Env::new();
    let backup = id(&env.backup("postgres_n8n", &["--n8n-db", &pg.url("n8n")]));
    let c = common::docker::PgContainer::start();
    let port = c.port().to_string();
    let to = c.url("postgres");
    let work = |c: &common::docker::PgContainer| -> Vec<String> {
        c.exec_psql(
            "postgres",
            "SELECT datname FROM pg_database WHERE datname LIKE '%\\_ark\\_%' ORDER BY 1",
        )
        .lines()
        .map(String::from)
        .collect()
    };
    for (sig, name) in [
        (libc::SIGKILL, "copy_killed"),
        (libc::SIGTERM, "copy_stopped"),
    ] {
        let mut child = env
            .cmd()
            .args(["restore", "database", &backup, "n8n", "--target-url", &to])
            .args(["--as", name, "--pg-container", c.name()])
            .args(["--pg-container-host", "/tmp", "--pg-container-port", &port])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        while !container_processes(&c).contains("pg_restore --exit-on-error") {
            assert!(
                child.try_wait().unwrap().is_none(),
                "the restore ended before pg_restore was seen in the container"
            );
            assert!(Instant::now() < deadline, "pg_restore never ran");
            std::thread::sleep(Duration::from_millis(20));
        }
        signal(&child, sig);
        let o = child.wait_with_output().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ps = container_processes(&c);
            if !ps.contains("pg_restore") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "pg_restore outlived the restore ({sig}) in the container:\n{ps}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        if sig == libc::SIGTERM {
            assert_eq!(o.status.code(), Some(143), "{}", stderr(&o));
            assert!(work(&c).is_empty(), "{:?}", work(&c));
        }
    }
    // The next run removes what the killed one left.
    ok_json(&env.restore(&[
        &backup,
        "n8n",
        "--target-url",
        &to,
        "--as",
        "copy_next",
        "--pg-container",
        c.name(),
        "--pg-container-host",
        "/tmp",
        "--pg-container-port",
        &port,
    ]));
    assert!(work(&c).is_empty(), "{:?}", work(&c));
    let dbs = c.exec_psql("postgres", "SELECT datname FROM pg_database ORDER BY 1");
    assert!(
        dbs.contains("copy_next") && !dbs.contains("copy_killed") && !dbs.contains("copy_stopped"),
        "{dbs}"
    );
}

/// A small file system of its own (tmpfs), unmounted on drop.
struct SmallDisk {
    path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn new(mib: u64) -> SmallDisk {
        assert!(
            unsafe { libc::geteuid() } == 0,
            "this test mounts a tmpfs: run it as root"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mib}m,mode=0755"),
                "tmpfs",
            ])
            .arg(&path)
            .status()
            .unwrap()
            .success();
        assert!(ok, "cannot mount a tmpfs at {}", path.display());
        SmallDisk { path, _dir: dir }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// A server whose disk cannot hold the restored copy beside the database
/// it replaces is refused before anything is touched, saying how much is
/// free and needed.
#[test]
fn a_server_without_room_for_the_restored_copy_is_refused_before_anything_is_touched() {
    let source = PgCluster::start();
    source.load_fixture("n8n");
    // About 40 MiB that PostgreSQL cannot compress (as stored executions
    // with binary data can be).
    source.psql(
        "n8n",
        "CREATE TABLE public.big_history (id int PRIMARY KEY, payload text);
         INSERT INTO public.big_history
              SELECT i, (SELECT string_agg(md5(random()::text || i || g), '') FROM generate_series(1, 64) g)
                FROM generate_series(1, 20000) i",
    );
    let env = Env::new();
    let backup = id(&env.backup("postgres_n8n", &["--n8n-db", &source.url("n8n")]));
    // The target's data directory on a disk with 6 MiB left.
    let disk = SmallDisk::new(256);
    let target = PgCluster::start_in(&disk.path);
    target.load_fixture("n8n");
    target.psql("postgres", "CHECKPOINT");
    let ballast = disk.path.join("ballast");
    let free = common::pg::free_space(&disk.path);
    std::fs::write(&ballast, vec![0u8; (free - (6 << 20)) as usize]).unwrap();
    let before = target.table_checksums("n8n");
    let dbs = databases(&target);
    let manifests = env.manifest_count();
    let to = target.url("postgres");
    for mode in [&["--as", "copy"][..], &["--replace", "--yes"][..]] {
        let mut args = vec![backup.as_str(), "n8n", "--target-url", &to];
        args.extend_from_slice(mode);
        let o = env.restore(&args);
        let err = assert_refused(&o, "free space on the server first");
        assert!(err.contains("could not fit"), "{err}");
        assert!(err.contains("nothing was changed"), "{err}");
    }
    assert_eq!(env.manifest_count(), manifests, "a safety backup was taken");
    assert_eq!(target.table_checksums("n8n"), before);
    assert_eq!(databases(&target), dbs);
    let h = env.restore_history();
    assert_eq!(h.len(), 2);
    assert!(h.iter().all(|r| r["failed_stage"] == "check"));
    // With room, the same restore goes through.
    std::fs::remove_file(&ballast).unwrap();
    ok_json(&env.restore(&[&backup, "n8n", "--target-url", &to, "--as", "copy"]));
    drop(target);
}
