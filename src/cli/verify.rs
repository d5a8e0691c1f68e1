//! `verify BACKUP|latest|all --level exists|data|restore`: prove that backups
//! restore and hold what their manifests say, and record the proof; or
//! `verify --history [BACKUP]`: the verifications recorded.
//!
//! The exit status reports the verification: 0 when every backup passed
//! (also when the store is read-only and the result could not be recorded:
//! a warning says so), 1 when one failed or could not be verified, 128 + the
//! signal's number when SIGINT, SIGTERM or SIGHUP stopped it (its sandbox
//! removed, `VerificationFailed` recorded).
use super::catalog::{catalog_err, fmt_duration, fmt_time, TextTable};
use super::restore::{open_store_and_catalog, restore_err};
use super::sandbox_args::SandboxArgs;
use super::{print_json, Cli, CliError, CliResult};
use crate::catalog::{BackupFilter, BackupStatus, VerificationRecord};
use crate::sandbox::SandboxOptions;
use crate::verify::{verify_backup, Level, VerificationReport, VerifyOptions};

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    /// A backup id, a unique prefix of one, `latest`, `latest:KIND`, or `all`
    /// (every completed backup).
    #[arg(required_unless_present_any = ["history", "due"])]
    pub backup: Option<String>,
    /// Run every verification the policy asks for now (its daily and weekly
    /// rules; for cron or the service). Nothing due: exits 0 saying so.
    #[arg(long, conflicts_with_all = ["backup", "history"])]
    pub due: bool,
    /// The verification policy: `policy show`, `policy set --rule ...`.
    #[command(subcommand)]
    pub policy: Option<VerifyCommand>,
    /// exists: every object is present; data: every object is read and
    /// hashes to its id; restore: the databases are restored into a sandbox
    /// and compared with the manifest.
    #[arg(long, value_enum, default_value_t = Level::Data)]
    pub level: Level,
    /// List the verifications recorded (of BACKUP when given) instead of running one.
    #[arg(long)]
    pub history: bool,
    #[command(flatten)]
    pub sandbox: SandboxArgs,
}

impl VerifyOptions {
    /// The options of a level with the sandbox flags of a command.
    pub fn with_sandbox(level: Level, s: &SandboxOptions) -> VerifyOptions {
        VerifyOptions {
            level,
            sandbox: s.clone(),
            cancel: Default::default(),
            sandboxes: super::sandboxes(),
            reporter: std::sync::Arc::new(super::progress::Printer),
            trigger: crate::ops::Trigger::Manual,
        }
    }
}

/// One backup's outcome, for `--json`.
#[derive(Debug, serde::Serialize)]
struct Outcome {
    backup_id: String,
    /// `passed`, `failed` or `error`.
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<VerificationReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, serde::Serialize)]
struct Summary {
    level: Level,
    backups: usize,
    passed: usize,
    failed: usize,
    errors: usize,
    results: Vec<Outcome>,
}

/// `verify policy ...` (src/cli/policy.rs).
#[derive(Debug, clap::Subcommand)]
pub enum VerifyCommand {
    /// Show or set the verification policy (what runs by itself, and when).
    #[command(subcommand)]
    Policy(super::policy::PolicyCommand),
}

