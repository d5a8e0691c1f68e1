//! The fault suite: operations that change things are interrupted at random
//! moments, with SIGKILL (nothing can run: what is left must be safe and
//! the next run must deal with it) and with SIGTERM (the operation stops
//! cleanly and records that it stopped), then checked the way an operator
//! would check them.
//!
//! Each scenario runs `ARK_FAULT_ROUNDS` rounds (default 30), alternating
//! SIGKILL and SIGTERM, each at a moment drawn uniformly over the length of
//! an uninterrupted run (measured first), so that rounds land before, in and
//! after every step. A round: prepare a state distinct from the backup's,
//! start the operation, signal it, check what it left, then run it again
//! uninterrupted ("the next run"): it must succeed and leave nothing behind.
//!
//! The draws come from one seed, printed: `ARK_FAULT_SEED=N` replays the
//! same signals at the same fractions of the run's length (the length is
//! measured, so the delays follow the machine's speed); every assertion
//! names the scenario, the round, the signal, the delay and the fraction.
//!
//! To add a scenario (backup, gc, verify, ...): implement [`Scenario`] and
//! call [`run_rounds`] from a `#[test]`.
mod common;

use common::pg::PgCluster;
use common::{stderr, Ark};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};
use store_format::Event;

// ---------------------------------------------------------------------------
// The harness.

