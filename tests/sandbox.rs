//! The sandboxes (src/sandbox): a real dump of the n8n fixture (`pg_dump -Fc`
//! of tests/fixtures/n8n-1.123-sample.sql loaded into an ephemeral cluster)
//! restored into a local sandbox (initdb) and a Docker one (the image of
//! $ARK_TEST_PG_IMAGE; those tests are ignored unless asked for with
//! `--include-ignored`, as `./setup.sh test` does, and then fail when the
//! engine or the image is missing), queried, and torn down; the error path,
//! SIGKILL and Ctrl-C of the owner, browse reuse and idle expiry; the
//! manager's limit, leases (a leaked sandbox reaped by its stale heartbeat
//! while its owner runs) and shutdown; all checked by what is left on the
//! machine (directories, processes, containers).
mod common;

use common::pg::{PgCluster, FIXTURE_TABLES};
use common::rt;
use n8n_ark::ops::{Collect, NoReport, Progress};
use n8n_ark::sandbox::{
    self, Purpose, Sandbox, SandboxConfig, SandboxError, SandboxKind, SandboxManager, SandboxSpec,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tokio::io::AsyncRead;

/// The machine's PostgreSQL: the fixture's dump is made by it, and the
/// local sandbox and the Docker test image run it.
fn major() -> u32 {
    common::pg::major()
}

/// The fixture as a custom-format dump, its table counts and one workflow.
struct Fixture {
    dump: Vec<u8>,
    counts: BTreeMap<String, u64>,
    workflow: (String, String),
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let pg = PgCluster::start();
        pg.load_fixture("n8n");
        let o = pg
            .client("pg_dump")
            .args(["-Fc", "-d", "n8n"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let counts = pg.table_counts("n8n");
        assert_eq!(counts.len(), FIXTURE_TABLES);
        let w = pg.psql(
            "n8n",
            "SELECT id || '|' || name FROM workflow_entity ORDER BY id LIMIT 1",
        );
        let (id, name) = w.split_once('|').expect("a workflow in the fixture");
        Fixture {
            dump: o.stdout,
            counts,
            workflow: (id.to_string(), name.to_string()),
        }
    })
}

/// The sandbox manager of these tests' process (a front end makes one).
fn manager() -> &'static SandboxManager {
    static M: OnceLock<SandboxManager> = OnceLock::new();
    M.get_or_init(|| {
        SandboxManager::new(SandboxConfig {
            max_concurrent: 64,
            ..Default::default()
        })
    })
}

async fn provision(
    choice: Option<SandboxKind>,
    spec: &SandboxSpec,
) -> Result<Box<dyn Sandbox>, SandboxError> {
    manager().provision(choice, spec, &NoReport).await
}

async fn browse_sandbox(
    choice: Option<SandboxKind>,
    key: &str,
    spec: &SandboxSpec,
    idle: Duration,
) -> Result<Box<dyn Sandbox>, SandboxError> {
    manager().browse(choice, key, spec, idle, &NoReport).await
}

fn reader(bytes: Vec<u8>) -> Pin<Box<dyn AsyncRead + Send>> {
    Box::pin(std::io::Cursor::new(bytes))
}

fn spec(purpose: Purpose, image: Option<&str>) -> SandboxSpec {
    let mut s = SandboxSpec::new(purpose, major());
    s.image = image.map(str::to_string);
    s.memory_bytes = image.map(|_| 512 << 20);
    s.cpus = image.map(|_| 1.0);
    s
}

/// What a sandbox leaves on the machine: its directory or container.
fn exists(kind: SandboxKind, name: &str) -> bool {
    match kind {
        SandboxKind::Local => Path::new(name).exists(),
        SandboxKind::Docker => {
            let o = common::docker::docker()
                .args(["ps", "-aq", "--filter", &format!("name=^{name}$")])
                .output()
                .unwrap();
            assert!(o.status.success());
            !String::from_utf8_lossy(&o.stdout).trim().is_empty()
        }
    }
}

