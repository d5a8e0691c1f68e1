//! The verification policy from the command line: `verify policy show`,
//! `verify policy set --rule LEVEL:SCHEDULE[:N] ...`, `verify --due` (every
//! verification the policy asks for now: for cron or the service), and the
//! verifications a completed backup triggers (`backup` calls [`after_backup`]).
//!
//! A verification that fails (a check did not hold) or cannot run is logged
//! at warn level naming the backup, the level and the first failed check
//! (the notifier of the service issue will take it from there); its event
//! is recorded by [`crate::verify::verify_backup`].
use super::catalog::{catalog_err, fmt_time, open_catalog, TextTable};
use super::{print_json, who, Cli, CliError, CliResult};
use crate::catalog::Catalog;
use crate::sandbox::SandboxOptions;
use crate::store::{journal, Store};
use crate::verify::policy::{self, Due, Policy, RuleStatus};
use crate::verify::{verify_backup, Level, VerificationReport, VerifyOptions};
use serde::Serialize;
use store_format::event::{VerificationCheck, VerificationFailed};
use store_format::Event;

#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// The policy in force: each rule, the last verification of its level,
    /// and what it asks for next.
    Show,
    /// Replace the policy (recorded in the store's journal). Each rule is
    /// LEVEL:SCHEDULE[:N]: LEVEL exists, data or restore; SCHEDULE
    /// after_backup, every_n_backups:N, percent:P (of new backups, at random),
    /// daily, weekly (the newest backup, when the last verification of that
    /// level is older) or manual.
    Set(SetArgs),
}

#[derive(Debug, clap::Args)]
pub struct SetArgs {
    /// A rule (repeatable), e.g. --rule data:after_backup --rule restore:daily.
    #[arg(
        long = "rule",
        value_name = "LEVEL:SCHEDULE[:N]",
        required_unless_present = "defaults"
    )]
    pub rules: Vec<String>,
    /// Go back to the defaults: data after every backup, restore of the newest backup daily.
    #[arg(long, conflicts_with = "rules")]
    pub defaults: bool,
}

/// `verify policy ...`.
pub async fn run(cli: &Cli, cmd: &PolicyCommand) -> CliResult {
    match cmd {
        PolicyCommand::Show => show(cli).await,
        PolicyCommand::Set(a) => set(cli, a).await,
    }
}

#[derive(Serialize)]
struct PolicyView {
    #[serde(flatten)]
    policy: Policy,
    /// Each rule with its last run and what is next.
    status: Vec<RuleStatus>,
    /// Completed backups of the store so far (what every_n_backups counts).
    completed_backups: u64,
    now_ms: i64,
}

async fn show(cli: &Cli) -> CliResult {
    let catalog = open_catalog(cli).await?;
    let p = policy::policy_in_force(&catalog)
        .await
        .map_err(catalog_err)?;
    let h = policy::history(&catalog).await.map_err(catalog_err)?;
    catalog.close().await;
    let now = crate::store::now_ms();
    let view = PolicyView {
        status: policy::status(&p, &h, now),
        completed_backups: h.backups.len() as u64,
        policy: p,
        now_ms: now,
    };
    if cli.json {
        print_json(&view);
        return Ok(());
    }
    match (view.policy.source, view.policy.set_ms) {
        ("default", _) => println!("verification policy: the defaults (never set)"),
        (_, at) => println!(
            "verification policy: set {} UTC{}",
            fmt_time(at),
            view.policy
                .set_by
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| format!(" by {s}"))
                .unwrap_or_default()
        ),
    }
    let mut t = TextTable::new(&["RULE", "LAST VERIFICATION OF THE LEVEL", "NEXT"]);
    for s in &view.status {
        t.row(vec![
            s.rule.clone(),
            match &s.last_run {
                Some(r) => format!(
                    "{} UTC, {} ({})",
                    fmt_time(Some(r.time_ms)),
                    r.result,
                    r.backup_id
                ),
                None => "never".into(),
            },
            s.next.clone(),
        ]);
    }
    t.print(2);
    Ok(())
}

async fn set(cli: &Cli, a: &SetArgs) -> CliResult {
    // Everything is checked before the store is touched.
    let rules = if a.defaults {
        policy::default_rules()
    } else {
        a.rules
            .iter()
            .map(|r| policy::parse_rule(r))
            .collect::<Result<Vec<_>, _>>()
            .map_err(CliError::Usage)?
    };
    policy::check_rules(&rules).map_err(CliError::Usage)?;
    let store = cli.open_store().await?;
    let ev = policy::set_policy(&store, rules, &who())
        .await
        .map_err(|e| match e {
            policy::SetError::Invalid(m) => CliError::Usage(m),
            policy::SetError::Store(s) => CliError::Store(s),
        })?;
    catch_up(cli, &store).await;
    if cli.json {
        print_json(&ev);
    } else {
        let rules: Vec<String> = ev.rules.iter().map(policy::describe_rule).collect();
        println!("verification policy set: {}", rules.join(", "));
    }
    Ok(())
}

