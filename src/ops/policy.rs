//! The verification policy: `show` it, `set` it, and run what it asks for —
//! after a backup completed ([`after_backup`], which `ops::backup` calls) or
//! now by its daily and weekly rules ([`run_due`], for cron or the
//! scheduler). `verify::policy` is the planner (what is due); this module
//! runs the verifications, records the ones that cannot start, and notifies.
//!
//! A verification that fails (a check did not hold) or cannot run is logged
//! at warn level naming the backup, the level and the first failed check
//! (the notifier of the service will take it from there); its event is
//! recorded by the verification itself (or here when it could not start).
use super::{catalog, verify, Context, ErrorKind, OpError, OpResult, Reporter};
use crate::catalog::Catalog;
use crate::sandbox::SandboxOptions;
use crate::store::journal;
use crate::verify::policy::{self, Due, Policy, RuleStatus};
use crate::verify::{Level, VerificationReport, VerifyOptions};
use serde::{Deserialize, Serialize};
use store_format::event::{VerificationCheck, VerificationFailed, VerificationPolicySet};
use store_format::Event;

/// The policy in force and where each rule stands.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyView {
    #[serde(flatten)]
    pub policy: Policy,
    /// Each rule with its last run and what is next.
    pub status: Vec<RuleStatus>,
    /// Completed backups of the store so far (what every_n_backups counts).
    pub completed_backups: u64,
    pub now_ms: i64,
}

/// `verify policy show`: the catalog caught up with the store first.
pub async fn show(ctx: &Context, r: &dyn Reporter) -> OpResult<PolicyView> {
    let catalog = catalog::caught_up(ctx, r).await?;
    let view = view(&catalog).await;
    catalog.close().await;
    view
}

/// The policy as `catalog` knows it (a front end that reads the catalog
/// while the store cannot be reached).
pub async fn view(catalog: &Catalog) -> OpResult<PolicyView> {
    let p = policy::policy_in_force(catalog).await?;
    let h = policy::history(catalog).await?;
    let now = crate::store::now_ms();
    Ok(PolicyView {
        status: policy::status(&p, &h, now),
        completed_backups: h.backups.len() as u64,
        policy: p,
        now_ms: now,
    })
}

/// `verify policy set`: the rules replace the policy in force.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SetRequest {
    /// `LEVEL:SCHEDULE[:N]` each (e.g. `data:after_backup`, `restore:daily`).
    pub rules: Vec<String>,
    /// The defaults instead (data after every backup, restore daily).
    pub defaults: bool,
    /// Who sets it (`user@host`), recorded in the event.
    pub set_by: String,
}

impl SetRequest {
    /// The rules, checked (a front end may call it before it opens the
    /// store: a wrong rule is then found first).
    pub fn rules(&self) -> OpResult<Vec<store_format::event::VerificationRule>> {
        let rules = if self.defaults {
            policy::default_rules()
        } else {
            self.rules
                .iter()
                .map(|x| policy::parse_rule(x))
                .collect::<Result<Vec<_>, _>>()
                .map_err(OpError::invalid)?
        };
        policy::check_rules(&rules).map_err(OpError::invalid)?;
        Ok(rules)
    }
}

/// Checks the rules (nothing is written when one is wrong), then records
/// `VerificationPolicySet`; the catalog follows.
pub async fn set(
    ctx: &Context,
    req: &SetRequest,
    r: &dyn Reporter,
) -> OpResult<VerificationPolicySet> {
    let rules = req.rules()?;
    ctx.check_cancelled("before the policy was set; nothing was changed")?;
    let ev = policy::set_policy(&ctx.store, rules, &req.set_by)
        .await
        .map_err(|e| match e {
            policy::SetError::Invalid(m) => OpError::invalid(m),
            policy::SetError::Store(s) => s.into(),
        })?;
    catalog::follow(ctx, r).await;
    Ok(ev)
}

/// How a verification the policy asked for ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunResult {
    /// Every check held.
    Passed,
    /// A check did not hold.
    Failed,
    /// It could not run (it proves nothing either way).
    Error,
}

/// One verification the policy asked for, and how it ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicyRun {
    pub backup_id: String,
    pub level: String,
    pub rule: String,
    pub reason: String,
    pub result: RunResult,
    pub verification_id: Option<String>,
    pub checks_run: u64,
    pub failures: Vec<VerificationCheck>,
    pub sandbox: Option<String>,
    pub duration_ms: u64,
    pub error: Option<String>,
}

impl PolicyRun {
    pub fn failed(&self) -> bool {
        self.result != RunResult::Passed
    }

