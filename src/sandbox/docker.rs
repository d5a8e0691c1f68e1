//! The Docker sandbox: a container of a PostgreSQL image through the Docker
//! engine (bollard), named `n8n_postgres_<purpose>_<8 hex>`, labelled
//! `n8n-ark.sandbox=1` (with its purpose, owner pid and start time, and for
//! browse sandboxes its key and expiry), network `none`, memory and CPU
//! limits from the spec. Inside, as the `postgres` user, `initdb` into
//! /tmp/n8n-ark-data and `postgres` on a unix socket in /tmp only
//! (`listen_addresses=''`); the dump is streamed into `pg_restore` and
//! queries run through `docker exec` (no published ports).
//!
//! The image: the spec's, else `ARK_SANDBOX_IMAGE`, else (callers that know
//! it) the image of the running n8n postgres container
//! ([`image_of_container`]). Any image with the PostgreSQL binaries in PATH
//! or in /usr/lib/postgresql/<major>/bin, `sh` and a `postgres` user works:
//! the official `postgres:<major>` images and the test image built by
//! tests/docker/build-pg-image.sh. Images are never pulled.
use super::{
    check_database, json_query, loading_sql, parse_rows, pg_restore_args, rename_sql, suffix,
    tool_error, truncate, Owner, Purpose, Registry, Remover, Result, Sandbox, SandboxError,
    SandboxInfo, SandboxKind, SandboxSpec, LABEL_EXPIRES, LABEL_KEY, LABEL_LEASE, LABEL_OWNER_PID,
    LABEL_OWNER_START, LABEL_PURPOSE, LABEL_SANDBOX, QUERY_OPTIONS,
};
use async_trait::async_trait;
use bollard::Docker;
use futures::StreamExt;
use std::collections::HashMap;
use std::pin::Pin;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

const DATA: &str = "/tmp/n8n-ark-data";
/// Inside the container: the last extension of a browse sandbox's expiry
/// (labels cannot change after creation).
const EXPIRES_FILE: &str = "/tmp/n8n-ark-expires";
const LABEL_MAJOR: &str = "n8n-ark.major";
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The Docker engine, if it answers within a few seconds.
pub async fn connect() -> Result<Docker> {
    let d = crate::docker_exec::connect()
        .map_err(SandboxError::Unavailable)?
        .with_timeout(Duration::from_secs(600));
    match tokio::time::timeout(Duration::from_secs(3), d.ping()).await {
        Ok(Ok(_)) => Ok(d),
        Ok(Err(e)) => Err(SandboxError::Unavailable(format!(
            "the Docker engine does not answer: {e}"
        ))),
        Err(_) => Err(SandboxError::Unavailable(
            "the Docker engine does not answer (3 s)".into(),
        )),
    }
}

fn docker_err(what: &str, e: bollard::errors::Error) -> SandboxError {
    SandboxError::Failed(format!("{what}: {e}"))
}

fn is_status(e: &bollard::errors::Error, code: u16) -> bool {
    matches!(e, bollard::errors::Error::DockerResponseServerError { status_code, .. } if *status_code == code)
}

/// The image of a (running) container, e.g. the n8n postgres container, so
/// that the sandbox's PostgreSQL matches it.
pub async fn image_of_container(container: &str) -> Result<String> {
    let d = connect().await?;
    let info = d.inspect_container(container, None).await.map_err(|e| {
        if is_status(&e, 404) {
            SandboxError::Unavailable(format!(
                "there is no container {container:?} to take the sandbox image from"
            ))
        } else {
            docker_err(&format!("inspecting the container {container:?}"), e)
        }
    })?;
    info.config
        .and_then(|c| c.image)
        .or(info.image)
        .ok_or_else(|| {
            SandboxError::Unavailable(format!("the container {container:?} names no image"))
        })
}

/// The sandbox's image: the spec's, else `ARK_SANDBOX_IMAGE`, else the image
/// of the running n8n postgres container (`spec.image_from_container`), so
/// that the sandbox runs the server's own version.
async fn image_of(spec: &SandboxSpec) -> Result<Option<String>> {
    let given = spec
        .image
        .clone()
        .or_else(|| std::env::var("ARK_SANDBOX_IMAGE").ok())
        .filter(|s| !s.trim().is_empty());
    if given.is_some() {
        return Ok(given);
    }
    match &spec.image_from_container {
        Some(c) => image_of_container(c).await.map(Some),
        None => Ok(None),
    }
}

