//! `restore full`: the whole system back from one backup, as two
//! operations. [`plan`] checks the request and makes the plan (it changes
//! nothing; the plan of a confirmed restore that the checks refuse is
//! recorded as a `RestoreFailed` at stage `check`); [`execute`] carries a
//! confirmed plan out: a pinned safety backup of the current state, stop
//! n8n, databases, config files, start n8n, health and row counts, ending
//! with `RestorePerformed` or `RestoreFailed` (with the safety backup and
//! the command that goes back). See [`crate::restore::full`].
//!
//! Stop → restore → start is a critical section: a cancellation there
//! starts n8n again (as any failure after the stop does), then the restore
//! fails as interrupted.
use super::{chosen, Secret, Server};
use crate::ops::{catalog, Context, Environment, ErrorKind, OpError, OpResult, Reporter};
use crate::restore::database::RestoreTool;
use crate::restore::full::{
    self as engine, shell_quote, Control, FullOptions, FullReport, FullResult, Plan, Prepared,
};
use crate::restore::{ChosenBackup, Recorder, RestoreError, RestoreWhat};
use crate::source::config_files::ENCRYPTION_KEY_VAR;
use crate::source::postgres::{DumpRunner, PgTarget};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// How n8n is stopped before the restore and started after it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Stop {
    /// Stop and start nothing: n8n is not running on the target.
    pub no_stop: bool,
    /// Shell commands instead of Docker (both or neither).
    pub stop_command: Option<String>,
    pub start_command: Option<String>,
    /// The docker compose project (default: the backed-up compose file's).
    pub compose_project: Option<String>,
    /// Compose services to leave running besides the database's.
    pub keep_running: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Request {
    /// `latest`, `latest:KIND`, an id or a unique prefix of one.
    pub backup: String,
    /// Config files are written under this directory (`/` on the server).
    pub root: PathBuf,
    /// The operator confirmed the restore (`--yes`): its plan is the first
    /// step of a restore (a refusal is recorded) and may be executed.
    #[serde(default)]
    pub confirmed: bool,
    /// Restore even when the n8n encryption keys do not match.
    #[serde(default)]
    pub force: bool,
    /// The target's n8n database.
    #[serde(default)]
    pub n8n_db: Option<Server>,
    /// The server of the other databases (default: the n8n database's).
    #[serde(default)]
    pub pg_server: Option<Server>,
    /// pg_restore for the restore.
    pub tool: RestoreTool,
    /// pg_dump for the safety backup.
    pub dump: DumpRunner,
    #[serde(default)]
    pub stop: Stop,
    /// n8n's base URL: its `/healthz/readiness` is the health endpoint.
    #[serde(default)]
    pub n8n_url: Option<String>,
    /// The health endpoint itself (before `n8n_url`).
    #[serde(default)]
    pub health_url: Option<String>,
    /// How long to wait for health and row counts (default 300 s).
    #[serde(default)]
    pub health_timeout_secs: Option<u64>,
    /// Every database of a full_system backup, not only n8n's.
    #[serde(default)]
    pub all_databases: bool,
    /// Keep replaced files that differ as `FILE.ark-before-restore`.
    #[serde(default)]
    pub keep_before: bool,
    #[serde(default)]
    pub no_owner: bool,
    #[serde(default)]
    pub with_roles: bool,
    /// `N8N_ENCRYPTION_KEY` as n8n gets it from outside its compose project;
    /// default: the context's environment (whose PATH the stop and start
    /// commands are looked up on).
    #[serde(default)]
    pub encryption_key: Option<Secret>,
    /// What the command that puts the safety backup back says after
    /// `n8n-ark` (where the store, the config file and the data directory
    /// are: `--store …`).
    #[serde(default)]
    pub go_back_args: Vec<String>,
}

/// n8n's health endpoint from its base URL: `<base>/healthz/readiness`
/// (`/healthz` answers as soon as the process listens, before n8n's
/// database and API are up; the readiness endpoint only then).
pub fn health_of(base: &str) -> Result<String, String> {
    let mut u = url::Url::parse(base.trim()).map_err(|e| {
        format!("{base:?} is not a valid n8n URL: {e} (expected e.g. http://127.0.0.1:5678)")
    })?;
    let mut path = u.path().trim_end_matches('/').to_string();
    for suffix in ["/api/v1", "/api"] {
        if let Some(p) = path.strip_suffix(suffix) {
            path = p.to_string();
            break;
        }
    }
    u.set_path(&format!("{path}/healthz/readiness"));
    u.set_query(None);
    u.set_fragment(None);
    let _ = u.set_username("");
    let _ = u.set_password(None);
    Ok(u.to_string())
}

