//! Ephemeral PostgreSQL clusters for integration tests.
//!
//! [`PgCluster::start`] runs `initdb` into a fresh temporary directory and a
//! `postgres` listening on 127.0.0.1 (a free port) and on a unix socket in that
//! directory. The cluster is stopped (immediate shutdown) and the directory
//! removed when the value is dropped. Several clusters can run at once.
//!
//! As root, the server runs as the `postgres` OS user (PostgreSQL refuses to
//! run as root); otherwise as the current user. The superuser is always
//! `postgres`. The helper's own `psql` calls go through the unix socket, which
//! trusts every local connection, also in the password variant.
use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The n8n sample database dump, as a path.
pub const FIXTURE_SQL: &str = "n8n-1.123-sample.sql";
/// Tables in the sample.
pub const FIXTURE_TABLES: usize = 52;
/// The sample instance's N8N_ENCRYPTION_KEY.
pub const FIXTURE_ENCRYPTION_KEY: &str = "acc-n8n-fixed-encryption-key-0123456789";
/// The template database [`PgCluster::load_fixture_template`] creates.
pub const FIXTURE_TEMPLATE_DB: &str = "n8n_template";

const READY_TIMEOUT: Duration = Duration::from_secs(60);
const PORT_ATTEMPTS: usize = 8;

/// Path of a file in tests/fixtures.
pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The PostgreSQL server binaries: `$ARK_TEST_PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin` holding a `postgres` (Debian's layout).
pub fn bin_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(d) = std::env::var_os("ARK_TEST_PG_BIN") {
            return PathBuf::from(d);
        }
        let mut best: Option<(u32, PathBuf)> = None;
        if let Ok(rd) = std::fs::read_dir("/usr/lib/postgresql") {
            for e in rd.flatten() {
                let v = e.file_name().to_string_lossy().parse::<u32>().ok();
                let bin = e.path().join("bin");
                if let Some(v) = v {
                    if bin.join("postgres").is_file() && best.as_ref().is_none_or(|(b, _)| v > *b) {
                        best = Some((v, bin));
                    }
                }
            }
        }
        match best {
            Some((_, bin)) => bin,
            None => panic!(
                "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin \
                 (Debian, Ubuntu: apt-get install postgresql, or set ARK_TEST_PG_BIN)"
            ),
        }
    })
    .clone()
}

/// The major version of the PostgreSQL in [`bin_dir`] (the distribution's:
/// 15 on Debian 12, 17 on Debian 13, 16 on Ubuntu 24.04), from
/// `postgres --version` ("postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)").
pub fn major() -> u32 {
    static MAJOR: OnceLock<u32> = OnceLock::new();
    *MAJOR.get_or_init(|| {
        let o = Command::new(bin_dir().join("postgres"))
            .arg("--version")
            .output()
            .expect("run postgres --version");
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        text.split(") ")
            .nth(1)
            .and_then(|v| v.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|m| m.parse().ok())
            .unwrap_or_else(|| panic!("no version in `postgres --version`: {text:?}"))
    })
}

/// Free bytes on the file system of `path`.
pub fn free_space(path: &Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0);
    st.f_bavail as u64 * st.f_frsize as u64
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// uid and gid of the `postgres` OS user (needed only as root).
fn postgres_ids() -> (u32, u32) {
    static IDS: OnceLock<(u32, u32)> = OnceLock::new();
    *IDS.get_or_init(|| {
        let id = |flag: &str| -> u32 {
            let o = Command::new("id")
                .args([flag, "postgres"])
                .output()
                .expect("run id");
            assert!(
                o.status.success(),
                "tests run as root need a `postgres` OS user to run PostgreSQL \
                 (Debian, Ubuntu: apt-get install postgresql): {}",
                String::from_utf8_lossy(&o.stderr)
            );
            String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
        };
        (id("-u"), id("-g"))
    })
}

/// Environment variables of libpq that must not leak into the helper's
/// commands from the caller's environment.
const PG_ENV: &[&str] = &[
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "PGPASSFILE",
    "PGDATABASE",
    "PGSERVICE",
    "PGSERVICEFILE",
    "PGOPTIONS",
    "PGSSLMODE",
    "PGDATA",
    "PGCONNECT_TIMEOUT",
];