/// `local:/tmp/x (...)` -> `/tmp/x`; `docker:name (...)` -> `name`.
fn name_of(describe: &str) -> String {
    let rest = describe.split_once(':').unwrap().1;
    rest.split(" (").next().unwrap().to_string()
}

fn postmaster_pid(dir: &str) -> Option<i32> {
    let s = std::fs::read_to_string(Path::new(dir).join("data/postmaster.pid")).ok()?;
    s.lines().next()?.trim().parse().ok()
}

/// Whether a process runs (a zombie waiting for its parent does not).
fn alive(pid: i32) -> bool {
    if unsafe { libc::kill(pid, 0) } != 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s[s.rfind(')').unwrap() + 1..].split_whitespace().next() != Some("Z"),
        Err(_) => false,
    }
}

/// Every table's exact count in the sandbox, in one query.
async fn counts(
    sb: &dyn Sandbox,
    db: &str,
    tables: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    let sql = tables
        .keys()
        .map(|t| {
            let (s, n) = t.split_once('.').unwrap();
            format!(
                "SELECT '{t}' AS t, count(*) AS n FROM {}.{}",
                sandbox::quote_ident(s),
                sandbox::quote_ident(n)
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    sb.query_json(db, &sql)
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                r["t"].as_str().unwrap().to_string(),
                r["n"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Provision, load the fixture's dump, query, tear down: nothing left.
async fn roundtrip(kind: SandboxKind, image: Option<&str>) {
    let f = fixture();
    let sb = provision(Some(kind), &spec(Purpose::Verify, image))
        .await
        .unwrap();
    assert_eq!(sb.kind(), kind);
    let d = sb.describe();
    assert!(d.starts_with(kind.as_str()), "{d}");
    assert!(d.contains("PostgreSQL 15."), "{d}");
    let name = name_of(&d);
    if kind == SandboxKind::Docker {
        assert!(name.starts_with("n8n_postgres_verify_"), "{name}");
        let o = common::docker::docker()
            .args([
                "inspect",
                "--format",
                "{{.HostConfig.NetworkMode}} {{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{index .Config.Labels \"n8n-ark.sandbox\"}} {{index .Config.Labels \"n8n-ark.owner-pid\"}} {{len .NetworkSettings.Ports}}",
                &name,
            ])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&o.stdout).trim(),
            format!("none {} 1000000000 1 {} 0", 512 << 20, std::process::id())
        );
    } else {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&name).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{name}");
    }
    assert!(!sb.has_database("n8n").await.unwrap());
    sb.restore_dump("n8n", reader(f.dump.clone()))
        .await
        .unwrap();
    assert!(sb.has_database("n8n").await.unwrap());
    assert!(!sb.has_database("n8n__loading").await.unwrap());

    // Exactly the source's tables and row counts.
    assert_eq!(counts(sb.as_ref(), "n8n", &f.counts).await, f.counts);
    // Values as row_to_json, in order.
    let rows = sb
        .query_json(
            "n8n",
            "SELECT id, name FROM workflow_entity ORDER BY id LIMIT 1;",
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["id"], f.workflow.0.as_str());
    assert_eq!(rows[0]["name"], f.workflow.1.as_str());
    // The session: read-only, UTC, no TCP.
    let s = sb
        .query_json(
            "n8n",
            "SELECT current_setting('default_transaction_read_only') AS ro, current_setting('TimeZone') AS tz, current_setting('listen_addresses') AS la",
        )
        .await
        .unwrap();
    assert_eq!(
        s,
        vec![serde_json::json!({"ro": "on", "tz": "UTC", "la": ""})]
    );
    let w = sb
        .query_json(
            "n8n",
            "SELECT nextval(pg_get_serial_sequence('execution_entity', 'id')) AS n",
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(w.contains("read-only transaction"), "{w}");
    // A bad query: psql's message.
    let e = sb
        .query_json("n8n", "SELECT * FROM no_such_table")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no_such_table"), "{e}");
    assert!(sb
        .query_json("n8n", "SELECT 1 AS a WHERE false")
        .await
        .unwrap()
        .is_empty());

    let pid = (kind == SandboxKind::Local).then(|| postmaster_pid(&name).unwrap());
    assert!(exists(kind, &name));
    sb.teardown().await.unwrap();
    assert!(!exists(kind, &name), "{name} is left after teardown");
    if let Some(pid) = pid {
        assert!(!alive(pid), "the postmaster {pid} still runs");
    }
}

#[test]
fn local_restores_queries_and_tears_down() {
    rt().block_on(roundtrip(SandboxKind::Local, None));
}

#[test]
#[ignore = "needs a Docker engine and ARK_TEST_PG_IMAGE (./setup.sh test provides both)"]
fn docker_restores_queries_and_tears_down() {
    let image = common::docker::test_image();
    rt().block_on(roundtrip(SandboxKind::Docker, Some(&image)));
}

/// A dump that does not load: pg_restore's message; the handle dropped
/// without teardown (an error path) still removes the sandbox.
async fn bad_dump(kind: SandboxKind, image: Option<&str>) {
    let f = fixture();
    let name;
    {
        let sb = provision(Some(kind), &spec(Purpose::Verify, image))
            .await
            .unwrap();
        name = name_of(&sb.describe());
        let e = sb
            .restore_dump("n8n", reader(b"this is not a dump".to_vec()))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("pg_restore") && e.contains("n8n"), "{e}");
        // A truncated real dump fails too, and leaves no database behind.
        let cut = f.dump[..f.dump.len() / 2].to_vec();
        let e = sb
            .restore_dump("n8n", reader(cut))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not load"), "{e}");
        assert!(!sb.has_database("n8n").await.unwrap());
        assert!(exists(kind, &name));
    }
    assert!(!exists(kind, &name), "{name} is left after an error");
}

#[test]
fn local_bad_dump_fails_and_is_removed() {
    rt().block_on(bad_dump(SandboxKind::Local, None));
}

#[test]
#[ignore = "needs a Docker engine and ARK_TEST_PG_IMAGE (./setup.sh test provides both)"]
fn docker_bad_dump_fails_and_is_removed() {
    let image = common::docker::test_image();
    rt().block_on(bad_dump(SandboxKind::Docker, Some(&image)));
}

#[test]
fn local_refuses_a_missing_major_naming_the_package() {
    let e = rt()
        .block_on(provision(
            Some(SandboxKind::Local),
            &SandboxSpec::new(Purpose::Verify, 9),
        ))
        .unwrap_err()
        .to_string();
    assert!(e.contains("postgresql-9"), "{e}");
}

#[test]
#[ignore = "needs a Docker engine and ARK_TEST_PG_IMAGE (./setup.sh test provides both)"]
fn docker_refuses_without_an_image() {
    common::docker::test_image();
    let e = rt()
        .block_on(async {
            let mut s = SandboxSpec::new(Purpose::Verify, major());
            s.image = Some("n8n-ark-test/no-such-image:1".into());
            provision(Some(SandboxKind::Docker), &s).await
        })
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no-such-image") && e.contains("not on this machine"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------
// The owner killed: SIGKILL leaves the sandbox, the next start removes it;
// Ctrl-C removes it at once.

/// Not a test: the process the tests below kill. Provisions a sandbox
/// (ARK_SANDBOX_TEST_HOLD=local|docker), writes its description to
/// ARK_SANDBOX_TEST_READY and sleeps. On SIGINT it does what a front end
/// does (the engine handles no signal): shuts its sandbox manager down and
/// exits 130. `./setup.sh test` runs the ignored tests with `--skip
/// hold_sandbox_helper`.
#[test]
#[ignore = "not a test: the child process of the sandbox kill tests"]
fn hold_sandbox_helper() {
    let kind = match std::env::var("ARK_SANDBOX_TEST_HOLD").as_deref() {
        Ok("local") => SandboxKind::Local,
        Ok("docker") => SandboxKind::Docker,
        _ => panic!("run by the sandbox tests only"),
    };
    let ready = PathBuf::from(std::env::var_os("ARK_SANDBOX_TEST_READY").unwrap());
    let image = std::env::var("ARK_SANDBOX_TEST_IMAGE").ok();
    rt().block_on(async {
        let mut int =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).unwrap();
        let sb = provision(Some(kind), &spec(Purpose::Verify, image.as_deref()))
            .await
            .unwrap();
        let dump = std::fs::read(std::env::var_os("ARK_SANDBOX_TEST_DUMP").unwrap()).unwrap();
        sb.restore_dump("n8n", reader(dump)).await.unwrap();
        std::fs::write(&ready, sb.describe()).unwrap();
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(120)) => {}
            _ = int.recv() => {
                manager().shutdown().await;
                std::process::exit(130);
            }
        }
        drop(sb);
    });
}

