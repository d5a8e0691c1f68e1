//! PostgreSQL in a Docker container, for the tests that need a real engine.
//!
//! The image is `$ARK_TEST_PG_IMAGE` (built locally by
//! tests/docker/build-pg-image.sh from the machine's PostgreSQL:
//! `n8n-ark-test/postgres:<major>`); the engine is started by
//! tests/docker/start-engine.sh (`./setup.sh test` does both). The tests that
//! need them are `#[ignore = "needs a Docker engine and ARK_TEST_PG_IMAGE …"]`,
//! so a plain `cargo test` lists them as ignored, with why, instead of
//! passing them; `./setup.sh test` runs them (`--include-ignored`), and there
//! they must run: without the variable or an engine, [`test_image`] panics
//! saying what to do.
//!
//! Containers are named `n8n-ark-test-pg-<random>`, labelled
//! `n8n-ark.test=1`, and use the host's network: postgres listens on
//! 127.0.0.1:<free port> of the host, and on a unix socket in /tmp inside the
//! container. Dropping the value removes the container.
use super::pg::{fixture_path, free_port, quote_ident, FIXTURE_SQL};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const IMAGE_ENV: &str = "ARK_TEST_PG_IMAGE";
pub const LABEL: &str = "n8n-ark.test=1";

const READY_TIMEOUT: Duration = Duration::from_secs(90);
const PORT_ATTEMPTS: usize = 5;

/// The docker CLI (`docker` in PATH).
pub fn docker() -> Command {
    let mut c = Command::new("docker");
    c.stdin(Stdio::null());
    c
}

fn check(what: &str, o: &Output) {
    if !o.status.success() {
        panic!(
            "{what} failed ({}):\n--- stderr\n{}\n--- stdout\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&o.stdout)
        );
    }
}

/// A container created (not started) from an image, as an n8n postgres
/// container stands for a sandbox to take the image of; removed on drop.
pub struct CreatedContainer(pub String);

impl CreatedContainer {
    pub fn new(prefix: &str, image: &str) -> CreatedContainer {
        let name = format!("{prefix}_{}", std::process::id());
        let o = docker()
            .args([
                "create",
                "--name",
                &name,
                "--network",
                "none",
                "--label",
                LABEL,
                image,
                "true",
            ])
            .output()
            .unwrap();
        check(&format!("docker create {name}"), &o);
        CreatedContainer(name)
    }
}

impl Drop for CreatedContainer {
    fn drop(&mut self) {
        let _ = docker().args(["rm", "-f", &self.0]).output();
    }
}

/// The image to run; panics with instructions if it is not set or missing.
pub fn test_image() -> String {
    let image = match std::env::var(IMAGE_ENV) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{IMAGE_ENV} is not set. The Docker tests need a Docker engine and a PostgreSQL image: \
             run ./setup.sh test, or by hand: \
             eval \"$(tests/docker/start-engine.sh)\" && \
             export {IMAGE_ENV}=$(tests/docker/build-pg-image.sh)"
        ),
    };
    let info = docker()
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output();
    match info {
        Err(e) => panic!(
            "the docker CLI cannot be run ({e}); the Docker tests need it (Debian: docker.io)"
        ),
        Ok(o) if !o.status.success() => panic!(
            "the Docker engine does not answer (start it with tests/docker/start-engine.sh): {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Ok(_) => {}
    }
    let o = docker()
        .args(["image", "inspect", "--format", "{{.Id}}", &image])
        .output()
        .unwrap();
    if !o.status.success() {
        panic!("the image {image} ({IMAGE_ENV}) does not exist: build it with tests/docker/build-pg-image.sh");
    }
    image
}

/// A PostgreSQL server (the machine's version) in a container; removed on drop.
pub struct PgContainer {
    name: String,
    port: u16,
}