/// A command without the caller's libpq environment.
pub fn clean_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new(program);
    for v in PG_ENV {
        c.env_remove(v);
    }
    c.env("PGCONNECT_TIMEOUT", "10");
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

/// Quotes an SQL identifier.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// An ephemeral PostgreSQL cluster; stopped and deleted on drop.
pub struct PgCluster {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
    password: Option<String>,
    template: Mutex<bool>,
}

impl PgCluster {
    /// A cluster that trusts every connection.
    pub fn start() -> PgCluster {
        Self::start_inner(None, None)
    }

    /// A cluster whose server may recurse `mib` MiB deep (`max_stack_depth`,
    /// with the process's stack limit raised to match): PostgreSQL's parsers
    /// of `json` and `jsonb` recurse once per level, so its default of 2 MB
    /// takes about 10,000 levels, and an operator who raises it stores deeper
    /// documents (120 MiB: more than 100,000 levels).
    pub fn start_with_stack(mib: u64) -> PgCluster {
        Self::start_inner(None, Some(mib))
    }

    /// A cluster whose directory is made in `base` (e.g. a small file
    /// system, to see what a full disk does).
    pub fn start_in(base: &Path) -> PgCluster {
        Self::start_inner_in(None, base.to_path_buf(), None)
    }

    /// A cluster whose TCP connections need `password` (scram-sha-256) for
    /// the superuser `postgres`; unix-socket connections stay trusted.
    pub fn start_with_password(password: &str) -> PgCluster {
        assert!(!password.contains('\n'), "a password of one line, please");
        Self::start_inner(Some(password.to_string()), None)
    }

    /// Runs a server binary as the user the cluster belongs to.
    fn server_command(&self, program: &str) -> Command {
        server_command(self.dir.path(), program)
    }