struct Held {
    child: std::process::Child,
    name: String,
    _ready: tempfile::TempDir,
}

fn hold(kind: SandboxKind, image: Option<&str>) -> Held {
    let ready = tempfile::tempdir().unwrap();
    let file = ready.path().join("ready");
    let dump = ready.path().join("n8n.dump");
    std::fs::write(&dump, &fixture().dump).unwrap();
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        "--exact",
        "hold_sandbox_helper",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("ARK_SANDBOX_TEST_HOLD", kind.as_str())
    .env("ARK_SANDBOX_TEST_READY", &file)
    .env("ARK_SANDBOX_TEST_DUMP", &dump)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    if let Some(i) = image {
        c.env("ARK_SANDBOX_TEST_IMAGE", i);
    }
    let mut child = c.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let describe = loop {
        if let Ok(s) = std::fs::read_to_string(&file) {
            if !s.is_empty() {
                break s;
            }
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!("the helper exited early: {st}");
        }
        assert!(
            Instant::now() < deadline,
            "the helper made no sandbox in 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    Held {
        child,
        name: name_of(&describe),
        _ready: ready,
    }
}

async fn killed(kind: SandboxKind, image: Option<&str>) {
    let mut h = hold(kind, image);
    assert!(exists(kind, &h.name));
    let pid = (kind == SandboxKind::Local).then(|| postmaster_pid(&h.name).unwrap());
    h.child.kill().unwrap(); // SIGKILL: no handler, no Drop
    h.child.wait().unwrap();
    assert!(exists(kind, &h.name), "SIGKILL cannot remove anything");
    let removed = sandbox::remove_leftovers().await.unwrap();
    assert!(
        removed.iter().any(|r| r.contains(&h.name)),
        "{} not among the removed: {removed:?}",
        h.name
    );
    assert!(!exists(kind, &h.name), "{} is left", h.name);
    if let Some(pid) = pid {
        assert!(!alive(pid), "the postmaster {pid} still runs");
    }
}

#[test]
fn local_left_by_sigkill_is_removed_at_next_start() {
    rt().block_on(killed(SandboxKind::Local, None));
}

#[test]
#[ignore = "needs a Docker engine and ARK_TEST_PG_IMAGE (./setup.sh test provides both)"]
fn docker_left_by_sigkill_is_removed_at_next_start() {
    let image = common::docker::test_image();
    rt().block_on(killed(SandboxKind::Docker, Some(&image)));
}

fn interrupted(kind: SandboxKind, image: Option<&str>) {
    let mut h = hold(kind, image);
    assert!(exists(kind, &h.name));
    unsafe {
        libc::kill(h.child.id() as i32, libc::SIGINT);
    }
    let st = h.child.wait().unwrap();
    assert_eq!(st.code(), Some(130), "Ctrl-C exits 130");
    assert!(!exists(kind, &h.name), "{} is left after Ctrl-C", h.name);
}

#[test]
fn local_is_removed_on_ctrl_c() {
    interrupted(SandboxKind::Local, None);
}

#[test]
#[ignore = "needs a Docker engine and ARK_TEST_PG_IMAGE (./setup.sh test provides both)"]
fn docker_is_removed_on_ctrl_c() {
    let image = common::docker::test_image();
    interrupted(SandboxKind::Docker, Some(&image));
}

// ---------------------------------------------------------------------------
// Browse sandboxes: reused while idle, removed after, by the reaper.

async fn browse(kind: SandboxKind, image: Option<&str>) {
    std::env::set_var("ARK_SANDBOX_REAPER_BIN", env!("CARGO_BIN_EXE_n8n-ark"));
    let f = fixture();
    let key = format!("test-{}-{}", kind.as_str(), rand::random::<u32>());
    let idle = Duration::from_secs(3);
    let s = spec(Purpose::Browse, image);
    let first = browse_sandbox(Some(kind), &key, &s, idle).await.unwrap();
    let name = name_of(&first.describe());
    assert!(!first.has_database("n8n").await.unwrap());
    first
        .restore_dump("n8n", reader(f.dump.clone()))
        .await
        .unwrap();
    drop(first); // the command ends: it stays
    assert!(exists(kind, &name));

    // A second request finds it, loaded.
    let t = Instant::now();
    let second = browse_sandbox(Some(kind), &key, &s, idle).await.unwrap();
    assert_eq!(name_of(&second.describe()), name);
    assert!(second.has_database("n8n").await.unwrap());
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "reuse took {:?}",
        t.elapsed()
    );
    let rows = second
        .query_json("n8n", "SELECT count(*) AS n FROM workflow_entity")
        .await
        .unwrap();
    assert_eq!(
        rows[0]["n"].as_u64(),
        f.counts.get("public.workflow_entity").copied()
    );
    // Another key gets another sandbox.
    let other = browse_sandbox(Some(kind), &format!("{key}-other"), &s, idle)
        .await
        .unwrap();
    let other_name = name_of(&other.describe());
    assert_ne!(other_name, name);
    drop(second);
    drop(other);

    // Nothing else runs: the detached reaper removes both after their idle time.
    let deadline = Instant::now() + Duration::from_secs(25);
    while exists(kind, &name) || exists(kind, &other_name) {
        assert!(
            Instant::now() < deadline,
            "browse sandboxes {name} / {other_name} still there 25 s after their idle time"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[test]
fn local_browse_is_reused_then_expires() {
    rt().block_on(browse(SandboxKind::Local, None));
}

#[test]
#[ignore = "needs a Docker engine and ARK_TEST_PG_IMAGE (./setup.sh test provides both)"]
fn docker_browse_is_reused_then_expires() {
    let image = common::docker::test_image();
    rt().block_on(browse(SandboxKind::Docker, Some(&image)));
}

#[test]
fn default_choice_says_which_and_cli_lists() {
    // Without an image configured, the default is local.
    let sb = rt()
        .block_on(async {
            let mut s = SandboxSpec::new(Purpose::Verify, major());
            s.image = None;
            std::env::remove_var("ARK_SANDBOX_IMAGE");
            provision(None, &s).await
        })
        .unwrap();
    assert_eq!(sb.kind(), SandboxKind::Local);
    let name = name_of(&sb.describe());
    let o = Command::new(env!("CARGO_BIN_EXE_n8n-ark"))
        .args(["sandbox", "list"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.lines()
            .any(|l| l.contains(&name) && l.contains("in use by pid")),
        "{out}"
    );
    let o = Command::new(env!("CARGO_BIN_EXE_n8n-ark"))
        .args(["sandbox", "remove", "/nonexistent"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&o.stderr).lines().count(), 1);
    rt().block_on(sb.teardown()).unwrap();
    assert!(!Path::new(&name).exists());
}

#[test]
fn local_is_removed_when_its_owner_panics() {
    let (tx, rx) = std::sync::mpsc::channel();
    let r = std::thread::spawn(move || {
        rt().block_on(async {
            let sb = provision(Some(SandboxKind::Local), &spec(Purpose::Verify, None))
                .await
                .unwrap();
            tx.send(name_of(&sb.describe())).unwrap();
            panic!("a bug while the sandbox is up");
        })
    })
    .join();
    assert!(r.is_err(), "the thread panicked");
    let name = rx.recv().unwrap();
    assert!(!Path::new(&name).exists(), "{name} is left after a panic");
}

/// With no image given, the Docker sandbox takes the image of the running
/// n8n postgres container (`ARK_PG_CONTAINER`, here through the spec), so the
/// version matches the server's; a container that does not exist is a clear
/// refusal.
#[test]
#[ignore = "needs a Docker engine and ARK_TEST_PG_IMAGE (./setup.sh test provides both)"]
fn docker_takes_the_image_of_the_n8n_postgres_container() {
    let image = common::docker::test_image();
    let created = common::docker::CreatedContainer::new("n8n_ark_test_pg", &image);
    let container = created.0.clone();
    let result = rt().block_on(async {
        let mut s = SandboxSpec::new(Purpose::Verify, major());
        s.image = None;
        s.image_from_container = Some(container.clone());
        let sb = provision(Some(SandboxKind::Docker), &s).await?;
        let d = sb.describe();
        sb.teardown().await?;
        let mut missing = SandboxSpec::new(Purpose::Verify, major());
        missing.image = None;
        missing.image_from_container = Some(format!("{container}_absent"));
        let e = provision(Some(SandboxKind::Docker), &missing)
            .await
            .map(|sb| sb.describe());
        Ok::<_, sandbox::SandboxError>((d, e))
    });
    drop(created);
    let (described, missing) = result.unwrap();
    assert!(described.contains(&image), "{described}");
    let e = missing.unwrap_err().to_string();
    assert!(e.contains(&format!("{container}_absent")), "{e}");
}

// ---------------------------------------------------------------------------
// The manager: two sandboxes at once, its limit, leases, shutdown.

/// A manager of its own (not the tests' shared one).
fn own_manager(max: usize, wait: Duration, heartbeat: Duration) -> SandboxManager {
    SandboxManager::new(SandboxConfig {
        max_concurrent: max,
        wait,
        heartbeat,
        ..Default::default()
    })
}

#[test]
fn two_sandboxes_leased_at_once_each_with_its_lease() {
    rt().block_on(async {
        let m = own_manager(2, Duration::ZERO, Duration::from_millis(200));
        let report = Collect::new();
        let s = spec(Purpose::Verify, None);
        let (a, b) = tokio::join!(
            m.provision(Some(SandboxKind::Local), &s, &report),
            m.provision(Some(SandboxKind::Local), &s, &report)
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(m.in_use(), 2);
        let (na, nb) = (name_of(&a.describe()), name_of(&b.describe()));
        assert_ne!(na, nb);
        // Each says which sandbox it is, through the reporter.
        let made: Vec<String> = report
            .events()
            .into_iter()
            .filter_map(|p| match p {
                Progress::Item { name, detail, .. } if name == sandbox::REPORT_ITEM => Some(detail),
                _ => None,
            })
            .collect();
        assert_eq!(made.len(), 2, "{made:?}");
        assert!(made.iter().all(|d| d.starts_with("local:")), "{made:?}");
        // Both usable at once, each with a fresh lease: a sweep leaves them.
        a.query_json("postgres", "SELECT 1 AS ok").await.unwrap();
        b.query_json("postgres", "SELECT 1 AS ok").await.unwrap();
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let removed = m.reap().await.unwrap();
        assert!(
            !removed.iter().any(|r| r.contains(&na) || r.contains(&nb)),
            "{removed:?}"
        );
        assert!(exists(SandboxKind::Local, &na) && exists(SandboxKind::Local, &nb));
        a.teardown().await.unwrap();
        assert_eq!(m.in_use(), 1);
        b.teardown().await.unwrap();
        assert_eq!(m.in_use(), 0);
        assert!(!exists(SandboxKind::Local, &na) && !exists(SandboxKind::Local, &nb));
    });
}

#[test]
fn over_the_limit_a_request_waits_or_fails_busy() {
    rt().block_on(async {
        let s = spec(Purpose::Verify, None);
        // No wait: at once a retryable Busy, naming the setting.
        let m = own_manager(1, Duration::ZERO, Duration::from_secs(15));
        let first = m
            .provision(Some(SandboxKind::Local), &s, &NoReport)
            .await
            .unwrap();
        let t = Instant::now();
        let e = m
            .provision(Some(SandboxKind::Local), &s, &NoReport)
            .await
            .unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(2));
        assert!(matches!(e, SandboxError::Busy(_)), "{e:?}");
        assert!(e.is_retryable());
        assert!(e.to_string().contains("ARK_SANDBOX_MAX"), "{e}");
        let op: n8n_ark::ops::OpError = e.into();
        assert_eq!(op.kind, n8n_ark::ops::ErrorKind::Unavailable);
        assert!(op.retryable);
        first.teardown().await.unwrap();

        // With a wait: the second gets the first's slot once it is given back.
        let m = std::sync::Arc::new(own_manager(
            1,
            Duration::from_secs(60),
            Duration::from_secs(15),
        ));
        let first = m
            .provision(Some(SandboxKind::Local), &s, &NoReport)
            .await
            .unwrap();
        let report = std::sync::Arc::new(Collect::new());
        let (m2, s2, r2) = (m.clone(), s.clone(), report.clone());
        let second =
            tokio::spawn(async move { m2.provision(Some(SandboxKind::Local), &s2, &*r2).await });
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!second.is_finished(), "the second did not wait");
        assert!(
            report.events().iter().any(|p| matches!(p,
                Progress::Item { outcome, .. } if outcome == "waiting")),
            "{:?}",
            report.events()
        );
        first.teardown().await.unwrap();
        let second = second.await.unwrap().unwrap();
        assert_eq!(m.in_use(), 1);
        second.teardown().await.unwrap();
        assert_eq!(m.in_use(), 0);
    });
}

#[test]
fn a_leaked_sandbox_is_reaped_by_its_stale_heartbeat_while_its_owner_runs() {
    rt().block_on(async {
        let m = own_manager(4, Duration::ZERO, Duration::from_millis(100));
        let s = spec(Purpose::Verify, None);
        let kept = m
            .provision(Some(SandboxKind::Local), &s, &NoReport)
            .await
            .unwrap();
        let leaked = m
            .provision(Some(SandboxKind::Local), &s, &NoReport)
            .await
            .unwrap();
        let (nk, nl) = (name_of(&kept.describe()), name_of(&leaked.describe()));
        let pid = postmaster_pid(&nl).unwrap();
        // Lost without teardown, as a bug in a long-lived process would.
        leaked.abandon();
        assert!(exists(SandboxKind::Local, &nl));
        // This process still runs: only the lease (4 × 100 ms) tells.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let removed = m.reap().await.unwrap();
        assert!(removed.iter().any(|r| r.contains(&nl)), "{removed:?}");
        assert!(!exists(SandboxKind::Local, &nl), "{nl} is left");
        assert!(!alive(pid), "the postmaster {pid} still runs");
        // The one still held kept its heartbeat: not touched.
        assert!(!removed.iter().any(|r| r.contains(&nk)), "{removed:?}");
        kept.query_json("postgres", "SELECT 1 AS ok").await.unwrap();
        kept.teardown().await.unwrap();
    });
}

#[test]
fn shutdown_removes_every_sandbox_in_use_and_makes_no_more() {
    rt().block_on(async {
        let m = own_manager(4, Duration::from_secs(60), Duration::from_secs(15));
        let s = spec(Purpose::Verify, None);
        let a = m
            .provision(Some(SandboxKind::Local), &s, &NoReport)
            .await
            .unwrap();
        let b = m
            .provision(Some(SandboxKind::Local), &s, &NoReport)
            .await
            .unwrap();
        let (na, nb) = (name_of(&a.describe()), name_of(&b.describe()));
        let said = m.shutdown().await;
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(
            said.iter().all(|l| l.starts_with("removed the sandbox")),
            "{said:?}"
        );
        assert!(!exists(SandboxKind::Local, &na) && !exists(SandboxKind::Local, &nb));
        // The handles fail cleanly; tearing them down afterwards is harmless.
        assert!(a.query_json("postgres", "SELECT 1 AS ok").await.is_err());
        a.teardown().await.unwrap();
        b.teardown().await.unwrap();
        let e = m
            .provision(Some(SandboxKind::Local), &s, &NoReport)
            .await
            .unwrap_err();
        assert!(matches!(e, SandboxError::Busy(_)), "{e:?}");
        assert!(e.to_string().contains("shutting down"), "{e}");
    });
}