async fn catch_up(cli: &Cli, store: &Store) {
    let r = match super::catalog::open_and_catch_up(cli, store).await {
        Ok((c, r)) => {
            c.close().await;
            r.map(|_| ()).map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = r {
        eprintln!("warning: the catalog could not catch up with the store ({e}); it does on the next command");
    }
}

/// One verification the policy asked for, and how it ended.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyRun {
    pub backup_id: String,
    pub level: String,
    pub rule: String,
    pub reason: String,
    /// `passed`, `failed` (a check did not hold) or `error` (could not run).
    pub result: &'static str,
    pub verification_id: Option<String>,
    pub checks_run: u64,
    pub failures: Vec<VerificationCheck>,
    pub sandbox: Option<String>,
    pub duration_ms: u64,
    pub error: Option<String>,
}

impl PolicyRun {
    fn failed(&self) -> bool {
        self.result != "passed"
    }

    /// The first failed check or the error, for people.
    pub fn first_problem(&self) -> Option<String> {
        match (self.failures.first(), &self.error) {
            (Some(c), _) => Some(format!("first failed check: {}", policy::describe_check(c))),
            (None, Some(e)) => Some(format!("it could not run: {e}")),
            _ => None,
        }
    }

    fn line(&self) -> String {
        let head = format!(
            "verification {} of backup {} ({}, {})",
            self.level, self.backup_id, self.rule, self.reason
        );
        match self.result {
            "passed" => format!(
                "{head}: passed, {} checks in {:.1} s",
                self.checks_run,
                self.duration_ms as f64 / 1000.0
            ),
            "failed" => format!(
                "{head}: FAILED, {} of {} checks did not hold; {}",
                self.failures.len(),
                self.checks_run,
                self.first_problem().unwrap_or_default()
            ),
            _ => format!(
                "{head}: could not run: {}",
                self.error.as_deref().unwrap_or("")
            ),
        }
    }
}

fn level_of(s: &str) -> Level {
    s.parse().unwrap_or(Level::Data)
}

/// Runs one verification the policy asked for. Never fails: a verification
/// that cannot run is an outcome (recorded as `VerificationFailed`).
async fn run_one(
    store: &Store,
    catalog: &Catalog,
    due: &Due,
    sandbox: &SandboxOptions,
) -> PolicyRun {
    let mut out = PolicyRun {
        backup_id: due.backup_id.clone(),
        level: due.level.clone(),
        rule: due.rule.clone(),
        reason: due.reason.clone(),
        result: "error",
        verification_id: None,
        checks_run: 0,
        failures: Vec::new(),
        sandbox: None,
        duration_ms: 0,
        error: None,
    };
    let started = std::time::Instant::now();
    let chosen = match crate::restore::choose_backup(catalog, store, &due.backup_id).await {
        Ok(c) => c,
        Err(e) => {
            // No manifest to verify against: the verification could not run;
            // recorded like one that stopped.
            let message = format!("the backup's manifest cannot be read: {e}");
            let verification_id = crate::store::ingest::new_backup_id();
            let ev = VerificationFailed {
                verification_id: verification_id.clone(),
                backup_id: due.backup_id.clone(),
                level: due.level.clone(),
                stage: "manifest".into(),
                message: message.clone(),
                duration_ms: started.elapsed().as_millis() as u64,
                retryable: Some(false),
                trigger: Some(crate::ops::Trigger::Manual.as_str().into()),
            };
            let recorded = journal::append(store, Event::VerificationFailed(ev)).await;
            out.verification_id = Some(verification_id);
            out.error = Some(match recorded {
                Ok(_) => message,
                Err(re) => format!("{message} (and the event could not be recorded: {re})"),
            });
            out.duration_ms = started.elapsed().as_millis() as u64;
            notify(&out);
            return out;
        }
    };
    let opts = VerifyOptions::with_sandbox(level_of(&due.level), sandbox);
    match verify_backup(store, &chosen, &opts).await {
        Ok(r) => fill(&mut out, r),
        Err(e) => {
            out.error = Some(e.to_string());
            out.duration_ms = started.elapsed().as_millis() as u64;
        }
    }
    notify(&out);
    out
}

fn fill(out: &mut PolicyRun, r: VerificationReport) {
    out.result = if r.passed { "passed" } else { "failed" };
    out.verification_id = Some(r.verification_id);
    out.checks_run = r.checks_run;
    out.failures = r.failures;
    out.sandbox = r.sandbox;
    out.duration_ms = r.duration_ms;
}

/// The notification of a failed verification: until the service's notifier
/// exists, a warn line (on stderr) naming the backup, the level and the first
/// failed check or the error.
fn notify(run: &PolicyRun) {
    if !run.failed() {
        return;
    }
    tracing::warn!(
        target: "n8n_ark::notify",
        backup = %run.backup_id,
        level = %run.level,
        rule = %run.rule,
        "verification {} of backup {} {}: {}",
        run.level,
        run.backup_id,
        if run.result == "failed" { "failed" } else { "could not run" },
        run.first_problem().unwrap_or_default()
    );
}

/// Runs every verification in `due`, in order.
async fn run_all(
    store: &Store,
    catalog: &Catalog,
    due: &[Due],
    sandbox: &SandboxOptions,
    print: bool,
) -> Vec<PolicyRun> {
    let mut runs = Vec::with_capacity(due.len());
    for d in due {
        if print {
            println!(
                "verifying backup {} at level {} ({}: {})",
                d.backup_id, d.level, d.rule, d.reason
            );
        }
        let r = run_one(store, catalog, d, sandbox).await;
        if print {
            println!("{}", r.line());
        }
        runs.push(r);
    }
    runs
}

/// The error a command ends with when a verification it ran failed.
fn failure_error(prefix: &str, runs: &[PolicyRun]) -> Option<CliError> {
    let failed: Vec<&PolicyRun> = runs.iter().filter(|r| r.failed()).collect();
    let first = failed.first()?;
    Some(CliError::Failed(format!(
        "{prefix}{} of {} verification(s) did not pass; backup {}, level {}: {}",
        failed.len(),
        runs.len(),
        first.backup_id,
        first.level,
        first.first_problem().unwrap_or_default()
    )))
}

#[derive(Serialize)]
struct DueReport {
    due: Vec<Due>,
    verifications: Vec<PolicyRun>,
}

/// `verify --due`: runs what the policy's daily/weekly rules ask for now.
pub async fn run_due(cli: &Cli, sandbox: &SandboxOptions) -> CliResult {
    let (store, catalog) = super::restore::open_store_and_catalog(cli).await?;
    let p = policy::policy_in_force(&catalog)
        .await
        .map_err(catalog_err)?;
    let h = policy::history(&catalog).await.map_err(catalog_err)?;
    let due = policy::due_by_time(&p, &h, crate::store::now_ms());
    if due.is_empty() {
        catalog.close().await;
        if cli.json {
            print_json(&DueReport {
                due,
                verifications: vec![],
            });
        } else if h.newest_backup().is_none() {
            println!("nothing is due: the store holds no completed backup");
        } else {
            println!("nothing is due: every daily or weekly verification of the policy is recent (see `n8n-ark verify policy show`)");
        }
        return Ok(());
    }
    let runs = run_all(&store, &catalog, &due, sandbox, !cli.json).await;
    if let Err(e) = catalog.catch_up(&store).await {
        eprintln!("warning: the catalog could not catch up with the store: {e}");
    }
    catalog.close().await;
    let err = failure_error("", &runs);
    if cli.json {
        print_json(&DueReport {
            due,
            verifications: runs,
        });
    }
    match err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The verifications the policy asks for after backup `backup_id` completed
/// (its after_backup, every_n_backups and percent rules), run and printed
/// (text) or returned for the backup's JSON. Returns the runs and, when one
/// did not pass, the error the command ends with (the backup stays completed).
pub async fn after_backup(
    cli: &Cli,
    store: &Store,
    backup_id: &str,
    sandbox: &SandboxOptions,
) -> (Vec<PolicyRun>, Option<CliError>) {
    let catalog = match super::catalog::open_and_catch_up(cli, store).await {
        Ok((c, Ok(_))) => c,
        Ok((c, Err(e))) => {
            c.close().await;
            return skipped(e);
        }
        Err(e) => return skipped(e),
    };
    let planned = async {
        let p = policy::policy_in_force(&catalog).await?;
        let h = policy::history(&catalog).await?;
        Ok::<_, crate::catalog::CatalogError>(
            h.backup(backup_id)
                .map(|b| policy::due_after_backup(&p, b, policy::seed_from_env().as_deref())),
        )
    }
    .await;
    let due = match planned {
        Ok(Some(d)) => d,
        Ok(None) => {
            catalog.close().await;
            eprintln!("warning: backup {backup_id} is not in the catalog: the verification policy was not applied to it (run `n8n-ark verify --due` or `n8n-ark verify {backup_id}`)");
            return (vec![], None);
        }
        Err(e) => {
            catalog.close().await;
            return skipped(e);
        }
    };
    let runs = run_all(store, &catalog, &due, sandbox, !cli.json).await;
    if !runs.is_empty() {
        if let Err(e) = catalog.catch_up(store).await {
            eprintln!("warning: the catalog could not catch up with the store: {e}");
        }
    }
    catalog.close().await;
    let err = failure_error(
        &format!("backup {backup_id} completed, but its verification failed: "),
        &runs,
    );
    (runs, err)
}

fn skipped(e: impl std::fmt::Display) -> (Vec<PolicyRun>, Option<CliError>) {
    eprintln!(
        "warning: the verification policy could not be read from the catalog ({e}); \
         no verification ran after this backup (run `n8n-ark verify --due` later)"
    );
    (vec![], None)
}