    fn start_inner(password: Option<String>, stack_mib: Option<u64>) -> PgCluster {
        let base = std::env::var_os("ARK_TEST_PG_TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        Self::start_inner_in(password, base, stack_mib)
    }

    fn start_inner_in(
        password: Option<String>,
        base: PathBuf,
        stack_mib: Option<u64>,
    ) -> PgCluster {
        let t0 = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("ark-pg-")
            .tempdir_in(&base)
            .unwrap_or_else(|e| panic!("temporary directory in {}: {e}", base.display()));
        if is_root() {
            let (uid, gid) = postgres_ids();
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let data = dir.path().join("data");

        let mut initdb = server_command(dir.path(), "initdb");
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-N", "-E", "UTF8", "--locale=C"]);
        match &password {
            None => {
                initdb.args(["-A", "trust"]);
            }
            Some(pw) => {
                let pwfile = dir.path().join("pwfile");
                std::fs::write(&pwfile, format!("{pw}\n")).unwrap();
                if is_root() {
                    let (uid, gid) = postgres_ids();
                    std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid)).unwrap();
                }
                initdb
                    .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
                    .arg(format!("--pwfile={}", pwfile.display()));
            }
        }
        let o = initdb.output().expect("run initdb");
        let _ = std::fs::remove_file(dir.path().join("pwfile"));
        check("initdb", &o);

        let log = dir.path().join("postgres.log");
        let mut last_log = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let logf = std::fs::File::create(&log).unwrap();
            if is_root() {
                let (uid, gid) = postgres_ids();
                std::os::unix::fs::chown(&log, Some(uid), Some(gid)).unwrap();
            }
            let mut server = server_command(dir.path(), "postgres");
            if let Some(mib) = stack_mib {
                let limit = (mib + 8) << 20;
                // SAFETY: setrlimit is async-signal-safe; it only changes the child.
                unsafe {
                    server.pre_exec(move || {
                        let mut r = libc::rlimit {
                            rlim_cur: 0,
                            rlim_max: 0,
                        };
                        if libc::getrlimit(libc::RLIMIT_STACK, &mut r) != 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        r.rlim_cur = limit.min(r.rlim_max);
                        if libc::setrlimit(libc::RLIMIT_STACK, &r) != 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
                server.args(["-c", &format!("max_stack_depth={mib}MB")]);
            }
            let mut child = server
                .arg("-D")
                .arg(&data)
                .arg("-k")
                .arg(dir.path())
                .args(["-p", &port.to_string()])
                .args(["-c", "listen_addresses=127.0.0.1"])
                .args(["-c", "fsync=off"])
                .args(["-c", "synchronous_commit=off"])
                .args(["-c", "full_page_writes=off"])
                .args(["-c", "shared_buffers=32MB"])
                .args(["-c", "max_connections=50"])
                .stdin(Stdio::null())
                .stdout(logf.try_clone().unwrap())
                .stderr(logf)
                .spawn()
                .expect("run postgres");
            let deadline = Instant::now() + READY_TIMEOUT;
            let ready = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    last_log = std::fs::read_to_string(&log).unwrap_or_default();
                    if last_log.contains("could not bind")
                        || last_log.contains("Address already in use")
                    {
                        break false; // someone took the port: another one
                    }
                    panic!("postgres exited during start-up ({status}):\n{last_log}");
                }
                let ok = clean_command(bin_dir().join("pg_isready"))
                    .arg("-h")
                    .arg(dir.path())
                    .args(["-p", &port.to_string(), "-U", "postgres", "-q", "-t", "1"])
                    .status()
                    .expect("run pg_isready")
                    .success();
                if ok {
                    break true;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "postgres did not accept connections within {:?}:\n{}",
                        READY_TIMEOUT,
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(25));
            };
            if ready {
                let c = PgCluster {
                    dir,
                    port,
                    child,
                    password,
                    template: Mutex::new(false),
                };
                if std::env::var_os("ARK_TEST_PG_VERBOSE").is_some() {
                    eprintln!(
                        "pg: cluster on 127.0.0.1:{port} ({}) ready in {:?}",
                        c.dir.path().display(),
                        t0.elapsed()
                    );
                }
                return c;
            }
        }
        panic!("postgres found no free port in {PORT_ATTEMPTS} attempts:\n{last_log}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// `postgres://postgres@127.0.0.1:PORT/db` (never with the password).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// The password of [`PgCluster::start_with_password`].
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The directory of the unix socket (also the cluster's temp directory).
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    /// A client command (psql, pg_dump, ...) from [`bin_dir`], connected to
    /// this cluster through its unix socket as `postgres` (PGHOST, PGPORT,
    /// PGUSER set), run as the current user.
    pub fn client(&self, program: &str) -> Command {
        let mut c = clean_command(bin_dir().join(program));
        c.env("PGHOST", self.dir.path())
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", "postgres");
        c
    }

    fn psql_cmd(&self, db: &str) -> Command {
        let mut c = self.client("psql");
        c.args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db]);
        c
    }

    /// Runs `sql` (any number of statements, psql meta-commands allowed) in
    /// `db`; returns the unaligned, tuples-only output without its final
    /// newline. Panics with psql's stderr on failure.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let o = run_with_stdin(self.psql_cmd(db), sql.as_bytes());
        check(&format!("psql -d {db} <<< {sql:?}"), &o);
        let mut s = String::from_utf8(o.stdout).expect("psql output is UTF-8");
        if s.ends_with('\n') {
            s.pop();
        }
        s
    }

    pub fn create_db(&self, name: &str) {
        self.psql(
            "postgres",
            &format!("CREATE DATABASE {}", quote_ident(name)),
        );
    }