pub async fn run(cli: &Cli, a: &Args) -> CliResult {
    if let Some(VerifyCommand::Policy(p)) = &a.policy {
        return super::policy::run(cli, p).await;
    }
    if a.due {
        // The policy's runs do not stop half-way: a signal removes their
        // sandbox and exits.
        super::signals::install(super::signals::OnSignal::Exit);
        return super::policy::run_due(cli, &cli.sandbox(&a.sandbox)).await;
    }
    if a.history {
        return history(cli, a).await;
    }
    // SIGINT, SIGTERM, SIGHUP (an SSH session dropping): the verification
    // stops, its sandbox is torn down and VerificationFailed recorded.
    let cancel = super::signals::install(super::signals::OnSignal::Cancel);
    let reference = a.backup.as_deref().unwrap_or_default().trim();
    let (store, catalog) = open_store_and_catalog(cli).await?;
    let ids: Vec<String> = if reference == "all" {
        let filter = BackupFilter {
            status: Some(BackupStatus::Completed),
            ..Default::default()
        };
        let list = catalog.list_backups(&filter).await.map_err(catalog_err)?;
        if list.is_empty() {
            catalog.close().await;
            return Err(CliError::Failed(
                "the store holds no completed backup to verify".into(),
            ));
        }
        list.into_iter().map(|b| b.backup_id).collect()
    } else {
        vec![catalog.resolve(reference).await.map_err(catalog_err)?]
    };
    let mut opts = VerifyOptions::with_sandbox(a.level, &cli.sandbox(&a.sandbox));
    opts.cancel = cancel.clone();
    let mut results = Vec::with_capacity(ids.len());
    let mut unrecorded = 0;
    for id in &ids {
        if cancel.is_cancelled() {
            break;
        }
        let chosen = match crate::restore::choose_backup(&catalog, &store, id).await {
            Ok(c) => c,
            Err(e) if ids.len() == 1 => {
                catalog.close().await;
                return Err(restore_err(e));
            }
            Err(e) => {
                if !cli.json {
                    println!("backup {id}: cannot be verified: {e}");
                }
                results.push(Outcome {
                    backup_id: id.clone(),
                    result: "error",
                    report: None,
                    error: Some(e.to_string()),
                });
                continue;
            }
        };
        match verify_backup(&store, &chosen, &opts).await {
            Ok(r) => {
                if !cli.json {
                    print_report(&r);
                }
                if let Some(u) = &r.unrecorded {
                    unrecorded += 1;
                    eprintln!("warning: backup {id}: the result stands, but {u}");
                }
                results.push(Outcome {
                    backup_id: id.clone(),
                    result: if r.passed { "passed" } else { "failed" },
                    report: Some(r),
                    error: None,
                });
            }
            Err(e) => {
                if !cli.json {
                    println!("backup {id}: {} verification could not run: {e}", a.level);
                }
                results.push(Outcome {
                    backup_id: id.clone(),
                    result: "error",
                    report: None,
                    error: Some(e.to_string()),
                });
            }
        }
    }
    // Bring the catalog up to the events just recorded.
    if let Err(e) = catalog.catch_up(&store).await {
        eprintln!("warning: the catalog could not catch up with the store: {e}");
    }
    catalog.close().await;
    let count = |r: &str| results.iter().filter(|o| o.result == r).count();
    let summary = Summary {
        level: a.level,
        backups: results.len(),
        passed: count("passed"),
        failed: count("failed"),
        errors: count("error"),
        results,
    };
    if cli.json {
        print_json(&summary);
    } else if summary.backups > 1 {
        println!(
            "\n{} backups verified at level {}: {} passed, {} failed, {} could not be verified",
            summary.backups, a.level, summary.passed, summary.failed, summary.errors
        );
    }
    if unrecorded > 0 && !cli.json {
        println!(
            "note: {unrecorded} verification result(s) could not be recorded in the store's journal \
             (it is read-only?): the exit status reports the verification itself"
        );
    }
    if let Some(why) = cancel.interrupted() {
        let message = match summary.results.iter().find(|o| o.result == "error") {
            Some(Outcome {
                error: Some(e),
                backup_id,
                ..
            }) => format!("the verification of backup {backup_id} stopped: {e}"),
            _ => format!("verification {why}"),
        };
        return Err(CliError::Interrupted(
            message,
            super::signals::exit_code(&cancel.reason().unwrap_or_default()),
        ));
    }
    if summary.failed + summary.errors == 0 {
        return Ok(());
    }
    let first = summary
        .results
        .iter()
        .find(|o| o.result != "passed")
        .expect("one did not pass");
    Err(CliError::Failed(match (&first.report, &first.error) {
        (Some(r), _) => {
            let f = &r.failures[0];
            format!(
                "verification failed: backup {} at level {}: {} {}: expected {}, found {}{}",
                r.backup_id,
                a.level,
                f.check,
                f.subject,
                f.expected,
                f.found,
                others(summary.failed + summary.errors - 1, r.failures.len() - 1)
            )
        }
        (None, Some(e)) => format!(
            "verification could not run: backup {}: {e}{}",
            first.backup_id,
            others(summary.failed + summary.errors - 1, 0)
        ),
        (None, None) => "verification failed".into(),
    }))
}

fn others(backups: usize, checks: usize) -> String {
    let mut parts = Vec::new();
    if checks > 0 {
        parts.push(format!(
            "{checks} more failed check{}",
            if checks == 1 { "" } else { "s" }
        ));
    }
    if backups > 0 {
        parts.push(format!(
            "{backups} more backup{} not proven",
            if backups == 1 { "" } else { "s" }
        ));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

fn print_report(r: &VerificationReport) {
    println!(
        "backup {}: {} verification {} ({} checks, {}){}",
        r.backup_id,
        r.level,
        if r.passed { "passed" } else { "FAILED" },
        r.checks_run,
        fmt_duration(Some(r.duration_ms)),
        r.sandbox
            .as_deref()
            .map(|s| format!(" in {s}"))
            .unwrap_or_default()
    );
    for f in &r.failures {
        println!(
            "  FAILED {} {}: expected {}, found {}",
            f.check, f.subject, f.expected, f.found
        );
    }
    for n in &r.notes {
        println!("  note: {n}");
    }
}

async fn history(cli: &Cli, a: &Args) -> CliResult {
    let catalog = super::catalog::open_catalog(cli).await?;
    let backup = match a.backup.as_deref().map(str::trim) {
        None | Some("all") => None,
        Some(r) => Some(catalog.resolve(r).await.map_err(catalog_err)?),
    };
    let list: Vec<VerificationRecord> = catalog
        .list_verifications(backup.as_deref())
        .await
        .map_err(catalog_err)?;
    catalog.close().await;
    if cli.json {
        print_json(&list);
        return Ok(());
    }
    if list.is_empty() {
        println!("no verifications recorded");
        return Ok(());
    }
    let mut t = TextTable::new(&[
        "FINISHED (UTC)",
        "BACKUP ID",
        "LEVEL",
        "RESULT",
        "CHECKS",
        "DURATION",
        "DETAIL",
    ])
    .right_align(&[4, 5]);
    for v in &list {
        t.row(vec![
            fmt_time(Some(v.finished_ms)),
            v.backup_id.clone(),
            v.level.clone(),
            match v.result.as_str() {
                "failed" => "FAILED".into(),
                r => r.to_string(),
            },
            v.checks_run.to_string(),
            fmt_duration(Some(v.duration_ms)),
            match (v.failures.first(), &v.message) {
                (Some(f), _) => format!(
                    "{} {}: expected {}, found {}{}",
                    f.check,
                    f.subject,
                    f.expected,
                    f.found,
                    if v.failures.len() > 1 {
                        format!(" (+{} more)", v.failures.len() - 1)
                    } else {
                        String::new()
                    }
                ),
                (None, Some(m)) => format!("{}: {m}", v.failed_stage.as_deref().unwrap_or("?")),
                (None, None) => v.sandbox.clone().unwrap_or_default(),
            },
        ]);
    }
    t.print(0);
    Ok(())
}
