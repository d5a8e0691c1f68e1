//! Backups of every kind against real PostgreSQL clusters loaded with the n8n
//! fixture (tests/fixtures), through the `n8n-ark` binary: what a user runs.
mod common;

use common::pg::PgCluster;
use common::{bin, rt, stderr, Ark, PASSPHRASE};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use store_format::{Event, Manifest, ObjectId};

/// A store (16 KiB chunks, so that the fixture's 2 MB dump has enough of them
/// to show what a second backup reuses) and a data directory for its catalog.
struct Env(Ark);

impl std::ops::Deref for Env {
    type Target = Ark;
    fn deref(&self) -> &Ark {
        &self.0
    }
}

impl Env {
    fn new() -> Env {
        Env::with_init(&["--chunk-avg-kib", "16"])
    }
    /// A store made by `init` with these arguments.
    fn with_init(args: &[&str]) -> Env {
        Env(Ark::new().init(args))
    }
    fn manifest(&self, summary: &Value) -> Manifest {
        let id = ObjectId::from_hex(summary["manifest"].as_str().unwrap()).unwrap();
        rt().block_on(async {
            common::open_store(&self.store())
                .await
                .read_manifest(&id)
                .await
                .unwrap()
        })
    }
    fn items(&self, summary: &Value) -> BTreeMap<String, Vec<u8>> {
        rt().block_on(async {
            let store = common::open_store(&self.store()).await;
            common::restore_all(&store, summary["manifest"].as_str().unwrap()).await
        })
    }
}

/// Restores a dump item into a new database of `pg` with pg_restore.
fn pg_restore(pg: &PgCluster, db: &str, dump: &[u8]) {
    pg.create_db(db);
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), dump).unwrap();
    let o = pg
        .client("pg_restore")
        .args(["--no-owner", "--exit-on-error", "-d", db])
        .arg(f.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "pg_restore: {}", stderr(&o));
}

fn manifest_counts(m: &Manifest, db: &str) -> BTreeMap<String, u64> {
    let c = m.contents.as_ref().expect("contents");
    let d = c
        .databases
        .iter()
        .find(|d| d.name == db)
        .expect("database in manifest");
    d.tables
        .iter()
        .map(|t| (format!("{}.{}", t.schema, t.name), t.rows))
        .collect()
}

/// The n8n fixture's rows of workflow_entity, as row_to_json with UTC times.
fn workflow_rows(pg: &PgCluster, db: &str) -> BTreeMap<String, Value> {
    pg.psql(
        db,
        "SET TimeZone = 'UTC'; SELECT row_to_json(w)::text FROM workflow_entity w ORDER BY id",
    )
    .lines()
    .map(|l| {
        let v: Value = serde_json::from_str(l).unwrap();
        (v["id"].as_str().unwrap().to_string(), v)
    })
    .collect()
}

#[test]
fn postgres_n8n_round_trips_and_the_second_backup_stores_only_changes() {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let env = Env::new();
    let url = pg.url("n8n");
    let s1 = env.backup("postgres_n8n", &["--n8n-db", &url]);
    let m1 = env.manifest(&s1);
    let c1 = m1.contents.clone().unwrap();

    // The description: every table with its exact count, the migration head.
    assert_eq!(manifest_counts(&m1, "n8n"), pg.table_counts("n8n"));
    assert_eq!(c1.databases.len(), 1);
    let d = &c1.databases[0];
    assert!(
        d.is_n8n && d.tables.len() >= 50,
        "{} tables",
        d.tables.len()
    );
    assert_eq!(
        d.migration_head.as_deref(),
        Some(
            pg.psql(
                "n8n",
                "SELECT name FROM migrations ORDER BY timestamp DESC LIMIT 1"
            )
            .as_str()
        )
    );
    let wf = d
        .tables
        .iter()
        .find(|t| t.name == "workflow_entity")
        .unwrap();
    assert!(wf
        .columns
        .iter()
        .any(|c| c.name == "nodes" && c.data_type == "json"));
    assert!(d.server_version_num >= 150000 && d.pg_dump_version.contains("pg_dump"));

    // Workflows and credentials (names only).
    let rows = workflow_rows(&pg, "n8n");
    assert_eq!(c1.workflows.len(), rows.len());
    assert_eq!(s1["counts"]["workflows"], rows.len());
    let creds: u64 = pg
        .psql("n8n", "SELECT count(*) FROM credentials_entity")
        .parse()
        .unwrap();
    assert_eq!(c1.credentials.len() as u64, creds);
    let secret = pg.psql("n8n", "SELECT data FROM credentials_entity LIMIT 1");

    // The dump restores to the same rows, table by table.
    let items = env.items(&s1);
    pg_restore(&pg, "n8n_restored", &items["db/n8n.dump"]);
    assert_eq!(pg.table_counts("n8n_restored"), pg.table_counts("n8n"));
    assert_eq!(
        pg.table_checksums("n8n_restored"),
        pg.table_checksums("n8n")
    );

    // Every workflow object equals its row.
    for w in &c1.workflows {
        let obj: Value = serde_json::from_slice(&items[&w.item]).unwrap();
        let row = &rows[&w.id];
        for field in [
            "id",
            "name",
            "active",
            "nodes",
            "connections",
            "settings",
            "staticData",
            "versionId",
        ] {
            assert_eq!(obj[field], row[field], "workflow {} field {field}", w.id);
        }
        assert_eq!(w.nodes.len(), row["nodes"].as_array().unwrap().len());
        assert_eq!(w.name, row["name"].as_str().unwrap());
        // Canonical: rebuilt from the restored database's row, the same bytes.
        let restored: Value = serde_json::from_str(&pg.psql(
            "n8n_restored",
            &format!("SET TimeZone = 'UTC'; SELECT row_to_json(w)::text FROM workflow_entity w WHERE id = '{}'", w.id),
        ))
        .unwrap();
        let tags: Vec<(String, String)> = serde_json::from_str(&pg.psql(
            "n8n_restored",
            &format!(
                "SELECT coalesce(json_agg(json_build_array(t.id, t.name) ORDER BY t.name, t.id), '[]') \
                 FROM workflows_tags wt JOIN tag_entity t ON t.id = wt.\"tagId\" WHERE wt.\"workflowId\" = '{}'",
                w.id
            ),
        ))
        .unwrap();
        let Value::Object(restored) = restored else {
            panic!()
        };
        let again = n8n_ark::source::workflow::canonical_from_db_row(
            n8n_ark::source::json::Json::from(Value::Object(restored))
                .into_object()
                .unwrap(),
            tags,
            &["createdAt".to_string(), "updatedAt".to_string()],
        )
        .unwrap();
        assert_eq!(
            again.json, items[&w.item],
            "workflow {} rebuilds to its object",
            w.id
        );
    }
    // Names and types of credentials only, never their data.
    let plain = m1.encode_plaintext();
    assert!(!plain.windows(secret.len()).any(|w| w == secret.as_bytes()));

    // A day later: two workflows edited.
    let edited: Vec<String> = pg
        .psql("n8n", "SELECT id FROM workflow_entity ORDER BY id LIMIT 2")
        .lines()
        .map(str::to_string)
        .collect();
    for id in &edited {
        pg.psql(
            "n8n",
            &format!(
                "UPDATE workflow_entity SET name = name || ' (edited)', \"updatedAt\" = now() WHERE id = '{id}'"
            ),
        );
    }
    let s2 = env.backup("postgres_n8n", &["--n8n-db", &url]);
    let m2 = env.manifest(&s2);
    let c2 = m2.contents.clone().unwrap();
    let old: BTreeMap<&str, ObjectId> = c1
        .workflows
        .iter()
        .map(|w| (w.id.as_str(), w.object))
        .collect();
    let changed: Vec<&str> = c2
        .workflows
        .iter()
        .filter(|w| old[w.id.as_str()] != w.object)
        .map(|w| w.id.as_str())
        .collect();
    assert_eq!(
        changed,
        edited.iter().map(String::as_str).collect::<Vec<_>>()
    );
    // Only the changed workflows' objects and a small part of the dump are new.
    let dump1: std::collections::HashSet<ObjectId> = m1
        .items
        .iter()
        .flat_map(|i| i.chunks.iter().map(|c| c.id))
        .collect();
    let dump_item = m2.items.iter().find(|i| i.name == "db/n8n.dump").unwrap();
    let new_dump: u64 = dump_item
        .chunks
        .iter()
        .filter(|c| !dump1.contains(&c.id))
        .map(|c| c.len as u64)
        .sum();
    assert!(
        new_dump * 6 < dump_item.size,
        "{new_dump} of {} dump bytes are new",
        dump_item.size
    );
    let new_workflow_objects = m2
        .items
        .iter()
        .filter(|i| i.name.starts_with("workflows/"))
        .filter(|i| i.chunks.iter().any(|c| !dump1.contains(&c.id)))
        .count();
    assert_eq!(new_workflow_objects, 2);
    assert!(s2["new_bytes"].as_u64().unwrap() * 4 < s1["new_bytes"].as_u64().unwrap());

    // The journal: started and completed, twice, in order.
    let kinds: Vec<&str> = env
        .events()
        .iter()
        .map(|e| e.kind_version().0)
        .filter(|k| k.starts_with("Backup"))
        .map(|k| match k {
            "BackupStarted" => "S",
            "BackupCompleted" => "C",
            _ => "?",
        })
        .collect();
    assert_eq!(kinds, ["S", "C", "S", "C"]);
}