/// Rounds per scenario: `ARK_FAULT_ROUNDS`, default 30.
fn rounds() -> usize {
    std::env::var("ARK_FAULT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30)
}

/// The seed of a scenario: `ARK_FAULT_SEED`, else drawn; printed either way.
fn seed(scenario: &str) -> u64 {
    let s = std::env::var("ARK_FAULT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("fault suite: {scenario}: seed {s} (replay with ARK_FAULT_SEED={s})");
    s
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sig {
    Kill,
    Term,
}

impl Sig {
    fn number(self) -> i32 {
        match self {
            Sig::Kill => libc::SIGKILL,
            Sig::Term => libc::SIGTERM,
        }
    }
}

/// How an interrupted run ended.
#[derive(Debug)]
struct Interrupted {
    status: ExitStatus,
    /// Its standard error.
    stderr: String,
}

impl Interrupted {
    /// It handled SIGTERM: stopped cleanly (exit status 143).
    fn stopped_cleanly(&self) -> bool {
        self.status.code() == Some(128 + libc::SIGTERM)
    }
    /// It ran to its end before the signal came.
    fn completed(&self) -> bool {
        self.status.success()
    }
    /// The signal ended it (SIGKILL, or SIGTERM before its handler was in place).
    fn killed(&self) -> bool {
        self.status.signal().is_some()
    }
}

/// One kind of operation interrupted round after round.
trait Scenario {
    fn name(&self) -> String;
    /// Makes the state the round starts from (distinct from the backup's).
    fn prepare(&mut self, round: usize);
    /// The operation to interrupt (its output goes to files).
    fn command(&self, round: usize) -> Command;
    /// Checks what an interrupted run left (before any other run).
    fn after_interruption(&mut self, round: usize, i: &Interrupted, ctx: &str);
    /// Runs the operation again, uninterrupted: it must succeed; checks
    /// that nothing is left behind.
    fn next_run(&mut self, round: usize, ctx: &str);
}

/// Runs `cmd` to its end; its duration.
fn timed(mut cmd: Command) -> (Output, Duration) {
    let t0 = Instant::now();
    let o = cmd.output().unwrap();
    (o, t0.elapsed())
}

/// Runs the scenario's rounds; prints how long they took.
fn run_rounds(s: &mut dyn Scenario) {
    let name = s.name();
    let seed = seed(&name);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let n = rounds();
    // The length of an uninterrupted run is the window the signals fall in:
    // the median of the next runs so far (the machine's load changes).
    s.prepare(0);
    let (o, took) = timed(s.command(0));
    assert!(
        o.status.success(),
        "{name}: an uninterrupted run failed: {}",
        stderr(&o)
    );
    let mut lengths = vec![took];
    let warm = Instant::now();
    s.next_run(0, &format!("{name} (warm-up, seed {seed})"));
    lengths.push(warm.elapsed());
    eprintln!("fault suite: {name}: an uninterrupted run takes {took:?}; {n} rounds");
    let t0 = Instant::now();
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    for round in 1..=n {
        let sig = if round % 2 == 1 { Sig::Kill } else { Sig::Term };
        let mut sorted = lengths.clone();
        sorted.sort();
        let window = sorted[sorted.len() / 2];
        let fraction = rng.gen::<f64>();
        let delay = window.mul_f64(fraction);
        let ctx = format!(
            "{name}, seed {seed}, round {round}: {sig:?} after {delay:?} ({fraction:.3} of {window:?})"
        );
        s.prepare(round);
        let errfile = tempfile::NamedTempFile::new().unwrap();
        let mut cmd = s.command(round);
        cmd.stdout(Stdio::null())
            .stderr(errfile.reopen().unwrap())
            .stdin(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let started = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if started.elapsed() >= delay {
                // SAFETY: kill(2) on the child this test started.
                unsafe { libc::kill(child.id() as i32, sig.number()) };
                break child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let i = Interrupted {
            status,
            stderr: std::fs::read_to_string(errfile.path()).unwrap_or_default(),
        };
        *outcomes
            .entry(if i.completed() {
                "completed before the signal"
            } else if i.stopped_cleanly() {
                "stopped cleanly (SIGTERM)"
            } else if i.killed() {
                "killed"
            } else {
                "failed otherwise"
            })
            .or_default() += 1;
        assert!(
            i.completed() || i.stopped_cleanly() || i.killed(),
            "{ctx}: it ended with {:?}: {}",
            i.status,
            i.stderr
        );
        s.after_interruption(round, &i, &ctx);
        let next = Instant::now();
        s.next_run(round, &ctx);
        lengths.push(next.elapsed());
    }
    eprintln!(
        "fault suite: {name}: {n} rounds in {:.1} s: {outcomes:?}",
        t0.elapsed().as_secs_f64()
    );
}

/// The newest restore event: (performed, failed message).
fn last_restore(ark: &Ark) -> Option<Result<String, String>> {
    ark.events().into_iter().rev().find_map(|e| match e {
        Event::RestorePerformed(p) => Some(Ok(p.restore_id)),
        Event::RestoreFailed(f) => Some(Err(f.message)),
        _ => None,
    })
}

fn restore_events(ark: &Ark) -> usize {
    ark.events()
        .iter()
        .filter(|e| matches!(e, Event::RestorePerformed(_) | Event::RestoreFailed(_)))
        .count()
}

/// What an interrupted restore must have recorded: SIGTERM handled →
/// `RestoreFailed` saying so; ran to its end → `RestorePerformed`; killed
/// → nothing it could record is required.
fn check_recorded(ark: &Ark, before: usize, i: &Interrupted, ctx: &str) {
    let after = restore_events(ark);
    if i.stopped_cleanly() {
        assert_eq!(after, before + 1, "{ctx}: one event: {}", i.stderr);
        match last_restore(ark) {
            Some(Err(m)) => assert!(
                m.contains("interrupted by SIGTERM"),
                "{ctx}: RestoreFailed says {m:?}"
            ),
            other => panic!("{ctx}: no RestoreFailed: {other:?}: {}", i.stderr),
        }
        let errors: Vec<&str> = i
            .stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .collect();
        assert_eq!(errors.len(), 1, "{ctx}: {}", i.stderr);
        assert!(
            errors[0].contains("interrupted by SIGTERM"),
            "{ctx}: {}",
            i.stderr
        );
    } else if i.completed() {
        assert_eq!(after, before + 1, "{ctx}");
        assert!(
            matches!(last_restore(ark), Some(Ok(_))),
            "{ctx}: a completed restore without RestorePerformed"
        );
    } else {
        assert!(after <= before + 1, "{ctx}");
    }
}

// ---------------------------------------------------------------------------
// Databases.

/// The databases of restores in progress on a cluster.
fn work_databases(pg: &PgCluster) -> Vec<String> {
    pg.psql(
        "postgres",
        "SELECT datname FROM pg_database WHERE datname ~ '_ark_(new|old)_' ORDER BY 1",
    )
    .lines()
    .map(String::from)
    .collect()
}

fn exists(pg: &PgCluster, db: &str) -> bool {
    pg.psql(
        "postgres",
        &format!("SELECT count(*) FROM pg_database WHERE datname = '{db}'"),
    ) == "1"
}

/// Client sessions on the cluster other than the one asking (a pg_restore
/// or a restore's connection that outlived its process).
fn other_sessions(pg: &PgCluster) -> Vec<String> {
    pg.psql(
        "postgres",
        "SELECT application_name || ' in ' || coalesce(datname, '-') FROM pg_stat_activity \
         WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
    )
    .lines()
    .map(String::from)
    .collect()
}

/// Waits (a little) until the sessions of killed processes are gone: a
/// server notices a closed connection when it next reads from it.
fn settle(pg: &PgCluster, ctx: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = other_sessions(pg);
        if s.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "{ctx}: sessions remain: {s:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The backup's row counts of `db`, as `schema.table`.
fn backup_counts(ark: &Ark, backup: &str, db: &str) -> BTreeMap<String, u64> {
    ark.manifest_of(backup)
        .contents
        .unwrap()
        .databases
        .iter()
        .find(|d| d.name == db)
        .unwrap()
        .tables
        .iter()
        .map(|t| (format!("{}.{}", t.schema, t.name), t.rows))
        .collect()
}

/// A cluster with the fixture, a store with a postgres_n8n backup of it.
struct DbEnv {
    pg: PgCluster,
    ark: Ark,
    backup: String,
    new: BTreeMap<String, u64>,
}

impl DbEnv {
    fn new() -> DbEnv {
        let pg = PgCluster::start();
        pg.load_fixture("n8n");
        let ark = Ark::new().init(&["--chunk-avg-kib", "64"]);
        let b = ark.backup("postgres_n8n", &["--n8n-db", &pg.url("n8n")]);
        let backup = b["backup_id"].as_str().unwrap().to_string();
        let new = backup_counts(&ark, &backup, "n8n");
        DbEnv {
            pg,
            ark,
            backup,
            new,
        }
    }
    /// `restore database BACKUP n8n --target-url … ARGS`.
    fn restore(&self, args: &[&str]) -> Command {
        let mut c = self.ark.cmd();
        c.args(["restore", "database", &self.backup, "n8n", "--target-url"])
            .arg(self.pg.url("postgres"))
            .args(args);
        c
    }
    /// A state of n8n distinct from the backup's: one more tag.
    fn diverge(&self, round: usize) -> BTreeMap<String, u64> {
        self.pg.psql(
            "n8n",
            &format!(
                "INSERT INTO tag_entity (id, name) VALUES ('faultround{round:05}', 'fault round {round}')"
            ),
        );
        self.pg.table_counts("n8n")
    }
}

/// `restore database --replace --yes`: n8n always exists, holding either
/// the state before the round or the backup's.
struct Replace {
    env: DbEnv,
    old: BTreeMap<String, u64>,
    events: usize,
}

impl Scenario for Replace {
    fn name(&self) -> String {
        "restore database --replace".into()
    }
    fn prepare(&mut self, round: usize) {
        self.old = self.env.diverge(round);
        assert_ne!(self.old, self.env.new);
        self.events = restore_events(&self.env.ark);
    }
    fn command(&self, _: usize) -> Command {
        self.env.restore(&["--replace", "--yes"])
    }
    fn after_interruption(&mut self, _: usize, i: &Interrupted, ctx: &str) {
        let pg = &self.env.pg;
        assert!(exists(pg, "n8n"), "{ctx}: no n8n database: {}", i.stderr);
        let now = pg.table_counts("n8n");
        assert!(
            now == self.old || now == self.env.new,
            "{ctx}: n8n holds neither the old nor the new state: {}",
            i.stderr
        );
        if i.completed() {
            assert_eq!(now, self.env.new, "{ctx}");
        }
        if i.stopped_cleanly() {
            // It cleaned up after itself.
            assert!(
                work_databases(pg).is_empty(),
                "{ctx}: {:?}",
                work_databases(pg)
            );
        }
        check_recorded(&self.env.ark, self.events, i, ctx);
    }
    fn next_run(&mut self, _: usize, ctx: &str) {
        let pg = &self.env.pg;
        settle(pg, ctx);
        let o = self.env.restore(&["--replace", "--yes"]).output().unwrap();
        assert!(
            o.status.success(),
            "{ctx}: the next run failed: {}",
            stderr(&o)
        );
        assert_eq!(
            pg.table_counts("n8n"),
            self.env.new,
            "{ctx}: after the next run"
        );
        assert!(
            work_databases(pg).is_empty(),
            "{ctx}: left after the next run: {:?}",
            work_databases(pg)
        );
        assert!(
            other_sessions(pg).is_empty(),
            "{ctx}: {:?}",
            other_sessions(pg)
        );
    }
}

#[test]
fn restore_database_replace_interrupted() {
    let env = DbEnv::new();
    let mut s = Replace {
        env,
        old: BTreeMap::new(),
        events: 0,
    };
    run_rounds(&mut s);
}

/// `restore database --as copy`: `copy` either does not exist or holds the
/// backup's whole state; n8n is never touched.
struct AsName {
    env: DbEnv,
    n8n: BTreeMap<String, u64>,
    events: usize,
}

impl Scenario for AsName {
    fn name(&self) -> String {
        "restore database --as".into()
    }
    fn prepare(&mut self, _: usize) {
        self.env.pg.drop_db("copy");
        self.env.pg.drop_db("copy_next");
        self.events = restore_events(&self.env.ark);
    }
    fn command(&self, _: usize) -> Command {
        self.env.restore(&["--as", "copy"])
    }
    fn after_interruption(&mut self, _: usize, i: &Interrupted, ctx: &str) {
        let pg = &self.env.pg;
        assert_eq!(pg.table_counts("n8n"), self.n8n, "{ctx}: n8n was touched");
        if exists(pg, "copy") {
            assert_eq!(
                pg.table_counts("copy"),
                self.env.new,
                "{ctx}: a partial database under the asked name: {}",
                i.stderr
            );
        } else {
            assert!(!i.completed(), "{ctx}: completed without the database");
        }
        if i.stopped_cleanly() {
            assert!(
                work_databases(pg).is_empty(),
                "{ctx}: {:?}",
                work_databases(pg)
            );
        }
        check_recorded(&self.env.ark, self.events, i, ctx);
    }
    fn next_run(&mut self, _: usize, ctx: &str) {
        let pg = &self.env.pg;
        settle(pg, ctx);
        let o = self.env.restore(&["--as", "copy_next"]).output().unwrap();
        assert!(
            o.status.success(),
            "{ctx}: the next run failed: {}",
            stderr(&o)
        );
        assert_eq!(pg.table_counts("copy_next"), self.env.new, "{ctx}");
        assert!(
            work_databases(pg).is_empty(),
            "{ctx}: left after the next run: {:?}",
            work_databases(pg)
        );
    }
}

#[test]
fn restore_database_as_interrupted() {
    let env = DbEnv::new();
    let n8n = env.pg.table_counts("n8n");
    let mut s = AsName {
        env,
        n8n,
        events: 0,
    };
    run_rounds(&mut s);
}

// ---------------------------------------------------------------------------
// The whole system.

/// The recorded config files of the scratch server: path under the server
/// directory → content.
fn server_files(round: usize) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        (
            "opt/n8n/.env",
            format!("N8N_HOST=n8n.example.org\nDB_POSTGRESDB_DATABASE=n8n\n# state {round}\n"),
        ),
        (
            "opt/n8n/docker-compose.yaml",
            format!("services:\n  n8n:\n    image: n8nio/n8n:1.123.0\n# state {round}\n"),
        ),
        (
            "etc/nginx/nginx.conf",
            format!("user www-data;\n# state {round}\n"),
        ),
    ])
}

fn write_files(base: &Path, files: &BTreeMap<&'static str, String>) {
    for (rel, content) in files {
        let p = base.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
    }
}

/// Every file under `dir` (relative path → content), temporary ones included.
fn files_under(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().display().to_string(),
                    String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned(),
                );
            }
        }
    }
    out
}

