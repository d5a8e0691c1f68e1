//! The verification policy from the command line: `verify policy show`,
//! `verify policy set --rule LEVEL:SCHEDULE[:N] ...`, `verify --due` (every
//! verification the policy asks for now: for cron or the service). The
//! engine runs them (`ops::policy`), also after a backup; this file turns
//! flags into requests and draws what comes back.
use super::catalog::{fmt_time, open_catalog, TextTable};
use super::progress::Printer;
use super::{print_json, who, Cli, CliError, CliResult};
use crate::ops::policy::{self as ops_policy, DueRequest, PolicyRun, SetRequest};
use crate::ops::{Progress, Reporter};
use crate::sandbox::SandboxOptions;
use crate::verify::policy::{self, Due};

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

async fn show(cli: &Cli) -> CliResult {
    // The catalog answers also while the store cannot be reached.
    let catalog = open_catalog(cli).await?;
    let view = ops_policy::view(&catalog).await;
    catalog.close().await;
    let view = view?;
    if cli.json {
        print_json(&view);
        return Ok(());
    }
    match (view.policy.source, view.policy.set_ms) {
        (policy::PolicySource::Default, _) => {
            println!("verification policy: the defaults (never set)")
        }
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
    let req = SetRequest {
        rules: a.rules.clone(),
        defaults: a.defaults,
        set_by: who(),
    };
    // Everything is checked before the store is touched.
    req.rules()?;
    let ctx = cli.context(Default::default()).await?;
    let ev = ops_policy::set(&ctx, &req, &Printer).await?;
    if cli.json {
        print_json(&ev);
    } else {
        let rules: Vec<String> = ev.rules.iter().map(policy::describe_rule).collect();
        println!("verification policy set: {}", rules.join(", "));
    }
    Ok(())
}

/// Draws the verifications the policy runs as they begin and end (text
/// only), the rest as [`Printer`] does.
pub struct RunPrinter {
    pub text: bool,
}

impl RunPrinter {
    /// Draws a policy run's partial report; false when it is not one.
    pub fn partial(&self, name: &str, value: &serde_json::Value) -> bool {
        match name {
            ops_policy::PARTIAL_DUE => {
                if let (true, Ok(d)) = (self.text, Due::deserialize(value)) {
                    println!(
                        "verifying backup {} at level {} ({}: {})",
                        d.backup_id, d.level, d.rule, d.reason
                    );
                }
                true
            }
            ops_policy::PARTIAL_RUN => {
                if let (true, Ok(r)) = (self.text, PolicyRun::deserialize(value)) {
                    println!("{}", r.line());
                }
                true
            }
            _ => false,
        }
    }
}

use serde::Deserialize;

impl Reporter for RunPrinter {
    fn report(&self, p: Progress) {
        match p {
            Progress::Partial { name, value } => {
                self.partial(&name, &value);
            }
            p => Printer.report(p),
        }
    }
}

/// `verify --due`: runs what the policy's daily/weekly rules ask for now.
pub async fn run_due(cli: &Cli, sandbox: SandboxOptions) -> CliResult {
    let ctx = cli.context(Default::default()).await?;
    let printer = RunPrinter { text: !cli.json };
    let outcome = ops_policy::run_due(&ctx, &DueRequest { sandbox }, &printer).await?;
    if cli.json {
        print_json(&outcome);
    } else if outcome.due.is_empty() {
        if outcome.no_backup {
            println!("nothing is due: the store holds no completed backup");
        } else {
            println!("nothing is due: every daily or weekly verification of the policy is recent (see `n8n-ark verify policy show`)");
        }
    }
    match outcome.failure() {
        Some(e) => Err(CliError::Failed(e.message)),
        None => Ok(()),
    }
}
