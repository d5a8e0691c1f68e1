//! Stopping n8n before a full restore and starting it after: the containers
//! of its docker compose project through the Docker engine, or the
//! operator's stop and start commands.
use super::*;

/// Environment variables a stop or start command does not inherit (secrets
/// of n8n-ark, not of the command).
pub(super) const SECRET_ENV: &[&str] = &[
    "ARK_PASSWORD",
    "ARK_N8N_DB_PASSWORD",
    "ARK_PG_SERVER_PASSWORD",
    "ARK_N8N_API_KEY",
    "PGPASSWORD",
];

/// A compose project name as docker compose normalises it: lower case,
/// only `a-z 0-9 _ -`, starting with a letter or digit.
pub fn normalise_project(name: &str) -> Option<String> {
    let s: String = name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    let s = s.trim_start_matches(['_', '-']).to_string();
    (!s.is_empty()).then_some(s)
}

/// The top-level `name:` of a compose file (a line without indentation).
pub fn compose_file_name(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let v = l.strip_prefix("name:")?;
        let v = v.split(" #").next().unwrap_or("").trim();
        let v = v.trim_matches(['"', '\'']);
        (!v.is_empty() && !v.contains("${")).then(|| v.to_string())
    })
}

/// The compose project of the backed-up compose file, and where it came from.
pub(super) async fn derive_project(
    store: &Store,
    backup: &ChosenBackup,
    root: &Path,
) -> Option<(String, String)> {
    let contents = backup.manifest.contents.as_ref()?;
    let compose = contents.config_files.iter().find(|f| {
        f.file_type == FileType::File
            && Path::new(&f.path)
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| COMPOSE_FILE_NAMES.contains(&n))
    })?;
    let dir = Path::new(&compose.path).parent()?;
    // COMPOSE_PROJECT_NAME in the .env beside it wins, then `name:`, then the directory.
    let env_path = dir.join(".env");
    if let Some(env) = contents
        .config_files
        .iter()
        .find(|f| Path::new(&f.path) == env_path && f.file_type == FileType::File)
    {
        if let Some(text) = recorded_text(store, backup, root, env).await {
            if let Some(n) = config_files::env_value(&text, "COMPOSE_PROJECT_NAME")
                .and_then(|v| normalise_project(&v))
            {
                return Some((n, format!("COMPOSE_PROJECT_NAME in {}", env.path)));
            }
        }
    }
    if let Some(text) = recorded_text(store, backup, root, compose).await {
        if let Some(n) = compose_file_name(&text).and_then(|v| normalise_project(&v)) {
            return Some((n, format!("the name: of {}", compose.path)));
        }
    }
    let n = normalise_project(dir.file_name()?.to_str()?)?;
    Some((n, format!("the directory of {}", compose.path)))
}

pub(super) fn docker() -> Result<bollard::Docker> {
    crate::docker_exec::connect().map_err(RestoreError::target)
}