impl Request {
    /// The options of the restore, checked: what the request gets wrong by
    /// itself (before the store is opened). A plan writes nothing and needs
    /// no root yet; a confirmed restore does.
    pub fn options(&self, env: &Environment) -> OpResult<FullOptions> {
        let bad = |m: String| OpError::invalid(m);
        if !self.root.is_absolute() {
            return Err(bad(format!(
                "--root {} is not an absolute path",
                self.root.display()
            )));
        }
        match std::fs::metadata(&self.root) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(bad(format!(
                    "--root {} is not a directory",
                    self.root.display()
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !self.confirmed => {}
            Err(e) => return Err(bad(format!("--root {}: {e}", self.root.display()))),
        }
        let n8n_db = self
            .n8n_db
            .as_ref()
            .map(|s| s.target("--n8n-db"))
            .transpose()?;
        let mut pg_server = self
            .pg_server
            .as_ref()
            .map(|s| s.target("--pg-server"))
            .transpose()?;
        // A server without a password of its own that is n8n's server with
        // n8n's user gets the n8n database's password.
        if let (Some(t), Some(db)) = (pg_server.as_mut(), &n8n_db) {
            if t.password.is_none() && db.host == t.host && db.port == t.port && db.user == t.user {
                t.password = db.password.clone();
            }
        }
        let s = &self.stop;
        let control =
            if s.no_stop {
                Control::NoStop
            } else {
                match (&s.stop_command, &s.start_command) {
                    (Some(stop), Some(start)) => Control::Commands {
                        stop: stop.clone(),
                        start: start.clone(),
                    },
                    (Some(_), None) | (None, Some(_)) => return Err(bad(
                        "--stop-command and --start-command go together (or ARK_STOP_COMMAND and \
                         ARK_START_COMMAND, or stop_command and start_command in [restore])"
                            .into(),
                    )),
                    (None, None) => Control::Compose {
                        project: s.compose_project.clone(),
                        keep_running: s
                            .keep_running
                            .iter()
                            .filter(|s| !s.is_empty())
                            .cloned()
                            .collect(),
                    },
                }
            };
        if let Control::Compose {
            project: Some(p), ..
        } = &control
        {
            if engine::normalise_project(p).as_deref() != Some(p.as_str()) {
                return Err(bad(format!(
                    "--compose-project {p:?} is not a compose project name (lower case letters, digits, _ and -)"
                )));
            }
        }
        let health_url = match &self.health_url {
            Some(u) => Some(u.clone()),
            None => match &self.n8n_url {
                Some(base) => Some(health_of(base).map_err(bad)?),
                None => None,
            },
        };
        if let Some(u) = &health_url {
            let p = url::Url::parse(u)
                .map_err(|e| bad(format!("the health URL {u:?} is not valid: {e}")))?;
            if !matches!(p.scheme(), "http" | "https") {
                return Err(bad(format!(
                    "the health URL {u:?} is not an http:// or https:// URL"
                )));
            }
            if !p.username().is_empty() || p.password().is_some() {
                return Err(bad(
                    "the health URL holds a user name or password, which the plan and the journal would show: \
                     give n8n's /healthz/readiness without them"
                        .into(),
                ));
            }
        }
        if self.health_timeout_secs == Some(0) {
            return Err(bad("--health-timeout must be at least 1 second".into()));
        }
        let encryption_key = self
            .encryption_key
            .as_ref()
            .map(|k| k.expose().to_string())
            .or_else(|| env.get(ENCRYPTION_KEY_VAR).map(str::to_string))
            .filter(|k| !k.is_empty())
            .map(zeroize::Zeroizing::new);
        Ok(FullOptions {
            root: self.root.clone(),
            n8n_db,
            pg_server,
            dump: self.dump.clone(),
            tool: self.tool.clone(),
            control,
            health_url,
            health_timeout: self
                .health_timeout_secs
                .map(Duration::from_secs)
                .unwrap_or(engine::DEFAULT_HEALTH_TIMEOUT),
            all_databases: self.all_databases,
            keep_before: self.keep_before,
            force: self.force,
            no_owner: self.no_owner,
            with_roles: self.with_roles,
            encryption_key,
            search_path: env.get("PATH").map(str::to_string),
        })
    }
}

/// `postgres://user@host:port/db` without the password (a socket directory
/// percent-encoded), for the go-back command.
fn url_of(t: &PgTarget) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let host = if t.host.contains(':') && !t.host.starts_with('/') {
        format!("[{}]", t.host)
    } else {
        enc(&t.host)
    };
    let mut u = format!(
        "postgres://{}@{host}:{}/{}",
        enc(&t.user),
        t.port,
        enc(&t.database)
    );
    if let Some(m) = &t.sslmode {
        u.push_str(&format!("?sslmode={}", enc(m)));
    }
    u
}

/// The command that restores the safety backup `safety` onto the same
/// target: the same store and target settings, `--root /` (the safety
/// backup recorded the files at their real paths under the root).
fn go_back_command(prefix: &[String], opts: &FullOptions, plan: &Plan, safety: &str) -> String {
    let mut v: Vec<String> = vec!["n8n-ark".into()];
    v.extend(prefix.iter().cloned());
    let flag = |v: &mut Vec<String>, f: &str, val: String| {
        v.push(f.to_string());
        v.push(val);
    };
    v.extend(["restore", "full", safety, "--root", "/", "--yes"].map(String::from));
    if let Some(t) = &opts.n8n_db {
        flag(&mut v, "--n8n-db", url_of(t));
    }
    if let Some(t) = &opts.pg_server {
        flag(&mut v, "--pg-server", url_of(t));
    }
    match &opts.tool {
        RestoreTool::Docker {
            container,
            host,
            port,
        } => {
            flag(&mut v, "--pg-container", container.clone());
            flag(&mut v, "--pg-container-host", host.clone());
            flag(&mut v, "--pg-container-port", port.to_string());
        }
        RestoreTool::Local { pg_restore } => {
            flag(&mut v, "--pg-restore", pg_restore.display().to_string());
            if let DumpRunner::Local { pg_dump } = &opts.dump {
                flag(&mut v, "--pg-dump", pg_dump.display().to_string());
            }
        }
    }
    match &opts.control {
        Control::NoStop => v.push("--no-stop".into()),
        Control::Commands { stop, start } => {
            flag(&mut v, "--stop-command", stop.clone());
            flag(&mut v, "--start-command", start.clone());
        }
        Control::Compose { keep_running, .. } => {
            if let Some(p) = &plan.stop.project {
                flag(&mut v, "--compose-project", p.clone());
            }
            if !keep_running.is_empty() {
                flag(&mut v, "--keep-running", keep_running.join(","));
            }
        }
    }
    if let Some(u) = &plan.health.url {
        flag(&mut v, "--health-url", u.clone());
        flag(
            &mut v,
            "--health-timeout",
            plan.health.timeout_secs.to_string(),
        );
    }
    if opts.all_databases {
        v.push("--all-databases".into());
    }
    if opts.no_owner {
        v.push("--no-owner".into());
    }
    v.iter()
        .map(|s| shell_quote(s))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A plan, with what executing it needs. Its `report` is the plan as the
/// front end shows it (`result`: `planned` or `refused`).
pub struct Planned {
    pub report: FullReport,
    confirmed: bool,
    go_back_args: Vec<String>,
    backup: ChosenBackup,
    prepared: Prepared,
    opts: FullOptions,
    recorder: Recorder,
}

impl Planned {
    pub fn plan(&self) -> &Plan {
        &self.report.plan
    }

    /// The error a dry run ends with when the restore would be refused.
    pub fn refusal(&self) -> Option<OpError> {
        let refusals = &self.report.plan.refusals;
        (!refusals.is_empty()).then(|| {
            OpError::new(
                ErrorKind::Refused,
                format!(
                    "dry run: the restore would be refused: {}",
                    refusals.join("; ")
                ),
            )
        })
    }
}

fn planned_report(plan: Plan) -> FullReport {
    let result = if plan.refusals.is_empty() {
        FullResult::Planned
    } else {
        FullResult::Refused
    };
    FullReport::of_plan(None, plan, result)
}

/// Checks the request and makes the plan; changes nothing. When the
/// request is confirmed and the checks refuse it, the refusal is recorded
/// (`RestoreFailed`, stage `check`): a restore was asked for.
pub async fn plan(ctx: &Context, req: &Request, r: &dyn Reporter) -> OpResult<Planned> {
    let opts = req.options(&ctx.env)?;
    let backup = chosen(ctx, r, &req.backup).await?;
    let recorder = Recorder::new(
        &backup.backup_id,
        RestoreWhat::Full,
        engine::target_description(&opts),
    )
    .with_trigger(ctx.trigger);
    let prepared = match engine::plan(&ctx.store, &backup, &opts).await {
        Ok(p) => p,
        Err(e) => {
            let message = format!("restore full refused, nothing was changed: {e}");
            let mut unrecorded = None;
            if req.confirmed {
                unrecorded = recorder
                    .failed(&ctx.store, "check", &message, vec![], None)
                    .await;
                catalog::follow(ctx, r).await;
            }
            return Err(match (e, unrecorded) {
                (RestoreError::Invalid(m), _) => OpError::invalid(m),
                (e, u) => {
                    let e: OpError = e.into();
                    let message = match u {
                        Some(u) => format!("{message} ({u})"),
                        None => message,
                    };
                    OpError { message, ..e }
                }
            });
        }
    };
    if !req.confirmed {
        ctx.check_cancelled("while the plan was made: nothing was changed")?;
    }
    Ok(Planned {
        report: planned_report(prepared.plan.clone()),
        confirmed: req.confirmed,
        go_back_args: req.go_back_args.clone(),
        backup,
        prepared,
        opts,
        recorder,
    })
}

/// Carries a confirmed plan out and records its event. A restore that ran
/// is returned whatever its end (its report says how far it came, what it
/// changed and how to go back); [`failure`] is the error it ends with.
pub async fn execute(ctx: &Context, planned: Planned, r: &dyn Reporter) -> OpResult<FullReport> {
    if !planned.confirmed {
        return Err(OpError::invalid(
            "restore full replaces databases and files and stops n8n: read the plan above, then run the \
             same command with --yes (or --dry-run to only print the plan)",
        ));
    }
    let Planned {
        go_back_args,
        backup,
        prepared,
        opts,
        recorder,
        ..
    } = planned;
    let go_back = |safety: &str| go_back_command(&go_back_args, &opts, &prepared.plan, safety);
    let progress = |line: &str| r.stage(line);
    let report = engine::execute(
        &ctx.store,
        &backup,
        &prepared,
        &opts,
        &recorder,
        &go_back,
        &progress,
        &ctx.cancel,
    )
    .await;
    if let Some(u) = &report.unrecorded {
        r.warning(u.clone());
    }
    catalog::follow(ctx, r).await;
    Ok(report)
}

/// The error a restore ends with when it did not complete: refused by the
/// checks, interrupted (n8n was started again if it had been stopped), or
/// failed at a step.
pub fn failure(ctx: &Context, report: &FullReport) -> Option<OpError> {
    report.failed_stage.as_ref()?;
    let message = report.message.clone().unwrap_or_default();
    let kind = if ctx.cancel.is_cancelled() {
        ErrorKind::Interrupted
    } else if report.result == FullResult::Refused {
        ErrorKind::Refused
    } else {
        ErrorKind::Unavailable
    };
    let mut e = OpError::new(kind, message);
    if let Some(cmd) = &report.go_back {
        e = e.with_command(cmd.clone());
    }
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_urls() {
        assert_eq!(
            health_of("http://127.0.0.1:5678").unwrap(),
            "http://127.0.0.1:5678/healthz/readiness"
        );
        assert_eq!(
            health_of("https://u:p@n8n.example.org/api/v1/").unwrap(),
            "https://n8n.example.org/healthz/readiness"
        );
        assert!(health_of("not a url").is_err());
    }

    #[test]
    fn go_back_urls_carry_no_password() {
        let t = PgTarget::parse(
            "postgres://n8n:secret@%2Fvar%2Frun%2Fpostgresql:5432/n8n db?sslmode=disable",
            None,
        )
        .unwrap();
        let u = url_of(&t);
        assert!(!u.contains("secret"), "{u}");
        let back = PgTarget::parse(&u, None).unwrap();
        assert_eq!(
            (
                back.host.as_str(),
                back.port,
                back.user.as_str(),
                back.database.as_str()
            ),
            ("/var/run/postgresql", 5432, "n8n", "n8n db")
        );
        assert_eq!(back.sslmode.as_deref(), Some("disable"));
        assert!(back.password.is_none());
    }
}
