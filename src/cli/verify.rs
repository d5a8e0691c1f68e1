//! `verify BACKUP|latest|all --level exists|data|restore`: prove that backups
//! restore and hold what their manifests say, and record the proof; or
//! `verify --history [BACKUP]`: the verifications recorded.
//!
//! The exit status reports the verification: 0 when every backup passed
//! (also when the store is read-only and the result could not be recorded:
//! a warning says so), 1 when one failed or could not be verified, 128 + the
//! signal's number when SIGINT, SIGTERM or SIGHUP stopped it (its sandbox
//! removed, `VerificationFailed` recorded).
use super::catalog::{fmt_duration, fmt_time, TextTable};
use super::progress::Printer;
use super::sandbox_args::SandboxArgs;
use super::value_enums::LevelArg;
use super::{print_json, Cli, CliError, CliResult};
use crate::catalog::VerificationRecord;
use crate::ops::verify::{self, BackupOutcome, Request};
use crate::ops::{ErrorKind, Progress, Reporter};
use crate::verify::{Level, VerificationReport};

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
    #[arg(long, value_enum, default_value_t = LevelArg::Data)]
    pub level: LevelArg,
    /// List the verifications recorded (of BACKUP when given) instead of running one.
    #[arg(long)]
    pub history: bool,
    #[command(flatten)]
    pub sandbox: SandboxArgs,
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
        return super::policy::run_due(cli, a.sandbox.options(None)).await;
    }
    if a.history {
        return history(cli, a).await;
    }
    // SIGINT, SIGTERM, SIGHUP (an SSH session dropping): the verification
    // stops, its sandbox is torn down and VerificationFailed recorded.
    let cancel = super::signals::install(super::signals::OnSignal::Cancel);
    let ctx = cli.context(cancel.clone()).await?;
    let req = Request {
        backup: a.backup.clone().unwrap_or_default(),
        level: Level::from(a.level),
        sandbox: a.sandbox.options(None),
    };
    let printer = VerifyPrinter {
        text: !cli.json,
        level: Level::from(a.level),
    };
    let summary = verify::run(&ctx, &req, &printer).await?;
    if cli.json {
        print_json(&summary);
    } else if summary.backups > 1 {
        println!(
            "\n{} backups verified at level {}: {} passed, {} failed, {} could not be verified",
            summary.backups,
            Level::from(a.level),
            summary.passed,
            summary.failed,
            summary.errors
        );
    }
    if summary.unrecorded > 0 && !cli.json {
        println!(
            "note: {} verification result(s) could not be recorded in the store's journal \
             (it is read-only?): the exit status reports the verification itself",
            summary.unrecorded
        );
    }
    match summary.failure() {
        Some(e) if e.kind == ErrorKind::Interrupted => Err(CliError::Interrupted(
            e.message,
            super::signals::exit_code(&cancel.reason().unwrap_or_default()),
        )),
        Some(e) => Err(CliError::Failed(e.message)),
        None => Ok(()),
    }
}

/// Draws each backup's result as it ends (text only), the rest as
/// [`Printer`] does.
struct VerifyPrinter {
    text: bool,
    level: Level,
}

impl Reporter for VerifyPrinter {
    fn report(&self, p: Progress) {
        match p {
            Progress::Partial { name, value } if name == verify::PARTIAL_BACKUP => {
                if !self.text {
                    return;
                }
                let Ok(o) = serde_json::from_value::<BackupOutcome>(value) else {
                    return;
                };
                match (&o.report, &o.error) {
                    (Some(r), _) => print_report(r),
                    (None, e) => println!(
                        "backup {}: {} verification could not run: {}",
                        o.backup_id,
                        self.level,
                        e.as_deref().unwrap_or_default()
                    ),
                }
            }
            p => Printer.report(p),
        }
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
    let rc = super::catalog::read_context(cli)?;
    let req = verify::HistoryRequest {
        backup: a.backup.clone(),
    };
    let list: Vec<VerificationRecord> = verify::history(&rc, &req, &Printer).await?;
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