/// Every container of a compose project (running or not).
pub(super) async fn compose_containers(
    project: &str,
) -> Result<Vec<bollard::models::ContainerSummary>> {
    let d = docker()?;
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("{COMPOSE_PROJECT_LABEL}={project}")],
    )]);
    let mut list = d
        .list_containers(Some(bollard::query_parameters::ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .map_err(|e| {
            RestoreError::target(format!(
                "cannot list the containers of compose project {project:?} through the Docker engine: {e}"
            ))
        })?;
    list.sort_by_key(container_name);
    Ok(list)
}

pub(super) fn container_name(c: &bollard::models::ContainerSummary) -> String {
    c.names
        .as_ref()
        .and_then(|n| n.first())
        .map(|n| n.trim_start_matches('/').to_string())
        .or_else(|| c.id.clone())
        .unwrap_or_default()
}

/// Whether a stop or start command can run, as far as can be told without
/// running it: its program (the first word, after variable assignments) is
/// found on the PATH or is an executable file; for `sh FILE` (or bash, dash),
/// the script exists. A command that starts with shell syntax is not judged.
/// `path`: the PATH it is looked up on ([`FullOptions::search_path`]).
pub fn check_command(cmd: &str, path: Option<&str>) -> std::result::Result<(), String> {
    let words: Vec<&str> = cmd.split_whitespace().collect();
    let mut i = 0;
    while i < words.len()
        && words[i].contains('=')
        && !words[i].starts_with('=')
        && !words[i].contains('/')
    {
        i += 1;
    }
    let Some(&program) = words.get(i) else {
        return Err("it is empty".into());
    };
    const SHELL: &[&str] = &[
        "if", "for", "while", "case", "{", "(", "!", "exec", "cd", ".", ":", "true", "false",
        "test", "[", "command", "eval", "set", "export", "echo", "printf", "kill", "trap", "wait",
    ];
    let plain = program
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./+@".contains(c));
    if !plain || SHELL.contains(&program) {
        return Ok(());
    }
    let executable = |p: &Path| -> bool {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    let found = if program.contains('/') {
        if !executable(Path::new(program)) {
            return Err(format!("{program} is not an executable file"));
        }
        true
    } else {
        path.map(|path| std::env::split_paths(path).any(|d| executable(&d.join(program))))
            .unwrap_or(false)
    };
    if !found {
        return Err(format!("{program} is not found on the PATH"));
    }
    if matches!(program.rsplit('/').next(), Some("sh" | "bash" | "dash")) {
        if let Some(script) = words.get(i + 1).filter(|w| !w.starts_with('-')) {
            let p = Path::new(script);
            if (p.is_absolute() || script.starts_with("./")) && !p.is_file() {
                return Err(format!("the script {script} does not exist"));
            }
        }
    }
    Ok(())
}

/// Runs a stop or start command with `sh -c`, bounded by [`COMMAND_TIMEOUT`].
pub(super) async fn run_command(what: &str, cmd: &str) -> Result<String> {
    let mut c = tokio::process::Command::new("sh");
    c.arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    for v in SECRET_ENV {
        c.env_remove(v);
    }
    let out = tokio::time::timeout(COMMAND_TIMEOUT, c.output())
        .await
        .map_err(|_| {
            RestoreError::target(format!(
                "the {what} command `{cmd}` did not finish within {} s",
                COMMAND_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| RestoreError::target(format!("cannot run the {what} command `{cmd}`: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let err: Vec<&str> = err
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(5)
            .collect();
        return Err(RestoreError::target(format!(
            "the {what} command `{cmd}` failed ({}){}",
            out.status,
            if err.is_empty() {
                String::new()
            } else {
                format!(": {}", err.join(" / "))
            }
        )));
    }
    Ok(format!("`{cmd}` ran ({})", out.status))
}

/// Stops what the plan says; returns the containers stopped (to start them
/// again). On an error, the ones already stopped are started again.
pub(super) async fn stop_n8n(
    prepared: &Prepared,
    opts: &FullOptions,
) -> Result<(Vec<Container>, String)> {
    match &opts.control {
        Control::NoStop => Ok((vec![], "nothing stopped (--no-stop)".into())),
        Control::Commands { stop, .. } => Ok((vec![], run_command("stop", stop).await?)),
        Control::Compose { .. } => {
            let to_stop: Vec<Container> = prepared
                .containers
                .iter()
                .filter(|c| c.stop)
                .cloned()
                .collect();
            if to_stop.is_empty() {
                return Ok((vec![], "no running container to stop".into()));
            }
            let d = docker()?;
            let mut stopped = Vec::new();
            for c in to_stop {
                // t: None keeps the container's own stop timeout (compose's stop_grace_period).
                match d
                    .stop_container(
                        &c.id,
                        None::<bollard::query_parameters::StopContainerOptions>,
                    )
                    .await
                {
                    Ok(())
                    | Err(bollard::errors::Error::DockerResponseServerError {
                        status_code: 304,
                        ..
                    }) => stopped.push(c),
                    Err(e) => {
                        let again = start_containers(&stopped).await;
                        return Err(RestoreError::target(format!(
                            "cannot stop container {}: {e}{}",
                            c.name,
                            match again {
                                Ok(_) if stopped.is_empty() => String::new(),
                                Ok(_) => " (the containers already stopped were started again)"
                                    .to_string(),
                                Err(e2) =>
                                    format!(" (and starting the ones already stopped failed: {e2})"),
                            }
                        )));
                    }
                }
            }
            let names: Vec<&str> = stopped.iter().map(|c| c.name.as_str()).collect();
            let detail = format!("stopped {}", names.join(", "));
            Ok((stopped, detail))
        }
    }
}

pub(super) async fn start_containers(containers: &[Container]) -> Result<String> {
    if containers.is_empty() {
        return Ok("no container to start".into());
    }
    let d = docker()?;
    let mut errors = Vec::new();
    let mut started = Vec::new();
    for c in containers.iter().rev() {
        match d
            .start_container(
                &c.id,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
        {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => started.push(c.name.as_str()),
            Err(e) => errors.push(format!("{}: {e}", c.name)),
        }
    }
    if !errors.is_empty() {
        return Err(RestoreError::target(format!(
            "cannot start container(s) {}",
            errors.join("; ")
        )));
    }
    started.reverse();
    Ok(format!("started {}", started.join(", ")))
}

pub(super) async fn start_n8n(opts: &FullOptions, stopped: &[Container]) -> Result<String> {
    match &opts.control {
        Control::NoStop => Ok("nothing started (--no-stop)".into()),
        Control::Commands { start, .. } => run_command("start", start).await,
        Control::Compose { .. } => start_containers(stopped).await,
    }
}