/// `restore full --yes` onto a scratch root with stop and start commands:
/// the database is old or new, every file is whole (old or new), n8n is
/// started again after a SIGTERM, and the next run puts everything back.
struct Full {
    env: DbEnv,
    server: PathBuf,
    root: PathBuf,
    old: BTreeMap<String, u64>,
    old_files: BTreeMap<&'static str, String>,
    new_files: BTreeMap<&'static str, String>,
    stop: String,
    start: String,
    events: usize,
}

impl Full {
    fn target(&self) -> PathBuf {
        self.root.join(self.server.strip_prefix("/").unwrap())
    }
    fn log(&self) -> String {
        std::fs::read_to_string(self.env.ark.path("service.log")).unwrap_or_default()
    }
    fn running(&self) -> bool {
        self.env.ark.path("running").exists()
    }
}

impl Scenario for Full {
    fn name(&self) -> String {
        "restore full --yes".into()
    }
    fn prepare(&mut self, round: usize) {
        self.old = self.env.diverge(round);
        self.old_files = server_files(1000 + round);
        write_files(&self.target(), &self.old_files);
        let _ = std::fs::remove_file(self.env.ark.path("service.log"));
        std::fs::write(self.env.ark.path("running"), b"").unwrap();
        self.events = restore_events(&self.env.ark);
    }
    fn command(&self, _: usize) -> Command {
        let mut c = self.env.ark.cmd();
        c.args(["restore", "full", &self.env.backup, "--yes", "--root"])
            .arg(&self.root)
            .args(["--n8n-db", &self.env.pg.url("n8n")])
            .args(["--stop-command", &self.stop, "--start-command", &self.start]);
        c
    }
    fn after_interruption(&mut self, _: usize, i: &Interrupted, ctx: &str) {
        let pg = &self.env.pg;
        assert!(exists(pg, "n8n"), "{ctx}: no n8n database: {}", i.stderr);
        let now = pg.table_counts("n8n");
        assert!(
            now == self.old || now == self.env.new,
            "{ctx}: n8n holds neither the old nor the new state: {}",
            i.stderr
        );
        // Each file is whole: the old one or the backup's.
        let target = self.target();
        for (rel, old) in &self.old_files {
            let have = std::fs::read_to_string(target.join(rel)).unwrap_or_default();
            assert!(
                &have == old || have == self.new_files[rel],
                "{ctx}: {rel} is neither old nor new: {have:?}"
            );
        }
        let log = self.log();
        if i.stopped_cleanly() || i.completed() {
            // n8n runs again: stopped only if started after.
            assert!(
                log.is_empty() || log.ends_with("start\n"),
                "{ctx}: n8n left stopped: {log:?}: {}",
                i.stderr
            );
            assert!(
                work_databases(pg).is_empty(),
                "{ctx}: {:?}",
                work_databases(pg)
            );
            let temporary: Vec<String> = files_under(&self.root)
                .into_keys()
                .filter(|k| k.contains(".ark-"))
                .collect();
            assert!(temporary.is_empty(), "{ctx}: {temporary:?}");
        }
        if i.completed() {
            assert_eq!(now, self.env.new, "{ctx}");
        }
        check_recorded(&self.env.ark, self.events, i, ctx);
    }
    fn next_run(&mut self, _: usize, ctx: &str) {
        let pg = &self.env.pg;
        settle(pg, ctx);
        if !self.running() && !self.log().is_empty() {
            // A killed restore cannot start n8n again: the operator does
            // (here, the start script).
            let o = Command::new("sh")
                .arg("-c")
                .arg(&self.start)
                .output()
                .unwrap();
            assert!(o.status.success());
        }
        let _ = std::fs::remove_file(self.env.ark.path("service.log"));
        let o = self.command(0).output().unwrap();
        assert!(
            o.status.success(),
            "{ctx}: the next run failed: {}",
            stderr(&o)
        );
        assert_eq!(
            pg.table_counts("n8n"),
            self.env.new,
            "{ctx}: after the next run"
        );
        for (rel, new) in &self.new_files {
            assert_eq!(
                &std::fs::read_to_string(self.target().join(rel)).unwrap(),
                new,
                "{ctx}: {rel} after the next run"
            );
        }
        assert_eq!(self.log(), "stop\nstart\n", "{ctx}");
        assert!(
            work_databases(pg).is_empty(),
            "{ctx}: {:?}",
            work_databases(pg)
        );
        let temporary: Vec<String> = files_under(&self.root)
            .into_keys()
            .filter(|k| k.contains(".ark-"))
            .collect();
        assert!(temporary.is_empty(), "{ctx}: {temporary:?}");
    }
}