    /// The first failed check or the error, for people.
    pub fn first_problem(&self) -> Option<String> {
        match (self.failures.first(), &self.error) {
            (Some(c), _) => Some(format!("first failed check: {}", policy::describe_check(c))),
            (None, Some(e)) => Some(format!("it could not run: {e}")),
            _ => None,
        }
    }

    /// One line for people.
    pub fn line(&self) -> String {
        let head = format!(
            "verification {} of backup {} ({}, {})",
            self.level, self.backup_id, self.rule, self.reason
        );
        match self.result {
            RunResult::Passed => format!(
                "{head}: passed, {} checks in {:.1} s",
                self.checks_run,
                self.duration_ms as f64 / 1000.0
            ),
            RunResult::Failed => format!(
                "{head}: FAILED, {} of {} checks did not hold; {}",
                self.failures.len(),
                self.checks_run,
                self.first_problem().unwrap_or_default()
            ),
            RunResult::Error => format!(
                "{head}: could not run: {}",
                self.error.as_deref().unwrap_or("")
            ),
        }
    }

    fn fill(&mut self, r: VerificationReport) {
        self.result = if r.passed {
            RunResult::Passed
        } else {
            RunResult::Failed
        };
        self.verification_id = Some(r.verification_id);
        self.checks_run = r.checks_run;
        self.failures = r.failures;
        self.sandbox = r.sandbox;
        self.duration_ms = r.duration_ms;
    }
}

/// The names of the [`crate::ops::Progress::Partial`] reports of policy
/// runs: a [`Due`] as it begins, a [`PolicyRun`] as it ends.
pub const PARTIAL_DUE: &str = "verification_due";
pub const PARTIAL_RUN: &str = "verification";

fn level_of(s: &str) -> Level {
    s.parse().unwrap_or(Level::Data)
}

/// Runs one verification the policy asked for. Never fails: a verification
/// that cannot run is an outcome (recorded as `VerificationFailed`).
async fn run_one(
    ctx: &Context,
    catalog: &Catalog,
    due: &Due,
    sandbox: &SandboxOptions,
    r: &dyn Reporter,
) -> PolicyRun {
    let mut out = PolicyRun {
        backup_id: due.backup_id.clone(),
        level: due.level.clone(),
        rule: due.rule.clone(),
        reason: due.reason.clone(),
        result: RunResult::Error,
        verification_id: None,
        checks_run: 0,
        failures: Vec::new(),
        sandbox: None,
        duration_ms: 0,
        error: None,
    };
    let started = std::time::Instant::now();
    let chosen = match crate::restore::choose_backup(catalog, &ctx.store, &due.backup_id).await {
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
                trigger: Some(ctx.trigger.as_str().into()),
            };
            let recorded = journal::append(&ctx.store, Event::VerificationFailed(ev)).await;
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
    let opts = VerifyOptions {
        level: level_of(&due.level),
        sandbox: sandbox.clone(),
        cancel: ctx.cancel.clone(),
        sandboxes: ctx.sandbox.clone(),
        trigger: ctx.trigger,
    };
    match verify::verify_chosen(ctx, &chosen, &opts, r).await {
        Ok(report) => out.fill(report),
        Err(e) => {
            out.error = Some(e.to_string());
            out.duration_ms = started.elapsed().as_millis() as u64;
        }
    }
    notify(&out);
    out
}

/// The notification of a failed verification: until the service's notifier
/// exists, a warn line naming the backup, the level and the first failed
/// check or the error.
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
        if run.result == RunResult::Failed { "failed" } else { "could not run" },
        run.first_problem().unwrap_or_default()
    );
}

/// Runs every verification in `due`, in order, each reported as it begins
/// and ends.
async fn run_all(
    ctx: &Context,
    catalog: &Catalog,
    due: &[Due],
    sandbox: &SandboxOptions,
    r: &dyn Reporter,
) -> Vec<PolicyRun> {
    let mut runs = Vec::with_capacity(due.len());
    for d in due {
        r.partial(PARTIAL_DUE, to_value(d));
        let run = run_one(ctx, catalog, d, sandbox, r).await;
        r.partial(PARTIAL_RUN, to_value(&run));
        runs.push(run);
    }
    runs
}

fn to_value<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).expect("outcome types serialize")
}

/// The error a front end ends with when a verification the policy ran did
/// not pass (`prefix` says what else happened, e.g. the backup completed).
pub fn failure(prefix: &str, runs: &[PolicyRun]) -> Option<OpError> {
    let failed: Vec<&PolicyRun> = runs.iter().filter(|r| r.failed()).collect();
    let first = failed.first()?;
    let kind = if first.result == RunResult::Failed {
        ErrorKind::Damaged
    } else {
        ErrorKind::Unavailable
    };
    Some(
        OpError::new(
            kind,
            format!(
                "{prefix}{} of {} verification(s) did not pass; backup {}, level {}: {}",
                failed.len(),
                runs.len(),
                first.backup_id,
                first.level,
                first.first_problem().unwrap_or_default()
            ),
        )
        .with_command(format!("n8n-ark verify --history {}", first.backup_id)),
    )
}