/// Whether a docker sandbox can be made for `spec` (an engine answers and
/// the image is on this machine); the image, or why not.
pub async fn usable_image(spec: &SandboxSpec) -> std::result::Result<String, String> {
    let d = connect().await.map_err(|e| e.to_string())?;
    let image = image_of(spec).await.map_err(|e| e.to_string())?.ok_or_else(|| {
        "no sandbox image is configured (--sandbox-image, ARK_SANDBOX_IMAGE, or the n8n postgres \
         container in ARK_PG_CONTAINER or the config file's [postgres] container)"
            .to_string()
    })?;
    check_image(&d, &image).await.map_err(|e| e.to_string())?;
    Ok(image)
}

async fn check_image(d: &Docker, image: &str) -> Result<()> {
    match d.inspect_image(image).await {
        Ok(_) => Ok(()),
        Err(e) if is_status(&e, 404) => Err(SandboxError::Unavailable(format!(
            "the sandbox image {image} is not on this machine (docker pull {image}, or choose another with --sandbox-image)"
        ))),
        Err(e) => Err(docker_err(&format!("inspecting the image {image}"), e)),
    }
}

/// A temporary PostgreSQL in a container.
pub struct DockerSandbox {
    docker: Docker,
    name: String,
    image: String,
    version: String,
    registration: Option<(Registry, u64)>,
    keep: bool,
    torn_down: bool,
}

impl std::fmt::Debug for DockerSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// What an exec printed and how it ended.
struct ExecRun {
    code: i64,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl DockerSandbox {
    /// The container's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) async fn create(
        spec: &SandboxSpec,
        owner: Owner,
        keep: bool,
        live: &Registry,
    ) -> Result<DockerSandbox> {
        let docker = connect().await?;
        let image = image_of(spec).await?.ok_or_else(|| {
            SandboxError::Unavailable(
                "the docker sandbox needs an image: pass --sandbox-image or set ARK_SANDBOX_IMAGE, \
                 or name the n8n postgres container in ARK_PG_CONTAINER or the config file's \
                 [postgres] container (its image is used), \
                 or use --sandbox local"
                    .into(),
            )
        })?;
        check_image(&docker, &image).await?;
        let name = format!("n8n_postgres_{}_{}", spec.purpose.as_str(), suffix());
        let mut labels = HashMap::from([
            (LABEL_SANDBOX.to_string(), "1".to_string()),
            (LABEL_PURPOSE.to_string(), owner.purpose.clone()),
            (LABEL_OWNER_PID.to_string(), owner.owner_pid.to_string()),
            (LABEL_MAJOR.to_string(), spec.major.to_string()),
        ]);
        if let Some(s) = owner.owner_start {
            labels.insert(LABEL_OWNER_START.into(), s.to_string());
        }
        if let Some(e) = owner.expires {
            labels.insert(LABEL_EXPIRES.into(), e.to_string());
        }
        if let Some(k) = &owner.key {
            labels.insert(LABEL_KEY.into(), k.clone());
        }
        if let Some(l) = &owner.lease {
            labels.insert(LABEL_LEASE.into(), l.clone());
        }
        // A stack as deep as the documents a dump may hold (see SANDBOX_STACK_MIB).
        let stack = (super::SANDBOX_STACK_MIB << 20) as i64;
        let depth_kb = super::max_stack_depth_kb(stack as u64).unwrap_or(2048);
        let script = format!(
            "set -e\n\
             if ! initdb -D {DATA} -U postgres -A trust -E UTF8 --locale=C -N >/tmp/n8n-ark-initdb.log 2>&1; then cat /tmp/n8n-ark-initdb.log >&2; exit 1; fi\n\
             exec postgres -D {DATA} -k /tmp -c listen_addresses= -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c TimeZone=UTC -c max_connections=20 -c max_stack_depth={depth_kb}kB\n"
        );
        let body = bollard::models::ContainerCreateBody {
            image: Some(image.clone()),
            entrypoint: Some(vec!["sh".into(), "-c".into(), script]),
            cmd: Some(vec![]),
            user: Some("postgres".into()),
            env: Some(vec![
                format!(
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/postgresql/{}/bin",
                    spec.major
                ),
                "LANG=C".into(),
                format!("PGDATA={DATA}"),
            ]),
            labels: Some(labels),
            network_disabled: Some(true),
            host_config: Some(bollard::models::HostConfig {
                network_mode: Some("none".into()),
                memory: spec.memory_bytes,
                nano_cpus: spec.cpus.map(|c| (c * 1e9) as i64),
                ulimits: Some(vec![bollard::models::ResourcesUlimits {
                    name: Some("stack".into()),
                    soft: Some(stack),
                    hard: Some(stack),
                }]),
                auto_remove: Some(false),
                ..Default::default()
            }),
            ..Default::default()
        };
        // From here on the container is ours to remove, whatever happens.
        let mut sb = DockerSandbox {
            docker,
            name: name.clone(),
            image,
            version: String::new(),
            registration: Some((
                live.clone(),
                live.register(Remover::Container(name.clone())),
            )),
            keep: false,
            torn_down: false,
        };
        let opts = bollard::query_parameters::CreateContainerOptionsBuilder::default()
            .name(&name)
            .build();
        sb.docker
            .create_container(Some(opts), body)
            .await
            .map_err(|e| docker_err(&format!("creating the sandbox container {name}"), e))?;
        sb.docker
            .start_container(&name, None)
            .await
            .map_err(|e| docker_err(&format!("starting the sandbox container {name}"), e))?;
        sb.wait_ready().await?;
        let v = sb
            .exec(vec!["postgres".into(), "--version".into()], vec![], None)
            .await?;
        let text = String::from_utf8_lossy(&v.stdout).to_string();
        sb.version = text
            .split("(PostgreSQL)")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or("?")
            .to_string();
        let major: Option<u32> = sb.version.split('.').next().and_then(|m| m.parse().ok());
        if major != Some(spec.major) {
            return Err(SandboxError::Unavailable(format!(
                "the sandbox image {} runs PostgreSQL {}, the dump needs {} (choose a postgres:{} image with --sandbox-image)",
                sb.image, sb.version, spec.major, spec.major
            )));
        }
        if keep {
            if let Some((r, id)) = sb.registration.take() {
                r.unregister(id);
            }
            sb.keep = true;
        }
        Ok(sb)
    }