#[test]
fn restore_full_interrupted() {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let ark = Ark::new().init(&["--chunk-avg-kib", "64"]);
    let server = ark.path("server");
    let new_files = server_files(0);
    write_files(&server, &new_files);
    let mut backup = ark.backup_cmd("full_system", &["--n8n-db", &pg.url("n8n")]);
    for rel in new_files.keys() {
        backup.arg("--config-path").arg(server.join(rel));
    }
    let o = backup.output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let b: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let backup = b["backup_id"].as_str().unwrap().to_string();
    let new = backup_counts(&ark, &backup, "n8n");
    let root = ark.path("root");
    std::fs::create_dir_all(&root).unwrap();
    // The service: stop removes the "running" flag, start sets it again.
    let (log, flag) = (ark.path("service.log"), ark.path("running"));
    let stop = ark.path("stop.sh");
    let start = ark.path("start.sh");
    std::fs::write(
        &stop,
        format!(
            "#!/bin/sh\necho stop >> {}\nrm -f {}\n",
            log.display(),
            flag.display()
        ),
    )
    .unwrap();
    std::fs::write(
        &start,
        format!(
            "#!/bin/sh\necho start >> {}\ntouch {}\n",
            log.display(),
            flag.display()
        ),
    )
    .unwrap();
    let env = DbEnv {
        pg,
        ark,
        backup,
        new,
    };
    let mut s = Full {
        env,
        server,
        root,
        old: BTreeMap::new(),
        old_files: BTreeMap::new(),
        new_files,
        stop: format!("sh {}", stop.display()),
        start: format!("sh {}", start.display()),
        events: 0,
    };
    run_rounds(&mut s);
}