    pub fn drop_db(&self, name: &str) {
        self.psql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name)),
        );
    }

    /// Runs an SQL file with psql (ON_ERROR_STOP) in `db`.
    pub fn run_file(&self, db: &str, file: &Path) {
        let o = self
            .psql_cmd(db)
            .arg("-f")
            .arg(file)
            .stdin(Stdio::null())
            .output()
            .expect("run psql");
        check(&format!("psql -d {db} -f {}", file.display()), &o);
    }

    /// Creates `db` and loads the n8n sample (tests/fixtures/n8n-1.123-sample.sql).
    pub fn load_fixture(&self, db: &str) {
        self.create_db(db);
        self.run_file(db, &fixture_path(FIXTURE_SQL));
    }

    /// Loads the n8n sample once into the template database `n8n_template`
    /// of this cluster (later calls do nothing).
    pub fn load_fixture_template(&self) {
        let mut done = self.template.lock().unwrap();
        if !*done {
            self.load_fixture(FIXTURE_TEMPLATE_DB);
            self.psql(
                "postgres",
                &format!("ALTER DATABASE {FIXTURE_TEMPLATE_DB} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"),
            );
            *done = true;
        }
    }

    /// Creates `db` as a copy of the n8n sample, through the template
    /// (faster than [`PgCluster::load_fixture`] from the second database on).
    pub fn clone_fixture(&self, db: &str) {
        self.load_fixture_template();
        self.psql(
            "postgres",
            &format!(
                "CREATE DATABASE {} TEMPLATE {FIXTURE_TEMPLATE_DB}",
                quote_ident(db)
            ),
        );
    }

    /// Every ordinary table of `db` outside pg_catalog and
    /// information_schema as "schema.table", with its exact row count.
    pub fn table_counts(&self, db: &str) -> BTreeMap<String, u64> {
        self.per_table(db, "count(*)::text", "")
            .into_iter()
            .map(|(k, v)| {
                let n = v.parse().unwrap_or_else(|_| panic!("count of {k}: {v:?}"));
                (k, n)
            })
            .collect()
    }

    /// Every ordinary table's content checksum (md5 over the sorted md5s of
    /// its rows' text): equal for equal contents whatever the physical order.
    pub fn table_checksums(&self, db: &str) -> BTreeMap<String, String> {
        self.per_table(
            db,
            "md5(coalesce(string_agg(md5(ROW(t.*)::text), '''' ORDER BY md5(ROW(t.*)::text)), ''''))",
            " t",
        )
    }

    /// One value per ordinary table: `SELECT <expr> FROM schema.table<alias>`
    /// (`expr` is inside a format() literal: quotes doubled).
    fn per_table(&self, db: &str, expr: &str, alias: &str) -> BTreeMap<String, String> {
        let sql = format!(
            "SELECT format('SELECT %L, {expr} FROM %I.%I{alias}', n.nspname || '.' || c.relname, n.nspname, c.relname)
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind = 'r'
                AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                AND n.nspname NOT LIKE 'pg\\_toast%'
                AND n.nspname NOT LIKE 'pg\\_temp\\_%'
              ORDER BY 1
            \\gexec"
        );
        let mut c = self.psql_cmd(db);
        c.args(["-F", "\t"]);
        let o = run_with_stdin(c, sql.as_bytes());
        check(&format!("per-table query in {db}"), &o);
        String::from_utf8(o.stdout)
            .expect("psql output is UTF-8")
            .lines()
            .map(|l| {
                let (k, v) = l
                    .rsplit_once('\t')
                    .unwrap_or_else(|| panic!("unexpected line {l:?}"));
                (k.to_string(), v.to_string())
            })
            .collect()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // Immediate shutdown (pg_ctl stop -m immediate): the data is thrown
        // away anyway, and open client connections must not hold us up.
        let pid = self.child.id() as libc::pid_t;
        if let Ok(None) = self.child.try_wait() {
            unsafe {
                libc::kill(pid, libc::SIGQUIT);
            }
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                match self.child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        let _ = self.child.kill();
                        let _ = self.child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }
        // TempDir removes the directory.
    }
}

/// A server binary from [`bin_dir`] run as the `postgres` OS user when we are
/// root, in `cwd` (which that user can enter), without libpq environment.
fn server_command(cwd: &Path, program: &str) -> Command {
    let mut c = clean_command(bin_dir().join(program));
    c.current_dir(cwd).env("LC_ALL", "C");
    if is_root() {
        let (uid, gid) = postgres_ids();
        c.uid(uid).gid(gid);
        c.env("HOME", cwd)
            .env("USER", "postgres")
            .env("LOGNAME", "postgres");
    }
    c
}

/// Runs `cmd` with `input` on its standard input; collects its output.
pub fn run_with_stdin(mut cmd: Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {:?}: {e}", cmd.get_program()));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // A writer thread: a large input and a large output must not deadlock.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let o = child.wait_with_output().expect("wait for child");
    let _ = writer.join();
    o
}