#[test]
fn counts_stay_exact_while_the_database_is_written() {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    pg.psql(
        "n8n",
        "CREATE TABLE ark_load (id bigserial PRIMARY KEY, v text NOT NULL)",
    );
    let env = Env::new();
    // A writer that commits a row (and touches n8n's own tables) every millisecond or so.
    let mut writer = pg
        .client("psql")
        .args(["-X", "-q", "-d", "n8n", "-c"])
        .arg(
            "DO $$ BEGIN FOR i IN 1..200000 LOOP
                 INSERT INTO ark_load (v) VALUES (repeat(md5(i::text), 8));
                 INSERT INTO tag_entity (id, name) VALUES ('load' || i, 'load ' || i);
                 IF i % 3 = 0 THEN DELETE FROM tag_entity WHERE id = 'load' || (i - 1); END IF;
                 COMMIT;
               END LOOP; END $$",
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let count = || -> u64 {
        pg.psql("n8n", "SELECT count(*) FROM ark_load")
            .parse()
            .unwrap()
    };
    while count() < 200 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let before = count();
    let s = env.backup("postgres_n8n", &["--n8n-db", &pg.url("n8n")]);
    let after = count();
    let _ = writer.kill();
    let _ = writer.wait();
    assert!(after > before, "the writer kept writing during the backup");
    let m = env.manifest(&s);
    let counts = manifest_counts(&m, "n8n");
    let in_manifest = counts["public.ark_load"];
    assert!(before <= in_manifest && in_manifest <= after);
    // What the dump holds is exactly what the manifest says, for every table.
    pg_restore(&pg, "restored", &env.items(&s)["db/n8n.dump"]);
    assert_eq!(pg.table_counts("restored"), counts);
}

#[test]
fn postgres_full_takes_every_database_and_the_roles() {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    pg.create_db("management");
    pg.psql(
        "management",
        "CREATE ROLE ark_reader LOGIN PASSWORD 'reader-pw'; \
         CREATE TABLE jobs (id int PRIMARY KEY, what text); \
         INSERT INTO jobs SELECT g, 'job ' || g FROM generate_series(1, 500) g; \
         GRANT SELECT ON jobs TO ark_reader;",
    );
    let env = Env::new();
    let s = env.backup(
        "postgres_full",
        &[
            "--n8n-db",
            &pg.url("n8n"),
            "--pg-server",
            &pg.url("postgres"),
        ],
    );
    let m = env.manifest(&s);
    let c = m.contents.clone().unwrap();
    let mut names: Vec<&str> = c.databases.iter().map(|d| d.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["management", "n8n", "postgres"]);
    assert!(c.databases.iter().find(|d| d.name == "n8n").unwrap().is_n8n);
    assert!(
        !c.databases
            .iter()
            .find(|d| d.name == "management")
            .unwrap()
            .is_n8n
    );
    // Each database its own snapshot.
    let snaps: std::collections::HashSet<&str> =
        c.databases.iter().map(|d| d.snapshot.as_str()).collect();
    assert_eq!(snaps.len(), 3);
    assert!(!c.workflows.is_empty());
    let items = env.items(&s);
    let globals = String::from_utf8(items[c.globals_item.as_deref().unwrap()].clone()).unwrap();
    assert!(globals.contains("CREATE ROLE ark_reader"), "{globals}");

    // A fresh server receives the roles, then the databases.
    let fresh = PgCluster::start();
    fresh.psql("postgres", &globals.replace("CREATE ROLE postgres;", ""));
    for db in ["n8n", "management"] {
        pg_restore(&fresh, db, &items[&format!("db/{db}.dump")]);
        assert_eq!(fresh.table_counts(db), pg.table_counts(db), "{db}");
        assert_eq!(fresh.table_checksums(db), pg.table_checksums(db), "{db}");
        assert_eq!(manifest_counts(&m, db), pg.table_counts(db), "{db}");
    }
    // The grant travelled with the dump, the role with the globals.
    assert_eq!(
        fresh.psql(
            "management",
            "SELECT has_table_privilege('ark_reader', 'jobs', 'SELECT')"
        ),
        "t"
    );
}

#[test]
fn flows_and_config_and_full_system() {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let env = Env::new();
    // flows: workflows from the database, no dump.
    let s = env.backup("flows", &["--n8n-db", &pg.url("n8n")]);
    let m = env.manifest(&s);
    let c = m.contents.clone().unwrap();
    let rows = workflow_rows(&pg, "n8n");
    assert_eq!(c.workflows.len(), rows.len());
    assert!(c.databases.is_empty() && !m.items.iter().any(|i| i.name.starts_with("db/")));
    assert_eq!(c.workflow_source.as_deref(), Some("postgres:n8n"));
    let items = env.items(&s);
    for w in &c.workflows {
        let obj: Value = serde_json::from_slice(&items[&w.item]).unwrap();
        assert_eq!(obj["nodes"], rows[&w.id]["nodes"]);
    }

    // n8n_config: a tree like a real server's.
    let root = env.dir.path().join("srv");
    std::fs::create_dir_all(root.join("nginx/conf.d")).unwrap();
    std::fs::write(
        root.join(".env"),
        "N8N_ENCRYPTION_KEY=acc-n8n-fixed-encryption-key-0123456789\nDB_TYPE=postgresdb\n",
    )
    .unwrap();
    std::fs::write(
        root.join("docker-compose.yaml"),
        "services:\n  n8n:\n    image: n8nio/n8n\n",
    )
    .unwrap();
    std::fs::write(
        root.join("nginx/conf.d/n8n.conf"),
        "server { listen 443 ssl; }\n",
    )
    .unwrap();
    let env_path = root.join(".env");
    let conf = root.join("nginx");
    let compose = root.join("docker-compose.yaml");
    let paths = format!(
        "{}:{}:{}",
        env_path.display(),
        compose.display(),
        conf.display()
    );
    let o = env
        .cmd()
        .env("ARK_CONFIG_PATHS", &paths)
        .args([
            "--json",
            "backup",
            "--type",
            "n8n_config",
            "--no-default-config-paths",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let s: Value = serde_json::from_slice(&o.stdout).unwrap();
    let m = env.manifest(&s);
    let c = m.contents.clone().unwrap();
    let files: Vec<&str> = c.config_files.iter().map(|f| f.path.as_str()).collect();
    assert!(
        files.contains(&root.join("nginx/conf.d/n8n.conf").to_str().unwrap()),
        "{files:?}"
    );
    let fp = c.encryption_key_fingerprint.clone().expect("fingerprint");
    assert!(!fp.contains("acc-n8n"));
    let items = env.items(&s);
    let item = c
        .config_files
        .iter()
        .find(|f| f.path.ends_with("/.env"))
        .unwrap()
        .item
        .clone()
        .unwrap();
    assert_eq!(items[&item], std::fs::read(&env_path).unwrap());

    // full_system: the server and the config in one backup.
    let s = env.backup(
        "full_system",
        &[
            "--n8n-db",
            &pg.url("n8n"),
            "--config-path",
            env_path.to_str().unwrap(),
        ],
    );
    let c = env.manifest(&s).contents.unwrap();
    assert!(c.databases.iter().any(|d| d.name == "n8n" && d.is_n8n));
    assert!(c.globals_item.is_some() && !c.workflows.is_empty());
    assert_eq!(c.config_files.len(), 1);
    assert_eq!(c.encryption_key_fingerprint.as_deref(), Some(fp.as_str()));
}

/// What every refused or failed backup must leave: a clear message, a
/// `BackupFailed` event at `stage`, no new manifest; and the next backup works.
fn assert_failed_cleanly(env: &Env, o: &Output, stage: &str, needle: &str) {
    assert!(
        !o.status.success(),
        "expected a failure: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let err = stderr(o);
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    assert_eq!(
        err.trim()
            .lines()
            .filter(|l| l.starts_with("error:"))
            .count(),
        1,
        "{err}"
    );
    let events = env.events();
    let Some(Event::BackupFailed(f)) = events.last() else {
        panic!("the last event is {:?}", events.last())
    };
    assert_eq!(f.stage, stage, "{f:?}");
    assert!(f.message.contains(needle), "{f:?}");
    // Started, then failed, for the same backup.
    let started = events.iter().rev().find_map(|e| match e {
        Event::BackupStarted(s) => Some(s.backup_id.clone()),
        _ => None,
    });
    assert_eq!(started.as_deref(), Some(f.backup_id.as_str()));
}

#[test]
fn bad_input_fails_clearly_records_the_failure_and_changes_nothing() {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let env = Env::new();
    let good = pg.url("n8n");
    let scratch = env.dir.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();

    // Unreachable database.
    let closed = format!(
        "postgres://postgres@127.0.0.1:{}/n8n",
        common::pg::free_port()
    );
    let o = env.backup_output("postgres_n8n", &["--n8n-db", &closed]);
    assert_failed_cleanly(&env, &o, "connect", "cannot reach PostgreSQL at 127.0.0.1");

    // Missing pg_dump.
    let o = env.backup_output(
        "postgres_n8n",
        &["--n8n-db", &good, "--pg-dump", "/nonexistent/bin/pg_dump"],
    );
    assert_failed_cleanly(
        &env,
        &o,
        "dump",
        "pg_dump not found at /nonexistent/bin/pg_dump",
    );

    // An older pg_dump than the server.
    let old = scratch.join("old-pg_dump");
    std::fs::write(&old, "#!/bin/sh\necho 'pg_dump (PostgreSQL) 12.19'\n").unwrap();
    chmod_x(&old);
    let o = env.backup_output(
        "postgres_n8n",
        &["--n8n-db", &good, "--pg-dump", old.to_str().unwrap()],
    );
    assert_failed_cleanly(
        &env,
        &o,
        "dump",
        "is version 12, older than the server (version 15)",
    );

    // A dump process that dies midway: real pg_dump, cut after 300 kB.
    let real = common::pg::bin_dir().join("pg_dump");
    let dying = scratch.join("dying-pg_dump");
    std::fs::write(
        &dying,
        format!(
            "#!/bin/sh\nif [ \"$1\" = --version ]; then exec {real} --version; fi\n\
             {real} \"$@\" | head -c 300000\necho 'pg_dump: error: connection to server lost' >&2\nexit 1\n",
            real = real.display()
        ),
    )
    .unwrap();
    chmod_x(&dying);
    let o = env.backup_output(
        "postgres_n8n",
        &["--n8n-db", &good, "--pg-dump", dying.to_str().unwrap()],
    );
    assert_failed_cleanly(&env, &o, "dump", "connection to server lost");

    // A config file that is a directory: stops the command before anything
    // (a usage error, nothing recorded).
    let events = env.events().len();
    let o = env
        .cmd()
        .arg("--config")
        .arg(&scratch)
        .args(["backup", "--type", "postgres_n8n", "--n8n-db", &good])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("is a directory"), "{}", stderr(&o));
    assert_eq!(env.events().len(), events);

    // A password on the command line (ps shows it): refused, and not recorded.
    let with_pw = good.replace("postgres@", "postgres:hunter2@");
    let o = env.backup_output("postgres_n8n", &["--n8n-db", &with_pw]);
    assert_failed_cleanly(&env, &o, "configuration", "holds a password");
    assert!(!stderr(&o).contains("hunter2"));
    assert!(!format!("{:?}", env.events()).contains("hunter2"));

    // A required config path that does not exist.
    let o = env.backup_output("n8n_config", &["--config-path", "/nonexistent/n8n/.env"]);
    assert_failed_cleanly(&env, &o, "config_files", "/nonexistent/n8n/.env");

    assert_eq!(env.manifest_count(), 0, "no failed backup left a manifest");
    // The next backup works, and gc removes what the dying dump left.
    env.backup("postgres_n8n", &["--n8n-db", &good]);
    assert_eq!(env.manifest_count(), 1);
    let o = env.ark(&["check", "--read-data"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn a_wrong_password_is_refused_and_recorded() {
    let pg = PgCluster::start_with_password("right-password");
    pg.load_fixture("n8n");
    let env = Env::new();
    let url = pg.url("n8n");
    assert!(!url.contains("password"));
    let backup_with = |var: &str, value: &std::ffi::OsStr| {
        env.backup_cmd("postgres_n8n", &["--n8n-db", &url])
            .env(var, value)
            .output()
            .unwrap()
    };
    let o = backup_with("ARK_N8N_DB_PASSWORD", "wrong-password".as_ref());
    assert_failed_cleanly(
        &env,
        &o,
        "connect",
        "refused the login of user \"postgres\"",
    );
    assert!(!stderr(&o).contains("wrong-password"));
    // From a file, the right one: works (pg_dump gets it too, not on its command line).
    let pwfile = env.dir.path().join("pw");
    std::fs::write(&pwfile, "right-password\n").unwrap();
    let o = backup_with("ARK_N8N_DB_PASSWORD_FILE", pwfile.as_os_str());
    assert!(o.status.success(), "{}", stderr(&o));
    let plain_events = std::fs::read_dir(env.store().join("journal"))
        .unwrap()
        .count();
    assert!(plain_events >= 4);
}

/// The server of postgres_full, its password and pg_dump, given by the
/// environment alone (the names scripts use: ARK_PG_SERVER,
/// ARK_PG_SERVER_PASSWORD_FILE, ARK_PG_DUMP), against a server that wants a
/// password.
#[test]
fn the_server_its_password_and_pg_dump_come_from_the_environment() {
    let pg = PgCluster::start_with_password("server-password");
    pg.load_fixture("n8n");
    let env = Env::new();
    let pwfile = env.path("server-pw");
    std::fs::write(&pwfile, "server-password\n").unwrap();
    let pg_dump = common::pg::bin_dir().join("pg_dump");
    let backup = |pg_dump: &std::path::Path| {
        env.backup_cmd("postgres_full", &["--no-verify"])
            .env("ARK_PG_SERVER", pg.url("postgres"))
            .env("ARK_PG_SERVER_PASSWORD_FILE", &pwfile)
            .env("ARK_PG_DUMP", pg_dump)
            .output()
            .unwrap()
    };
    let o = backup(&pg_dump);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: Value = serde_json::from_slice(&o.stdout).unwrap();
    let c = env.manifest(&s).contents.unwrap();
    let mut names: Vec<&str> = c.databases.iter().map(|d| d.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["n8n", "postgres"]);
    assert!(!stderr(&o).contains("server-password"));
    // ARK_PG_DUMP is the pg_dump that runs: a missing one fails, named.
    let o = backup(std::path::Path::new("/nonexistent/bin/pg_dump"));
    assert_failed_cleanly(
        &env,
        &o,
        "dump",
        "pg_dump not found at /nonexistent/bin/pg_dump",
    );
}

/// The pg_dump processes now running against the cluster on `port` (they
/// carry the server's address in their environment, never on the command line).
fn pg_dumps_of(port: u16) -> Vec<u32> {
    let want = format!("PGPORT={port}");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            comm.trim() == "pg_dump" && environ.split(|b| *b == 0).any(|v| v == want.as_bytes())
        })
        .collect()
}

#[test]
fn a_dump_started_while_the_store_opens_is_stopped_when_it_cannot_be_opened() {
    // `backup --type postgres_n8n` starts the dump while the passphrase's key
    // is derived. A wrong passphrase must leave nothing behind: no pg_dump, no
    // session on the server, nothing in the store; the right one then works.
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let env = Env::new();
    let journal = || {
        std::fs::read_dir(env.store().join("journal"))
            .unwrap()
            .count()
    };
    let before = journal();
    let o = env
        .cmd()
        .env("ARK_PASSWORD", "not the passphrase")
        .args([
            "backup",
            "--type",
            "postgres_n8n",
            "--no-default-config-paths",
            "--n8n-db",
        ])
        .arg(pg.url("n8n"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("passphrase"), "{}", stderr(&o));
    assert_eq!(
        pg_dumps_of(pg.port()),
        Vec::<u32>::new(),
        "a pg_dump outlived the command"
    );
    let sessions = || {
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE datname = 'n8n' AND pid <> pg_backend_pid()",
        )
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while sessions().trim() != "0" {
        assert!(
            std::time::Instant::now() < deadline,
            "sessions on the n8n database remain: {}",
            sessions()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(journal(), before, "the store changed");
    let summary = env.backup("postgres_n8n", &["--n8n-db", &pg.url("n8n")]);
    assert_eq!(summary["kind"], "postgres_n8n");
}

#[test]
fn a_full_store_fails_the_backup_and_the_next_one_works() {
    // A store on a small tmpfs, filled up so the dump does not fit.
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let env = Env::new();
    let mnt = env.dir.path().join("small");
    std::fs::create_dir_all(&mnt).unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(st.success(), "mount tmpfs (tests need root)");
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _u = Unmount(mnt.clone());
    let store = mnt.join("store");
    let ark = |args: &[&str]| -> Output {
        Command::new(bin())
            .env("ARK_PASSWORD", PASSPHRASE)
            .env("ARK_KDF_TARGET_MS", "20")
            .arg("--store")
            .arg(&store)
            .arg("--data-dir")
            .arg(env.data())
            .args(args)
            .output()
            .unwrap()
    };
    assert!(ark(&["init", "--chunk-avg-kib", "64"]).status.success());
    // Leave ~300 kB free: the journal fits, the dump (~2 MB, ~0.5 MB compressed) does not.
    let filler = mnt.join("filler");
    let free = fs_free(&mnt);
    std::fs::write(&filler, vec![1u8; (free - 300 * 1024) as usize]).unwrap();
    let o = ark(&[
        "backup",
        "--type",
        "postgres_n8n",
        "--no-default-config-paths",
        "--n8n-db",
        &pg.url("n8n"),
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("the store is full"), "{err}");
    assert!(err.contains("recorded in the store's journal"), "{err}");
    assert_eq!(
        std::fs::read_dir(store.join("manifests"))
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
    let events = rt().block_on(async {
        let s = common::open_store(&store).await;
        n8n_ark::store::journal::replay(&s).await.unwrap().records
    });
    assert!(matches!(&events.last().unwrap().event, Event::BackupFailed(f) if f.stage == "store"));
    // Room again: the next backup works, gc clears the leftovers, check is clean.
    std::fs::remove_file(&filler).unwrap();
    let o = ark(&[
        "backup",
        "--type",
        "postgres_n8n",
        "--no-default-config-paths",
        "--n8n-db",
        &pg.url("n8n"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(ark(&["gc"]).status.success());
    let o = ark(&["check", "--read-data"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

fn fs_free(p: &Path) -> u64 {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut s) }, 0);
    s.f_bavail as u64 * s.f_frsize as u64
}

fn chmod_x(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
#[ignore = "needs a Docker engine and ARK_TEST_PG_IMAGE (./setup.sh test provides both)"]
fn pg_dump_runs_inside_the_database_container() {
    // The server in a container (network host, 127.0.0.1 only); pg_dump runs
    // in it through docker exec, so its version is the server's.
    let c = common::docker::PgContainer::start();
    c.load_fixture("n8n");
    let env = Env::new();
    let port = c.port().to_string();
    let s = env.backup(
        "postgres_n8n",
        &[
            "--n8n-db",
            &c.url("n8n"),
            "--pg-container",
            c.name(),
            "--pg-container-host",
            "/tmp",
            "--pg-container-port",
            &port,
            // Never used: the container's own pg_dump runs.
            "--pg-dump",
            "/nonexistent/pg_dump",
        ],
    );
    let m = env.manifest(&s);
    let contents = m.contents.clone().unwrap();
    let d = &contents.databases[0];
    assert_eq!(d.pg_dump_runner, format!("docker:{}", c.name()));
    assert!(d.pg_dump_version.contains("15."), "{}", d.pg_dump_version);
    let workflows: usize = c
        .exec_psql("n8n", "SELECT count(*) FROM workflow_entity")
        .parse()
        .unwrap();
    assert_eq!(contents.workflows.len(), workflows);
    // The dump restores (with the host's pg_restore) to what the manifest says.
    let local = PgCluster::start();
    pg_restore(&local, "n8n", &env.items(&s)["db/n8n.dump"]);
    assert_eq!(local.table_counts("n8n"), manifest_counts(&m, "n8n"));

    // A container that is not there: a clear failure, recorded.
    let o = env.backup_output(
        "postgres_n8n",
        &[
            "--n8n-db",
            &c.url("n8n"),
            "--pg-container",
            "n8n-ark-test-no-such-container",
        ],
    );
    assert_failed_cleanly(
        &env,
        &o,
        "dump",
        "no running container \"n8n-ark-test-no-such-container\"",
    );
}

#[test]
fn a_unix_socket_url_reaches_a_local_server() {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let env = Env::new();
    let dir: String = pg
        .socket_dir()
        .to_str()
        .unwrap()
        .replace('%', "%25")
        .replace('/', "%2F");
    let url = format!("postgres://postgres@{dir}:{}/n8n", pg.port());
    let s = env.backup("postgres_n8n", &["--n8n-db", &url]);
    let m = env.manifest(&s);
    assert_eq!(manifest_counts(&m, "n8n"), pg.table_counts("n8n"));
    pg_restore(&pg, "again", &env.items(&s)["db/n8n.dump"]);
    assert_eq!(pg.table_checksums("again"), pg.table_checksums("n8n"));
}

/// Real backups, configured by a TOML file, browsed through the catalog:
/// show, diff and history answer what the database says, and the same again
/// after the catalog is deleted.
#[test]
fn real_backups_browse_through_the_catalog_and_a_config_file() {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let env = Env::new();
    let config = env.dir.path().join("n8n-ark.toml");
    std::fs::write(
        &config,
        format!(
            "store = {:?}\ndata_dir = {:?}\n[n8n]\ndatabase = {:?}\n[config_files]\ndefaults = false\n",
            env.store(),
            env.data(),
            pg.url("n8n")
        ),
    )
    .unwrap();
    let ark = |args: &[&str]| -> Value {
        let o = Command::new(bin())
            .env("ARK_PASSWORD", PASSPHRASE)
            .env("ARK_KDF_TARGET_MS", "20")
            .env_remove("ARK_STORE")
            .env_remove("ARK_DATA_DIR")
            .env_remove("ARK_N8N_DB")
            .arg("--config")
            .arg(&config)
            .arg("--json")
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let first = ark(&["backup", "--type", "postgres_n8n"]);
    let q = |sql: &str| pg.psql("n8n", sql);
    let ids: Vec<String> = q("SELECT id FROM workflow_entity ORDER BY id")
        .lines()
        .map(str::to_string)
        .collect();
    let (renamed, edited, deleted) = (&ids[0], &ids[1], &ids[2]);
    q(&format!(
        "UPDATE workflow_entity SET name = name || ' v2' WHERE id = '{renamed}'"
    ));
    q(&format!(
        "UPDATE workflow_entity SET nodes = jsonb_set(nodes::jsonb, '{{0,parameters,ark}}', '1')::json WHERE id = '{edited}'"
    ));
    q(&format!(
        "DELETE FROM workflow_entity WHERE id = '{deleted}'"
    ));
    q("DELETE FROM execution_entity WHERE id = (SELECT min(id) FROM execution_entity)");
    ark(&["backup", "--type", "postgres_n8n"]);

    // show: the database's workflows (with their tags and node counts) and tables.
    let show = ark(&["show", "latest"]);
    assert_eq!(show["workflow_count"], ids.len() - 1);
    let tables: BTreeMap<String, u64> = show["databases"][0]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                format!(
                    "{}.{}",
                    t["schema"].as_str().unwrap(),
                    t["name"].as_str().unwrap()
                ),
                t["rows"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(tables, pg.table_counts("n8n"));
    for w in show["workflows"].as_array().unwrap() {
        let id = w["id"].as_str().unwrap();
        let tags = q(&format!(
            "SELECT coalesce(string_agg(t.name, ',' ORDER BY t.name), '') FROM workflows_tags wt \
             JOIN tag_entity t ON t.id = wt.\"tagId\" WHERE wt.\"workflowId\" = '{id}'"
        ));
        let shown: Vec<&str> = w["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert_eq!(shown.join(","), tags, "tags of {id}");
        let nodes: u64 = q(&format!(
            "SELECT json_array_length(nodes) FROM workflow_entity WHERE id = '{id}'"
        ))
        .parse()
        .unwrap();
        assert_eq!(w["node_count"], nodes, "nodes of {id}");
        assert_eq!(
            w["active"].as_bool().unwrap(),
            q(&format!(
                "SELECT active FROM workflow_entity WHERE id = '{id}'"
            )) == "t"
        );
    }

    // diff: removed, renamed, changed (with the node), row counts moved.
    let diff = ark(&["diff", first["backup_id"].as_str().unwrap(), "latest"]);
    let w = &diff["workflows"];
    let ids_of = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids_of(&w["removed"]), std::slice::from_ref(deleted));
    assert!(ids_of(&w["renamed"]).contains(renamed), "{w}");
    let changed = w["changed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == edited.as_str())
        .expect("edited workflow changed");
    assert_eq!(
        changed["nodes_changed"].as_array().unwrap().len(),
        1,
        "{changed}"
    );
    let moved: Vec<&str> = diff["databases"][0]["rows_changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(
        moved.contains(&"execution_entity") && moved.contains(&"workflow_entity"),
        "{moved:?}"
    );

    // history: two versions of the edited workflow, one of an untouched one.
    assert_eq!(
        ark(&["history", edited])["versions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        ark(&["history", &ids[3]])["versions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The store alone is enough: without the catalog, the same answers.
    std::fs::remove_dir_all(env.data()).unwrap();
    assert_eq!(ark(&["show", "latest"]), show);
    assert_eq!(
        ark(&["diff", first["backup_id"].as_str().unwrap(), "latest"]),
        diff
    );
}

/// Runs `cmd` with its output in files, no file it writes allowed past
/// `max_file` bytes (RLIMIT_FSIZE: a write past it fails), and returns its
/// output and its peak resident memory (wait4's ru_maxrss) in bytes.
// The child is reaped by wait4 (for its rusage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn run_limited(mut cmd: Command, dir: &Path, max_file: u64) -> (Output, u64) {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let out = dir.join("stdout");
    let err = dir.join("stderr");
    cmd.stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap());
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: max_file,
                rlim_max: max_file,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32, "wait4");
    let output = Output {
        status: std::process::ExitStatus::from_raw(status),
        stdout: std::fs::read(&out).unwrap(),
        stderr: std::fs::read(&err).unwrap(),
    };
    (output, usage.ru_maxrss as u64 * 1024)
}

#[test]
fn a_large_dump_streams_through_without_being_held_in_memory_or_a_file() {
    // A 400 MB dump, through a process that may not write any file past
    // 32 MiB (RLIMIT_FSIZE) and whose memory is measured: the dump cannot be
    // staged on disk anywhere, nor whole in memory.
    let pg = PgCluster::start();
    pg.psql("postgres", "CREATE DATABASE big");
    pg.psql(
        "big",
        "CREATE TABLE execution_data (id int PRIMARY KEY, data text); \
         ALTER TABLE execution_data ALTER data SET STORAGE EXTERNAL; \
         INSERT INTO execution_data SELECT i, repeat(md5(i::text), 64) FROM generate_series(1, 200000) i",
    );
    let env = Env::with_init(&[]);
    let cmd = env.backup_cmd("postgres_n8n", &["--no-verify", "--n8n-db", &pg.url("big")]);
    let (o, peak) = run_limited(cmd, env.dir.path(), 32 << 20);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    let read = summary["logical_bytes"].as_u64().unwrap();
    assert!(read > 400_000_000, "the dump was {read} bytes");
    eprintln!(
        "a {} MB dump: peak memory {} MiB",
        read / 1_000_000,
        peak >> 20
    );
    assert!(peak < 200 << 20, "peak memory {} MiB", peak >> 20);
    assert!(
        peak < read / 2,
        "peak memory {} MiB for {read} bytes",
        peak >> 20
    );
    // Not on a terminal: one structured log line per stage, in order.
    let log = stderr(&o);
    let stages = ["backup started", "dumping", "backup completed"];
    let at: Vec<usize> = stages
        .iter()
        .map(|s| {
            log.find(s)
                .unwrap_or_else(|| panic!("no {s:?} line in:\n{log}"))
        })
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{log}");
    assert!(log.contains("database=big"), "{log}");
}

#[test]
fn a_terminal_gets_a_progress_bar_instead_of_log_lines() {
    // `script` gives the backup a pseudo-terminal and records what it draws.
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let env = Env::new();
    let line = backup_command_line(&env, &pg);
    let o = Command::new("script")
        .args(["-q", "-e", "-f", "-c", &line, "/dev/null"])
        .env_remove("ARK_STORE")
        .env_remove("ARK_LOG")
        .env("ARK_PASSWORD", PASSPHRASE)
        .env("ARK_KDF_TARGET_MS", "20")
        .env("TERM", "xterm")
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{screen}{}", stderr(&o));
    // The bar: bytes read so far, a rate, then cleared; the summary stays.
    assert!(screen.contains("B/s"), "no progress bar drawn:\n{screen:?}");
    assert!(screen.contains("completed in"), "{screen:?}");
    assert!(
        !screen.contains("backup started") && !screen.contains("dumping"),
        "log lines on a terminal:\n{screen:?}"
    );
}

/// A postgres_n8n backup of `pg` into `env`'s store as one shell command
/// line (for `script -c`, which gives it a terminal).
fn backup_command_line(env: &Env, pg: &PgCluster) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    [
        bin().to_str().unwrap(),
        "--store",
        env.store().to_str().unwrap(),
        "--data-dir",
        env.data().to_str().unwrap(),
        "backup",
        "--type",
        "postgres_n8n",
        "--no-default-config-paths",
        "--no-verify",
        "--n8n-db",
        &pg.url("n8n"),
    ]
    .iter()
    .map(|a| quote(a))
    .collect::<Vec<_>>()
    .join(" ")
}

/// How many TCP connections to 127.0.0.1:`port` are open (established, or
/// being opened) on this machine now.
fn connections_to(port: u16) -> usize {
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap();
    text.lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // local address, remote address (hex IP:port), state (01 established, 02 syn sent)
            f.len() > 3 && f[2] == format!("0100007F:{port:04X}") && (f[3] == "01" || f[3] == "02")
        })
        .count()
}

/// The dump's head start (connection, snapshot and pg_dump started while the
/// store's key is derived) does not run when the passphrase is asked at the
/// terminal: no connection to the database server sits open for as long as a
/// person takes to type; the backup runs once the passphrase is given.
#[test]
fn no_snapshot_is_held_open_while_the_passphrase_is_typed() {
    use std::io::{BufRead, Write};
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let env = Env::new();
    let line = backup_command_line(&env, &pg);
    // `script` gives the backup a terminal; what is written to its stdin is typed.
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &line, "/dev/null"])
        .env_remove("ARK_STORE")
        .env_remove("ARK_PASSWORD")
        .env_remove("ARK_PASSWORD_FILE")
        .env_remove("ARK_LOG")
        .env("ARK_KDF_TARGET_MS", "20")
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut r = std::io::BufReader::new(stdout);
        let mut buf = Vec::new();
        while r.read_until(b':', &mut buf).map(|n| n > 0).unwrap_or(false) {
            let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
            buf.clear();
        }
    });
    let mut screen = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !screen.contains("store passphrase:") {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(s) => screen.push_str(&s),
            Err(_) => {
                let _ = child.kill();
                panic!("no passphrase prompt: {screen:?}");
            }
        }
    }
    // Long enough for a head start to have connected, snapshotted and
    // started pg_dump (tens of milliseconds here).
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let connections = connections_to(pg.port());
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(format!("{PASSPHRASE}\n").as_bytes())
        .unwrap();
    let status = child.wait().unwrap();
    while let Ok(s) = rx.recv_timeout(std::time::Duration::from_secs(5)) {
        screen.push_str(&s);
    }
    assert_eq!(
        connections, 0,
        "connections to the database server while the passphrase was asked"
    );
    assert!(status.success(), "{screen:?}");
    assert!(screen.contains("completed in"), "{screen:?}");
    assert_eq!(env.manifest_count(), 1);
}

#[test]
fn the_catalog_lives_in_the_default_data_dir_for_root_and_for_a_user() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let init = Command::new(bin())
        .env("ARK_PASSWORD", PASSPHRASE)
        .env("ARK_KDF_TARGET_MS", "20")
        .args(["--store", store.to_str().unwrap(), "init"])
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", stderr(&init));
    // Root: /var/lib/n8n-ark, seen in a private mount namespace whose /var/lib
    // is an empty tmpfs (the machine's own /var/lib is not touched).
    let script = r#"mount -t tmpfs tmpfs /var/lib && "$0" --store "$1" list >/dev/null && ls /var/lib/n8n-ark/catalogs"#;
    let o = Command::new("unshare")
        .args(["-m", "sh", "-c", script])
        .arg(bin())
        .arg(&store)
        .env_remove("ARK_DATA_DIR")
        .env_remove("ARK_CONFIG")
        .env("ARK_PASSWORD", PASSPHRASE)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let listed = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        listed.lines().filter(|l| l.ends_with(".sqlite")).count() == 1,
        "{listed:?}"
    );
    // A user (nobody): ~/.local/share/n8n-ark, or $XDG_DATA_HOME/n8n-ark.
    let user_dir = dir.path().join("user");
    std::fs::create_dir(&user_dir).unwrap();
    for p in [dir.path(), &user_dir] {
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: plain syscalls on paths we created.
        unsafe {
            assert_eq!(libc::chmod(c.as_ptr(), 0o755), 0);
        }
    }
    let c = std::ffi::CString::new(user_dir.to_str().unwrap()).unwrap();
    // SAFETY: as above.
    unsafe {
        assert_eq!(libc::chown(c.as_ptr(), 65534, 65534), 0);
    }
    let as_nobody = |args: &[&str], xdg: Option<&Path>| {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(bin())
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", user_dir.join("home"))
            .env("ARK_PASSWORD", PASSPHRASE)
            .env("ARK_KDF_TARGET_MS", "20");
        if let Some(x) = xdg {
            c.env("XDG_DATA_HOME", x);
        }
        c.output().unwrap()
    };
    let user_store = user_dir.join("store");
    let user_store = user_store.to_str().unwrap();
    let o = as_nobody(&["--store", user_store, "init"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = as_nobody(&["--store", user_store, "list"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let catalogs = |d: &Path| -> Vec<String> {
        std::fs::read_dir(d)
            .map(|r| {
                r.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter(|n| n.ends_with(".sqlite"))
                    .collect()
            })
            .unwrap_or_default()
    };
    let home = user_dir.join("home/.local/share/n8n-ark/catalogs");
    assert_eq!(catalogs(&home).len(), 1, "{}", home.display());
    let xdg = user_dir.join("xdg");
    let o = as_nobody(&["--store", user_store, "list"], Some(&xdg));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(catalogs(&xdg.join("n8n-ark/catalogs")).len(), 1);
}

// ---------------------------------------------------------------------------
// No workflow can stop the backups.

/// Pinned data nested `depth` levels deep, as n8n stores a node's pinned
/// output: `{"Webhook":[{"json":{"a":[{"a":[…1…]}]}}]}` (objects and arrays
/// in turn).
fn deep_pin_data(depth: usize) -> String {
    assert!(depth > 4);
    let mut s = String::with_capacity(depth * 6);
    s.push_str("{\"Webhook\":[{\"json\":");
    let inner = depth - 3;
    for i in 0..inner {
        s.push_str(if i % 2 == 0 { "{\"a\":" } else { "[" });
    }
    s.push('1');
    for i in (0..inner).rev() {
        s.push(if i % 2 == 0 { '}' } else { ']' });
    }
    s.push_str("}]}");
    s
}

/// Sets the pinned data of workflow `id` (through a file: it can be large).
fn set_pin_data(pg: &PgCluster, db: &str, id: &str, json: &str) {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        f.path(),
        format!(
            "UPDATE workflow_entity SET \"pinData\" = $deep${json}$deep$::json WHERE id = '{id}';\n"
        ),
    )
    .unwrap();
    let perm = std::os::unix::fs::PermissionsExt::from_mode(0o644);
    std::fs::set_permissions(f.path(), perm).unwrap();
    pg.run_file(db, f.path());
    let stored = pg.psql(
        db,
        &format!("SELECT length(\"pinData\"::text) FROM workflow_entity WHERE id = '{id}'"),
    );
    assert_eq!(stored, json.len().to_string());
}

/// The workflow ids of the fixture, in order.
fn workflow_ids(pg: &PgCluster, db: &str) -> Vec<String> {
    pg.psql(db, "SELECT id FROM workflow_entity ORDER BY id")
        .lines()
        .map(String::from)
        .collect()
}

/// A workflow's object in backup `summary` (its canonical JSON), parsed.
fn stored_workflow(env: &Env, summary: &Value, id: &str) -> n8n_ark::source::json::Json {
    let m = env.manifest(summary);
    let c = m.contents.unwrap();
    let w = c
        .workflows
        .iter()
        .find(|w| w.id == id)
        .unwrap_or_else(|| panic!("workflow {id} is not in the manifest"));
    let items = env.items(summary);
    n8n_ark::source::json::Json::parse(&items[&w.item]).unwrap()
}

/// What every kind that reads workflows does with a workflow whose pinned
/// data nests `depth` levels: backs it up whole with every other workflow,
/// restores it to a file n8n imports, and verifies it in a sandbox.
fn deep_workflow_round_trip(pg: &PgCluster, depth: usize, kinds: &[&str]) {
    use n8n_ark::source::json::Json;
    let ids = workflow_ids(pg, "n8n");
    let deep_id = ids[ids.len() / 2].clone();
    let pin = deep_pin_data(depth);
    set_pin_data(pg, "n8n", &deep_id, &pin);
    let want = Json::parse_str(&pin).unwrap();
    assert_eq!(want.depth(), depth);
    let env = Env::new();
    for kind in kinds {
        let o = env.backup_output(kind, &["--n8n-db", &pg.url("n8n")]);
        assert!(o.status.success(), "{kind}: {}", stderr(&o));
        let s: Value = serde_json::from_slice(&o.stdout).unwrap();
        let c = env.manifest(&s).contents.unwrap();
        let mut stored: Vec<&str> = c.workflows.iter().map(|w| w.id.as_str()).collect();
        stored.sort();
        assert_eq!(stored, ids, "{kind}: every workflow is stored");
        let obj = stored_workflow(&env, &s, &deep_id);
        assert!(
            obj.get("pinData").unwrap() == &want,
            "{kind}: the pinned data as stored"
        );
    }

    // Restored to a file: the pinned data whole, in what n8n imports.
    let out = env.dir.path().join("restored");
    let o = env
        .cmd()
        .args(["--json", "restore", "workflow", "latest", &deep_id, "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let files: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let doc = Json::parse(&std::fs::read(&files[0]).unwrap()).unwrap();
    assert_eq!(doc.get("id").and_then(Json::as_str), Some(deep_id.as_str()));
    assert!(doc.get("pinData").unwrap() == &want);

    // Verified: the dump restored into a sandbox, every workflow rebuilt
    // from its rows and compared with its object.
    if kinds.contains(&"postgres_n8n") {
        let o = env
            .cmd()
            .args([
                "--json",
                "verify",
                "latest:postgres_n8n",
                "--level",
                "restore",
                "--sandbox",
                "local",
            ])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            stderr(&o)
        );
    }
}

#[test]
fn a_workflow_nested_132_levels_deep_is_backed_up_restored_and_verified() {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    deep_workflow_round_trip(&pg, 132, &["postgres_n8n", "flows", "full_system"]);
}

#[test]
fn a_workflow_nested_100000_levels_deep_is_backed_up_restored_and_verified() {
    // PostgreSQL's json parser recurses once per level: its default
    // max_stack_depth (2 MB) stores about 10,000 levels; a server whose
    // operator raised it stores 100,000.
    let pg = PgCluster::start_with_stack(120);
    pg.load_fixture("n8n");
    deep_workflow_round_trip(&pg, 100_000, &["postgres_n8n", "flows"]);
}

#[test]
fn a_workflow_that_cannot_be_read_is_named_in_the_manifest_and_every_other_is_stored() {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let ids = workflow_ids(&pg, "n8n");
    // PostgreSQL's json keeps what it was given; these read into no string
    // and no number: a lone UTF-16 surrogate, and a number beyond f64.
    let (surrogate, huge) = (ids[1].clone(), ids[2].clone());
    set_pin_data(
        &pg,
        "n8n",
        &surrogate,
        r#"{"Webhook":[{"json":{"text":"\ud800"}}]}"#,
    );
    pg.psql(
        "n8n",
        &format!(
            "UPDATE workflow_entity SET nodes = '[{{\"name\":\"A\",\"type\":\"t\",\"parameters\":{{\"n\":1e400}}}}]' \
             WHERE id = '{huge}'"
        ),
    );
    let name_of = |id: &str| {
        pg.psql(
            "n8n",
            &format!("SELECT name FROM workflow_entity WHERE id = '{id}'"),
        )
    };
    let env = Env::new();
    for kind in ["postgres_n8n", "flows"] {
        let o = env.backup_output(kind, &["--n8n-db", &pg.url("n8n")]);
        assert!(o.status.success(), "{kind}: {}", stderr(&o));
        // The operator is told which workflows were not stored.
        let err = stderr(&o);
        assert!(err.contains(&surrogate) && err.contains(&huge), "{err}");
        let s: Value = serde_json::from_slice(&o.stdout).unwrap();
        let c = env.manifest(&s).contents.unwrap();
        let mut stored: Vec<&str> = c.workflows.iter().map(|w| w.id.as_str()).collect();
        stored.sort();
        let others: Vec<&str> = ids
            .iter()
            .map(String::as_str)
            .filter(|i| *i != surrogate && *i != huge)
            .collect();
        assert_eq!(stored, others, "{kind}: every other workflow is stored");
        let not: Vec<(&str, &str, &str)> = c
            .workflows_not_stored
            .iter()
            .map(|n| (n.id.as_str(), n.name.as_str(), n.reason.as_str()))
            .collect();
        assert_eq!(not.len(), 2, "{not:?}");
        assert_eq!(
            (not[0].0, not[0].1),
            (surrogate.as_str(), name_of(&surrogate).as_str())
        );
        assert!(not[0].2.contains("surrogate"), "{not:?}");
        assert_eq!(
            (not[1].0, not[1].1),
            (huge.as_str(), name_of(&huge).as_str())
        );
        assert!(not[1].2.contains("number out of range"), "{not:?}");
    }
    // `show` says so, in text and JSON.
    let shown = env.json(&["show", "latest:postgres_n8n"]);
    let listed: Vec<&str> = shown["workflows_not_stored"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [surrogate.as_str(), huge.as_str()]);
    let o = env.ark(&["show", "latest:postgres_n8n"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("workflows NOT stored: 2"), "{text}");
    // Asking for one names why it cannot be restored from the workflow objects.
    let out = env.dir.path().join("out");
    let o = env
        .cmd()
        .args([
            "restore",
            "workflow",
            "latest:postgres_n8n",
            &surrogate,
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("not stored") && err.contains("surrogate") && err.contains("restore database"),
        "{err}"
    );
    // The dump holds their rows; verification rebuilds every other workflow
    // and notes these two.
    let o = env
        .cmd()
        .args([
            "--json",
            "verify",
            "latest:postgres_n8n",
            "--level",
            "restore",
            "--sandbox",
            "local",
        ])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let notes = v["results"][0]["report"]["notes"].to_string();
    assert!(
        notes.contains(&surrogate) && notes.contains("not stored"),
        "{notes}"
    );
}