impl PgContainer {
    pub fn start() -> PgContainer {
        let image = test_image();
        let t0 = Instant::now();
        let mut last = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let name = format!("n8n-ark-test-pg-{:016x}", rand::random::<u64>());
            let script = format!(
                "initdb -D /tmp/data -U postgres -A trust -N -E UTF8 --locale=C >/tmp/initdb.log 2>&1 \
                 || {{ cat /tmp/initdb.log >&2; exit 1; }}; \
                 exec postgres -D /tmp/data -k /tmp -p {port} -c listen_addresses=127.0.0.1 \
                 -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
                 -c shared_buffers=32MB -c max_connections=50"
            );
            let o = docker()
                .args(["run", "-d", "--name", &name, "--label", LABEL])
                .args([
                    "--network",
                    "host",
                    "-u",
                    "postgres",
                    &image,
                    "sh",
                    "-c",
                    &script,
                ])
                .output()
                .expect("run docker");
            check("docker run", &o);
            let c = PgContainer { name, port };
            match c.wait_ready() {
                Ok(()) => {
                    if std::env::var_os("ARK_TEST_PG_VERBOSE").is_some() {
                        eprintln!(
                            "docker: {} on 127.0.0.1:{port} ready in {:?}",
                            c.name,
                            t0.elapsed()
                        );
                    }
                    return c;
                }
                Err(log)
                    if log.contains("could not bind") || log.contains("Address already in use") =>
                {
                    last = log; // the port was taken meanwhile: another one
                }
                Err(log) => panic!("postgres in container {} did not start:\n{log}", c.name),
            }
        }
        panic!("postgres in a container found no free port in {PORT_ATTEMPTS} attempts:\n{last}");
    }

    /// Waits until postgres accepts connections; Err(log) if the container
    /// stopped or the time ran out.
    fn wait_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let ok = docker()
                .args(["exec", &self.name, "pg_isready", "-h", "/tmp"])
                .args([
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                    "-q",
                    "-t",
                    "1",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return Ok(());
            }
            let running = docker()
                .args(["inspect", "--format", "{{.State.Running}}", &self.name])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "true")
                .unwrap_or(false);
            if !running || Instant::now() > deadline {
                let mut log = self.logs();
                if running {
                    log.push_str(&format!("\n(not ready within {READY_TIMEOUT:?})"));
                }
                return Err(log);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// `postgres://postgres@127.0.0.1:PORT/db` (trust authentication).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// The container's output so far (initdb errors, the server log).
    pub fn logs(&self) -> String {
        match docker().args(["logs", &self.name]).output() {
            Ok(o) => format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => format!("(docker logs: {e})"),
        }
    }

    /// `docker exec [-i] NAME args...` (as the image's user, postgres).
    pub fn exec(&self, args: &[&str]) -> Command {
        let mut c = docker();
        c.args(["exec", "-i", &self.name]).args(args);
        c
    }

    fn psql_args(&self, db: &str) -> Vec<String> {
        [
            "psql",
            "-X",
            "-q",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "/tmp",
            "-U",
            "postgres",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([
            "-p".to_string(),
            self.port.to_string(),
            "-d".to_string(),
            db.to_string(),
        ])
        .collect()
    }

    /// Runs `sql` with psql inside the container (through its socket);
    /// returns the unaligned, tuples-only output without its final newline.
    pub fn exec_psql(&self, db: &str, sql: &str) -> String {
        let args = self.psql_args(db);
        let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let o = super::pg::run_with_stdin(self.exec(&args), sql.as_bytes());
        check(
            &format!("docker exec {} psql -d {db} <<< {sql:?}", self.name),
            &o,
        );
        let mut s = String::from_utf8(o.stdout).expect("psql output is UTF-8");
        if s.ends_with('\n') {
            s.pop();
        }
        s
    }

    pub fn create_db(&self, name: &str) {
        self.exec_psql(
            "postgres",
            &format!("CREATE DATABASE {}", quote_ident(name)),
        );
    }

    /// Creates `db` and loads the n8n sample into it (piped into psql).
    pub fn load_fixture(&self, db: &str) {
        self.create_db(db);
        let sql = std::fs::read(fixture_path(FIXTURE_SQL)).expect("read the fixture");
        let args = self.psql_args(db);
        let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let o = super::pg::run_with_stdin(self.exec(&args), &sql);
        check(
            &format!("loading {FIXTURE_SQL} into {db} in {}", self.name),
            &o,
        );
    }
}

impl Drop for PgContainer {
    fn drop(&mut self) {
        let _ = docker()
            .args(["rm", "-f", "-v", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