// ---------------------------------------------------------------------------
// Workflows.

/// `restore workflow --all --out DIR`: every file in DIR is whole (as an
/// uninterrupted run writes it); a temporary file a kill left is removed by
/// the next run into the same directory, which completes the set.
struct Workflows {
    ark: Ark,
    /// The files of an uninterrupted run.
    expected: BTreeMap<String, String>,
    events: usize,
}

impl Workflows {
    fn dir(&self, round: usize) -> PathBuf {
        self.ark.path(&format!("out-{round}"))
    }
}

impl Scenario for Workflows {
    fn name(&self) -> String {
        "restore workflow --out".into()
    }
    fn prepare(&mut self, _: usize) {
        self.events = restore_events(&self.ark);
    }
    fn command(&self, round: usize) -> Command {
        let mut c = self.ark.cmd();
        c.args(["restore", "workflow", "latest", "--all", "--out"])
            .arg(self.dir(round));
        c
    }
    fn after_interruption(&mut self, round: usize, i: &Interrupted, ctx: &str) {
        for (name, content) in files_under(&self.dir(round)) {
            if name.contains(".ark-tmp-") {
                assert!(
                    i.killed(),
                    "{ctx}: a temporary file {name} after a clean end: {}",
                    i.stderr
                );
                continue;
            }
            assert_eq!(
                Some(&content),
                self.expected.get(&name),
                "{ctx}: {name} is not whole"
            );
        }
        check_recorded(&self.ark, self.events, i, ctx);
    }
    fn next_run(&mut self, round: usize, ctx: &str) {
        let o = self.command(round).output().unwrap();
        assert!(
            o.status.success(),
            "{ctx}: the next run failed: {}",
            stderr(&o)
        );
        let files = files_under(&self.dir(round));
        if self.expected.is_empty() {
            self.expected = files;
            assert!(self.expected.len() > 3, "{:?}", self.expected.keys());
            return;
        }
        assert_eq!(
            files.keys().collect::<Vec<_>>(),
            self.expected.keys().collect::<Vec<_>>(),
            "{ctx}: the files after the next run"
        );
        assert_eq!(files, self.expected, "{ctx}");
    }
}