    async fn wait_ready(&self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let info = self
                .docker
                .inspect_container(&self.name, None)
                .await
                .map_err(|e| docker_err(&format!("inspecting {}", self.name), e))?;
            let running = info.state.as_ref().and_then(|s| s.running).unwrap_or(false);
            if !running {
                let code = info.state.and_then(|s| s.exit_code).unwrap_or(-1);
                let logs = self.logs().await;
                return Err(SandboxError::Failed(format!(
                    "the sandbox container {} ({}) stopped during start-up (exit status {code}): {}",
                    self.name,
                    self.image,
                    truncate(&logs, 600)
                )));
            }
            let r = self
                .exec(
                    [
                        "pg_isready",
                        "-h",
                        "/tmp",
                        "-U",
                        "postgres",
                        "-q",
                        "-t",
                        "1",
                    ]
                    .map(String::from)
                    .to_vec(),
                    vec![],
                    None,
                )
                .await?;
            if r.code == 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(SandboxError::Failed(format!(
                    "the sandbox container {} did not accept connections within {}s: {}",
                    self.name,
                    READY_TIMEOUT.as_secs(),
                    truncate(&self.logs().await, 600)
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn logs(&self) -> String {
        let opts = bollard::query_parameters::LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail("20")
            .build();
        let mut s = self.docker.logs(&self.name, Some(opts));
        let mut out = String::new();
        while let Some(Ok(item)) = s.next().await {
            out.push_str(&String::from_utf8_lossy(&item.into_bytes()));
        }
        out.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" / ")
    }

    /// Runs `cmd` in the container; with `input`, streams it to the
    /// command's standard input.
    async fn exec(
        &self,
        cmd: Vec<String>,
        env: Vec<String>,
        input: Option<Pin<Box<dyn AsyncRead + Send>>>,
    ) -> Result<ExecRun> {
        use bollard::container::LogOutput;
        let tool = cmd.first().cloned().unwrap_or_default();
        let what = format!("docker exec {tool} in {}", self.name);
        let crate::docker_exec::Attached {
            id,
            mut output,
            input: mut stdin,
        } = crate::docker_exec::start(&self.docker, &self.name, cmd, env, input.is_some())
            .await
            .map_err(|e| SandboxError::Failed(format!("{tool}: {}", e.message)))?;
        let w = what.clone();
        let mut reading = tokio::spawn(async move {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            while let Some(item) = output.next().await {
                match item {
                    Ok(LogOutput::StdOut { message }) => out.extend_from_slice(&message),
                    Ok(LogOutput::StdErr { message }) => {
                        if err.len() < 64 * 1024 {
                            err.extend_from_slice(&message)
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        err.extend_from_slice(format!("{w}: {e}").as_bytes());
                        break;
                    }
                }
            }
            (out, err)
        });
        let mut feed_error = None;
        let outputs = match input {
            None => {
                drop(stdin);
                reading.await
            }
            Some(mut dump) => {
                // Docker keeps the exec's standard input open after the
                // command exits, so its output ending is what says it
                // stopped reading: then the feeding stops.
                let feeding = async {
                    let mut buf = vec![0u8; 256 * 1024];
                    loop {
                        let n = match dump.read(&mut buf).await {
                            Ok(0) => break,
                            Ok(n) => n,
                            Err(e) => return Err(e.to_string()),
                        };
                        if stdin.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = stdin.shutdown().await;
                    Ok(())
                };
                tokio::select! {
                    fed = feeding => {
                        feed_error = fed.err();
                        reading.await
                    }
                    outputs = &mut reading => outputs,
                }
            }
        };
        let (stdout, stderr) = outputs.unwrap_or_default();
        if let Some(e) = feed_error {
            return Err(SandboxError::Failed(format!("reading the dump: {e}")));
        }
        let mut code = -1;
        for _ in 0..400 {
            let info = self
                .docker
                .inspect_exec(&id)
                .await
                .map_err(|e| docker_err(&what, e))?;
            if info.running != Some(true) {
                code = info.exit_code.unwrap_or(-1);
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Ok(ExecRun {
            code,
            stdout,
            stderr,
        })
    }

    fn psql(database: &str, sql: String) -> Vec<String> {
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
            "-d",
            database,
            "-c",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(std::iter::once(sql))
        .collect()
    }

    async fn set_expiry(&self, expires: u64) -> Result<()> {
        let r = self
            .exec(
                vec![
                    "sh".into(),
                    "-c".into(),
                    format!("echo {expires} > {EXPIRES_FILE}"),
                ],
                vec![],
                None,
            )
            .await?;
        if r.code != 0 {
            return Err(SandboxError::Failed(format!(
                "extending the idle time of {}: {}",
                self.name,
                tool_error("sh", r.code, &r.stderr)
            )));
        }
        Ok(())
    }

    async fn admin(&self, statements: &[String]) -> Result<()> {
        let mut cmd = Self::psql("postgres", String::new());
        cmd.pop();
        cmd.pop();
        for s in statements {
            cmd.push("-c".into());
            cmd.push(s.clone());
        }
        let r = self.exec(cmd, vec![], None).await?;
        if r.code != 0 {
            return Err(SandboxError::Failed(format!(
                "in the sandbox {}: {}",
                self.name,
                tool_error("psql", r.code, &r.stderr)
            )));
        }
        Ok(())
    }
}

#[async_trait]
impl Sandbox for DockerSandbox {
    fn describe(&self) -> String {
        format!(
            "docker:{} ({}, PostgreSQL {})",
            self.name, self.image, self.version
        )
    }

    fn kind(&self) -> SandboxKind {
        SandboxKind::Docker
    }

    async fn restore_dump(
        &self,
        database: &str,
        dump: Pin<Box<dyn AsyncRead + Send>>,
    ) -> Result<()> {
        check_database(database)?;
        let (loading, sql) = loading_sql(database);
        self.admin(&sql).await?;
        let cmd: Vec<String> = ["pg_restore", "-h", "/tmp", "-U", "postgres"]
            .iter()
            .map(|s| s.to_string())
            .chain(pg_restore_args(&loading))
            .collect();
        let r = self.exec(cmd, vec![], Some(dump)).await?;
        if r.code != 0 {
            return Err(SandboxError::Failed(format!(
                "the dump of {database} does not load: {}",
                tool_error("pg_restore", r.code, &r.stderr)
            )));
        }
        self.admin(&[rename_sql(database)]).await
    }

    async fn query_json(&self, database: &str, sql: &str) -> Result<Vec<serde_json::Value>> {
        let r = self
            .exec(
                Self::psql(database, json_query(sql)),
                vec![format!("PGOPTIONS={QUERY_OPTIONS}")],
                None,
            )
            .await?;
        if r.code != 0 {
            return Err(SandboxError::Failed(format!(
                "query in {database}: {}",
                tool_error("psql", r.code, &r.stderr)
            )));
        }
        parse_rows(&r.stdout)
    }

    async fn teardown(mut self: Box<Self>) -> Result<()> {
        self.torn_down = true;
        if let Some((r, id)) = self.registration.take() {
            r.unregister(id);
        }
        remove_container(&self.docker, &self.name)
            .await
            .map_err(SandboxError::Teardown)
    }
}

impl Drop for DockerSandbox {
    fn drop(&mut self) {
        if self.torn_down || self.keep {
            return;
        }
        if let Some((r, id)) = self.registration.take() {
            r.unregister(id);
        }
        if let Err(e) = remove_container_blocking(&self.name) {
            tracing::warn!("{e}");
        }
    }
}

async fn remove_container(d: &Docker, name: &str) -> std::result::Result<(), String> {
    let opts = bollard::query_parameters::RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    match d.remove_container(name, Some(opts)).await {
        Ok(()) => Ok(()),
        Err(e) if is_status(&e, 404) => Ok(()),
        Err(e) => Err(format!(
            "the sandbox container {name} could not be removed: {e} (remove it with: docker rm -f {name})"
        )),
    }
}

/// Removes a container from any context (a thread with its own runtime:
/// usable in Drop and in the signal handler).
pub(crate) fn remove_container_blocking(name: &str) -> std::result::Result<(), String> {
    let name = name.to_string();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async {
            let d = Docker::connect_with_local_defaults()
                .map_err(|e| format!("the sandbox container {name} could not be removed: {e}"))?;
            remove_container(&d, &name).await
        })
    })
    .join()
    .unwrap_or_else(|_| Err("removing a sandbox container panicked".into()))
}

/// Our containers, with their owner.
async fn ours(d: &Docker) -> Result<Vec<(String, Option<bool>, Owner, Option<u32>)>> {
    let opts = bollard::query_parameters::ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&HashMap::from([(
            "label".to_string(),
            vec![format!("{LABEL_SANDBOX}=1")],
        )]))
        .build();
    let list = d
        .list_containers(Some(opts))
        .await
        .map_err(|e| docker_err("listing the sandbox containers", e))?;
    let mut out = Vec::new();
    for c in list {
        let Some(name) = c
            .names
            .as_ref()
            .and_then(|n| n.first())
            .map(|n| n.trim_start_matches('/').to_string())
        else {
            continue;
        };
        let labels = c.labels.clone().unwrap_or_default();
        let get = |k: &str| labels.get(k).cloned();
        // running, or stopped for good (exited/dead); a container being
        // created or started is neither.
        let state = c.state.as_ref().map(|s| s.to_string()).unwrap_or_default();
        let running = match state.as_str() {
            "running" => Some(true),
            "exited" | "dead" => Some(false),
            _ => None,
        };
        let owner = Owner {
            purpose: get(LABEL_PURPOSE).unwrap_or_else(|| "?".into()),
            owner_pid: get(LABEL_OWNER_PID)
                .and_then(|p| p.parse().ok())
                .unwrap_or(0),
            owner_start: get(LABEL_OWNER_START).and_then(|p| p.parse().ok()),
            key: get(LABEL_KEY),
            expires: get(LABEL_EXPIRES).and_then(|p| p.parse().ok()),
            lease: get(LABEL_LEASE),
        };
        let major = get(LABEL_MAJOR).and_then(|m| m.parse().ok());
        out.push((name, running, owner, major));
    }
    Ok(out)
}

/// A browse container's expiry: the file inside (extended), else its label.
async fn expiry(d: &Docker, name: &str, label: Option<u64>) -> Option<u64> {
    let sb = handle(d.clone(), name.to_string(), String::new(), String::new());
    // Shell built-ins only: the image may have no coreutils.
    let script = format!(
        "if [ -e {EXPIRES_FILE} ]; then read v < {EXPIRES_FILE} || true; echo \"${{v:-busy}}\"; fi"
    );
    let r = sb
        .exec(vec!["sh".into(), "-c".into(), script], vec![], None)
        .await
        .ok()
        .filter(|r| r.code == 0);
    let Some(r) = r else {
        // Cannot tell (the container is stopping?): its label decides.
        return label;
    };
    let text = String::from_utf8_lossy(&r.stdout).trim().to_string();
    if text.is_empty() {
        return label; // never extended
    }
    match text.parse::<u64>() {
        // The file, once written, overrides the label (which holds the
        // creation's grace period).
        Ok(v) => Some(v),
        // Being rewritten this very moment: in use.
        Err(_) => Some(super::now_secs() + 60),
    }
}

/// A handle on an existing container that is never removed on drop.
fn handle(docker: Docker, name: String, image: String, version: String) -> DockerSandbox {
    DockerSandbox {
        docker,
        name,
        image,
        version,
        registration: None,
        keep: true,
        torn_down: false,
    }
}

pub(crate) async fn remove_leftovers() -> Result<Vec<String>> {
    let d = connect().await?;
    let now = super::now_secs();
    let mut removed = Vec::new();
    for (name, running, mut owner, _) in ours(&d).await? {
        let browse = owner.purpose == Purpose::Browse.as_str();
        if browse && running == Some(true) {
            owner.expires = expiry(&d, &name, owner.expires).await;
        }
        let leftover = owner.is_leftover(now) || (browse && running == Some(false));
        if !leftover {
            continue;
        }
        match remove_container(&d, &name).await {
            Ok(()) => removed.push(format!("docker:{name}")),
            Err(e) => tracing::warn!("{e}"),
        }
    }
    Ok(removed)
}

pub(crate) async fn find_browse(
    key: &str,
    major: u32,
    expires: u64,
) -> Result<Option<DockerSandbox>> {
    let d = connect().await?;
    let now = super::now_secs();
    for (name, running, mut owner, m) in ours(&d).await? {
        if running != Some(true)
            || owner.purpose != Purpose::Browse.as_str()
            || owner.key.as_deref() != Some(key)
            || m != Some(major)
        {
            continue;
        }
        owner.expires = expiry(&d, &name, owner.expires).await;
        if owner.is_leftover(now) {
            continue;
        }
        let info = d
            .inspect_container(&name, None)
            .await
            .map_err(|e| docker_err(&format!("inspecting {name}"), e))?;
        let image = info.config.and_then(|c| c.image).unwrap_or_default();
        let mut sb = handle(d.clone(), name.clone(), image, String::new());
        if sb
            .set_expiry(expires.max(owner.expires.unwrap_or(0)))
            .await
            .is_err()
        {
            continue;
        }
        let v = sb
            .query_json("postgres", "SELECT current_setting('server_version') AS v")
            .await;
        if let Ok(rows) = v {
            sb.version = rows
                .first()
                .and_then(|r| r["v"].as_str())
                .and_then(|s| s.split_whitespace().next())
                .unwrap_or("?")
                .to_string();
            return Ok(Some(sb));
        }
    }
    Ok(None)
}

/// Moves a browse container's expiry (the file inside).
pub(crate) async fn touch(name: &str, expires: u64) -> Result<()> {
    let sb = handle(
        connect().await?,
        name.to_string(),
        String::new(),
        String::new(),
    );
    sb.set_expiry(expires).await
}

pub(crate) async fn browse_expiries() -> Result<Vec<u64>> {
    let d = connect().await?;
    let mut out = Vec::new();
    for (name, running, owner, _) in ours(&d).await? {
        if owner.purpose == Purpose::Browse.as_str() {
            if running == Some(false) {
                out.push(0);
            } else if let Some(e) = expiry(&d, &name, owner.expires).await {
                out.push(e);
            }
        }
    }
    Ok(out)
}

pub(crate) async fn list() -> Result<Vec<SandboxInfo>> {
    let d = connect().await?;
    let mut out = Vec::new();
    for (name, running, mut owner, _) in ours(&d).await? {
        if owner.purpose == Purpose::Browse.as_str() && running == Some(true) {
            owner.expires = expiry(&d, &name, owner.expires).await;
        }
        out.push(SandboxInfo {
            kind: SandboxKind::Docker,
            owner_alive: super::process_alive(owner.owner_pid, owner.owner_start),
            name,
            purpose: owner.purpose,
            owner_pid: owner.owner_pid,
            key: owner.key,
            expires: owner.expires,
        });
    }
    Ok(out)
}