/// `verify --due`: the sandbox of its `restore` verifications.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DueRequest {
    pub sandbox: SandboxOptions,
}

/// What `verify --due` found due and how each ran.
#[derive(Debug, Clone, Serialize)]
pub struct DueOutcome {
    pub due: Vec<Due>,
    pub verifications: Vec<PolicyRun>,
    /// Nothing was due because the store holds no completed backup.
    #[serde(skip)]
    pub no_backup: bool,
}

impl DueOutcome {
    /// The error to end with when one did not pass.
    pub fn failure(&self) -> Option<OpError> {
        failure("", &self.verifications)
    }
}

/// Runs what the policy's daily and weekly rules ask for now.
pub async fn run_due(ctx: &Context, req: &DueRequest, r: &dyn Reporter) -> OpResult<DueOutcome> {
    let sandbox = ctx
        .config()
        .sandbox(&req.sandbox, &Default::default())
        .map_err(|m| OpError::invalid(m).with_setting("ARK_SANDBOX"))?;
    let catalog = catalog::caught_up(ctx, r).await?;
    let planned = async {
        let p = policy::policy_in_force(&catalog).await?;
        let h = policy::history(&catalog).await?;
        Ok::<_, crate::catalog::CatalogError>((p, h))
    }
    .await;
    let (p, h) = match planned {
        Ok(x) => x,
        Err(e) => {
            catalog.close().await;
            return Err(e.into());
        }
    };
    let due = policy::due_by_time(&p, &h, crate::store::now_ms());
    if due.is_empty() {
        catalog.close().await;
        return Ok(DueOutcome {
            due,
            verifications: vec![],
            no_backup: h.newest_backup().is_none(),
        });
    }
    if let Err(e) = ctx.check_cancelled("before the verifications began; nothing was changed") {
        catalog.close().await;
        return Err(e);
    }
    r.stage("verify due");
    let runs = run_all(ctx, &catalog, &due, &sandbox, r).await;
    if let Err(e) = catalog.catch_up(&ctx.store).await {
        r.warning(format!(
            "the catalog could not catch up with the store: {e}"
        ));
    }
    catalog.close().await;
    Ok(DueOutcome {
        due,
        verifications: runs,
        no_backup: false,
    })
}

/// The verifications the policy asks for after backup `backup_id` completed
/// (its after_backup, every_n_backups and percent rules), run. A policy that
/// cannot be read is a warning (the backup stays completed) and no run.
pub async fn after_backup(
    ctx: &Context,
    backup_id: &str,
    sandbox: &SandboxOptions,
    r: &dyn Reporter,
) -> Vec<PolicyRun> {
    fn skipped(r: &dyn Reporter, e: impl std::fmt::Display) -> Vec<PolicyRun> {
        r.warning(format!(
            "the verification policy could not be read from the catalog ({e}); \
             no verification ran after this backup (run `n8n-ark verify --due` later)"
        ));
        vec![]
    }
    let catalog = match catalog::open(ctx, r).await {
        Ok((c, Ok(_))) => c,
        Ok((c, Err(e))) => {
            c.close().await;
            return skipped(r, e);
        }
        Err(e) => return skipped(r, e),
    };
    let seed = policy::seed_from_env(&ctx.env);
    let planned = async {
        let p = policy::policy_in_force(&catalog).await?;
        let h = policy::history(&catalog).await?;
        Ok::<_, crate::catalog::CatalogError>(
            h.backup(backup_id)
                .map(|b| policy::due_after_backup(&p, b, seed.as_deref())),
        )
    }
    .await;
    let due = match planned {
        Ok(Some(d)) => d,
        Ok(None) => {
            catalog.close().await;
            r.warning(format!(
                "backup {backup_id} is not in the catalog: the verification policy was not applied to it \
                 (run `n8n-ark verify --due` or `n8n-ark verify {backup_id}`)"
            ));
            return vec![];
        }
        Err(e) => {
            catalog.close().await;
            return skipped(r, e);
        }
    };
    if !due.is_empty() {
        r.stage("verify");
    }
    let runs = run_all(ctx, &catalog, &due, sandbox, r).await;
    if !runs.is_empty() {
        if let Err(e) = catalog.catch_up(&ctx.store).await {
            r.warning(format!(
                "the catalog could not catch up with the store: {e}"
            ));
        }
    }
    catalog.close().await;
    runs
}