#[test]
fn restore_workflow_out_interrupted() {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let ark = Ark::new().init(&["--chunk-avg-kib", "64"]);
    ark.backup("flows", &["--n8n-db", &pg.url("n8n")]);
    drop(pg);
    let mut s = Workflows {
        ark,
        expected: BTreeMap::new(),
        events: 0,
    };
    run_rounds(&mut s);
}

// ---------------------------------------------------------------------------
// Backups, gc and verification.

/// Session locks of backups (none may be left once the next run is done).
fn session_locks(ark: &Ark) -> Vec<String> {
    std::fs::read_dir(ark.store().join("locks"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("backup-"))
                .collect()
        })
        .unwrap_or_default()
}

/// `check --read-data` passes: every completed backup's every object is
/// present and whole.
fn check_read_data(ark: &Ark, ctx: &str) {
    let o = ark.ark(&["check", "--read-data"]);
    assert!(
        o.status.success(),
        "{ctx}: check --read-data: {}{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
}

/// The newest completed backup restores: its workflows, to files, each one
/// byte for byte the object the backup stored (restore checks that).
fn newest_restores(ark: &Ark, ctx: &str) {
    let out = tempfile::tempdir().unwrap();
    let o = ark
        .cmd()
        .args(["--json", "restore", "workflow", "latest", "--all", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{ctx}: restore latest: {}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let summary = &v["summary"];
    assert!(
        summary["restored"].as_u64().unwrap_or(0) > 0 && summary["failed"] == 0,
        "{ctx}: {summary}"
    );
}

/// `backup --type postgres_n8n`: every completed backup stays whole and
/// restorable; a stopped one is recorded (by itself on SIGTERM, by the next
/// run after SIGKILL); no lock, running backup or pg_dump session is left.
struct Backup {
    pg: PgCluster,
    ark: Ark,
}

impl Backup {
    fn cmd(&self) -> Command {
        let mut c = self.ark.cmd();
        c.args([
            "--json",
            "backup",
            "--type",
            "postgres_n8n",
            "--no-default-config-paths",
            "--no-verify",
            "--n8n-db",
        ])
        .arg(self.pg.url("n8n"));
        c
    }
    fn backups(&self) -> Vec<serde_json::Value> {
        self.ark.json(&["list"]).as_array().unwrap().clone()
    }
}

impl Scenario for Backup {
    fn name(&self) -> String {
        "backup --type postgres_n8n".into()
    }
    fn prepare(&mut self, round: usize) {
        // A day of work between backups: one more tag.
        self.pg.psql(
            "n8n",
            &format!(
                "INSERT INTO tag_entity (id, name) VALUES ('faultbackup{round:04}', 'backup round {round}')"
            ),
        );
    }
    fn command(&self, _: usize) -> Command {
        self.cmd()
    }
    fn after_interruption(&mut self, _: usize, i: &Interrupted, ctx: &str) {
        let newest = self.ark.events().into_iter().rev().find_map(|e| match e {
            Event::BackupCompleted(c) => Some(("completed", c.backup_id, String::new())),
            Event::BackupFailed(f) => Some(("failed", f.backup_id, f.stage + ": " + &f.message)),
            _ => None,
        });
        if i.stopped_cleanly() {
            let (what, _, why) = newest.clone().expect("an end was recorded");
            assert_eq!(what, "failed", "{ctx}: {}", i.stderr);
            assert!(
                why.starts_with("interrupted: interrupted by SIGTERM"),
                "{ctx}: {why}"
            );
            assert!(
                session_locks(&self.ark).is_empty(),
                "{ctx}: its lock was left"
            );
        }
        if i.completed() {
            assert_eq!(newest.map(|n| n.0), Some("completed"), "{ctx}");
        }
        // Whatever happened, every completed backup is whole, and the
        // newest restores.
        check_read_data(&self.ark, ctx);
        newest_restores(&self.ark, ctx);
    }
    fn next_run(&mut self, _: usize, ctx: &str) {
        settle(&self.pg, ctx);
        let o = self.cmd().output().unwrap();
        assert!(
            o.status.success(),
            "{ctx}: the next backup failed: {}",
            stderr(&o)
        );
        assert!(
            session_locks(&self.ark).is_empty(),
            "{ctx}: locks left: {:?}",
            session_locks(&self.ark)
        );
        let running: Vec<_> = self
            .backups()
            .into_iter()
            .filter(|b| b["status"] == "running")
            .collect();
        assert!(running.is_empty(), "{ctx}: still running: {running:?}");
    }
}

#[test]
fn backup_interrupted() {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let ark = Ark::new().init(&["--chunk-avg-kib", "64"]);
    let mut s = Backup { pg, ark };
    run_rounds(&mut s);
    // What the stopped backups wrote is garbage for gc; afterwards every
    // backup still checks.
    let o = s.ark.ark(&["gc"]);
    assert!(o.status.success(), "{}", stderr(&o));
    check_read_data(&s.ark, "after the rounds and a gc");
}

/// `gc`, with garbage to collect each round (objects of failed backups):
/// every completed backup stays whole; the next gc takes over a stale lock,
/// finishes what was set aside and leaves an empty trash.
struct Gc {
    ark: Ark,
    garbage: Vec<String>,
}

impl Gc {
    fn trash(&self) -> Vec<String> {
        files_under(&self.ark.store().join("trash"))
            .into_keys()
            .collect()
    }
}

impl Scenario for Gc {
    fn name(&self) -> String {
        "gc".into()
    }
    fn prepare(&mut self, round: usize) {
        // Unreferenced objects, as failed backups leave them: a few hundred,
        // so that a collection takes long enough to be caught in the middle.
        self.garbage = common::rt().block_on(async {
            let store = common::open_store(&self.ark.store()).await;
            let mut ids = Vec::new();
            for k in 0..300u32 {
                let data = format!("garbage of round {round}, object {k}").repeat(20);
                let (id, _) = store
                    .write_object(store_format::object::ObjectKind::Blob, data.as_bytes())
                    .await
                    .unwrap();
                ids.push(id.to_hex());
            }
            store.backend().sync().await.unwrap();
            ids
        });
    }
    fn command(&self, _: usize) -> Command {
        let mut c = self.ark.cmd();
        c.args(["gc"]);
        c
    }
    fn after_interruption(&mut self, _: usize, i: &Interrupted, ctx: &str) {
        check_read_data(&self.ark, ctx);
        newest_restores(&self.ark, ctx);
        if i.stopped_cleanly() || i.completed() {
            assert!(
                !self.ark.store().join("locks/gc").exists(),
                "{ctx}: the gc lock was left: {}",
                i.stderr
            );
        }
    }
    fn next_run(&mut self, _: usize, ctx: &str) {
        let o = self.command(0).output().unwrap();
        assert!(
            o.status.success(),
            "{ctx}: the next gc failed: {}",
            stderr(&o)
        );
        let objects = files_under(&self.ark.store().join("objects"));
        for g in &self.garbage {
            assert!(
                !objects.keys().any(|k| k.ends_with(g.as_str())),
                "{ctx}: garbage {g} was left"
            );
        }
        assert!(
            self.trash().is_empty(),
            "{ctx}: trash left: {:?}",
            self.trash()
        );
        assert!(
            !self.ark.store().join("locks/gc").exists(),
            "{ctx}: gc lock left"
        );
    }
}

#[test]
fn gc_interrupted() {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let ark = Ark::new().init(&["--chunk-avg-kib", "64"]);
    ark.backup("postgres_n8n", &["--no-verify", "--n8n-db", &pg.url("n8n")]);
    let mut s = Gc {
        ark,
        garbage: Vec::new(),
    };
    run_rounds(&mut s);
}

/// `verify latest` (level from `ARK_FAULT_VERIFY_LEVEL`, default `data`;
/// `restore` exercises the sandbox and takes far longer): a stopped
/// verification records `VerificationFailed` (SIGTERM) or nothing (SIGKILL),
/// leaves no sandbox once the next run is done, and the next run passes.
struct Verify {
    ark: Ark,
    level: String,
    sandboxes: PathBuf,
}

impl Verify {
    fn sandbox_dirs(&self) -> Vec<String> {
        std::fs::read_dir(&self.sandboxes)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Scenario for Verify {
    fn name(&self) -> String {
        format!("verify --level {}", self.level)
    }
    fn prepare(&mut self, _: usize) {}
    fn command(&self, _: usize) -> Command {
        let mut c = self.ark.cmd();
        c.env("ARK_SANDBOX_TMPDIR", &self.sandboxes).args([
            "verify",
            "latest",
            "--level",
            &self.level,
            "--sandbox",
            "local",
        ]);
        c
    }
    fn after_interruption(&mut self, _: usize, i: &Interrupted, ctx: &str) {
        if i.stopped_cleanly() {
            let last = self.ark.events().into_iter().rev().find_map(|e| match e {
                Event::VerificationFailed(f) => Some(Err(f.stage + ": " + &f.message)),
                Event::VerificationCompleted(c) => Some(Ok(c.passed)),
                _ => None,
            });
            match last {
                Some(Err(m)) => assert!(m.contains("interrupted by SIGTERM"), "{ctx}: {m}"),
                // The last check had just passed when the signal came.
                Some(Ok(true)) => {}
                other => panic!("{ctx}: {other:?}: {}", i.stderr),
            }
            assert!(
                self.sandbox_dirs().is_empty(),
                "{ctx}: sandbox left: {:?}",
                self.sandbox_dirs()
            );
        }
    }
    fn next_run(&mut self, _: usize, ctx: &str) {
        let o = self.command(0).output().unwrap();
        assert!(
            o.status.success(),
            "{ctx}: the next verification failed: {}",
            stderr(&o)
        );
        assert!(
            self.sandbox_dirs().is_empty(),
            "{ctx}: sandbox left after the next run: {:?}",
            self.sandbox_dirs()
        );
    }
}

#[test]
fn verify_interrupted() {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let ark = Ark::new().init(&["--chunk-avg-kib", "64"]);
    ark.backup("postgres_n8n", &["--no-verify", "--n8n-db", &pg.url("n8n")]);
    let sandboxes = ark.path("sandboxes");
    std::fs::create_dir_all(&sandboxes).unwrap();
    let level = std::env::var("ARK_FAULT_VERIFY_LEVEL").unwrap_or_else(|_| "data".into());
    let mut s = Verify {
        ark,
        level,
        sandboxes,
    };
    run_rounds(&mut s);
}

/// `restore config --no-keep` of a tree of a few hundred files over a root
/// that holds an older state of every one: each file is the old or the new
/// one, whole, never a mix; a SIGTERM'd restore records `RestoreFailed`;
/// the next run leaves the backup's tree and no temporary file.
struct ConfigTree {
    ark: Ark,
    backup: String,
    src: PathBuf,
    root: PathBuf,
    events: usize,
}

const CONFIG_FILES: usize = 400;

fn config_content(i: usize, state: &str) -> String {
    format!("# {state}\nserver {{ listen {i}; }}\n")
}

impl ConfigTree {
    fn restored(&self) -> PathBuf {
        self.root.join(self.src.strip_prefix("/").unwrap())
    }
}

impl Scenario for ConfigTree {
    fn name(&self) -> String {
        "restore config".into()
    }
    fn prepare(&mut self, round: usize) {
        let dir = self.restored();
        for i in 0..CONFIG_FILES {
            let p = dir.join(format!("site-{i:04}.conf"));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, config_content(i, &format!("old {round}"))).unwrap();
        }
        self.events = restore_events(&self.ark);
    }
    fn command(&self, _: usize) -> Command {
        let mut c = self.ark.cmd();
        c.args(["restore", "config", &self.backup, "--no-keep", "--root"])
            .arg(&self.root);
        c
    }
    fn after_interruption(&mut self, round: usize, i: &Interrupted, ctx: &str) {
        let old = format!("old {round}");
        for (name, content) in files_under(&self.restored()) {
            let Some(n) = name
                .strip_prefix("site-")
                .and_then(|r| r.strip_suffix(".conf"))
                .and_then(|n| n.parse::<usize>().ok())
            else {
                assert!(
                    i.killed(),
                    "{ctx}: {name} left after a clean end: {}",
                    i.stderr
                );
                continue;
            };
            assert!(
                content == config_content(n, &old) || content == config_content(n, "backup"),
                "{ctx}: {name} is neither the old nor the backup's file: {content:?}"
            );
        }
        check_recorded(&self.ark, self.events, i, ctx);
    }
    fn next_run(&mut self, _: usize, ctx: &str) {
        let o = self.command(0).output().unwrap();
        assert!(
            o.status.success(),
            "{ctx}: the next run failed: {}",
            stderr(&o)
        );
        let files = files_under(&self.restored());
        assert_eq!(
            files.len(),
            CONFIG_FILES,
            "{ctx}: {:?}",
            files
                .keys()
                .filter(|k| !k.starts_with("site-"))
                .collect::<Vec<_>>()
        );
        for (name, content) in files {
            let n: usize = name
                .strip_prefix("site-")
                .and_then(|r| r.strip_suffix(".conf"))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{ctx}: {name} left behind"));
            assert_eq!(content, config_content(n, "backup"), "{ctx}: {name}");
        }
    }
}

#[test]
fn restore_config_interrupted() {
    let ark = Ark::new().init(&["--chunk-avg-kib", "64"]);
    let src = ark.path("conf.d");
    for i in 0..CONFIG_FILES {
        let p = src.join(format!("site-{i:04}.conf"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, config_content(i, "backup")).unwrap();
    }
    let b = ark.backup(
        "n8n_config",
        &["--no-verify", "--config-path", src.to_str().unwrap()],
    );
    let root = ark.path("root");
    std::fs::create_dir_all(&root).unwrap();
    let mut s = ConfigTree {
        backup: b["backup_id"].as_str().unwrap().to_string(),
        ark,
        src,
        root,
        events: 0,
    };
    run_rounds(&mut s);
}
