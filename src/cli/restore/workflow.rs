//! `n8n-ark restore workflow BACKUP [WORKFLOW...] [--all] [--match NAME]
//! [--tag TAG] (--out DIR | --to-n8n)`: workflows of a backup written as files
//! for n8n's import, or created in a running n8n as new, inactive workflows
//! (the originals are never touched). See [`crate::restore::workflow`].
use super::op_err;
use crate::cancel::Cancel;
use crate::cli::progress::Printer;
use crate::cli::{print_json, Cli, CliError, CliResult};
use crate::ops::restore::workflow::{self, Request, To, Watch};
use crate::ops::restore::Server;
use crate::restore::workflow::{RestoreReport, Selection, WorkflowResult};
use crate::restore::{ChosenBackup, Outcome};
use crate::settings::{secret, Settings};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The backup: `latest`, `latest:KIND` (e.g. latest:flows), an id or a
    /// unique prefix of one.
    pub backup: String,
    /// Workflows to restore: an id, an exact name, or a unique part of a name.
    pub workflows: Vec<String>,
    /// Every workflow of the backup (archived ones are skipped unless named).
    #[arg(long)]
    pub all: bool,
    /// Workflows whose name contains NAME (case-insensitive). Repeatable; with
    /// --tag, a workflow must match both.
    #[arg(long = "match", value_name = "NAME")]
    pub name_contains: Vec<String>,
    /// Workflows with tag TAG. Repeatable.
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Write one file per workflow into DIR (created if missing), in the format
    /// of `n8n export:workflow --separate`: import with the editor (Import
    /// from File) or `n8n import:workflow --separate --input=DIR`. Existing
    /// files are never overwritten.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Create each workflow in the running n8n through its public API, as a
    /// new inactive workflow (--n8n-url / ARK_N8N_URL; key in ARK_N8N_API_KEY
    /// or the file named by ARK_N8N_API_KEY_FILE).
    #[arg(long)]
    pub to_n8n: bool,
    /// n8n's base URL, e.g. http://127.0.0.1:5678 (or [n8n] api_url in the
    /// config file).
    #[arg(long, env = "ARK_N8N_URL")]
    pub n8n_url: Option<String>,
    /// The name of each created workflow. Placeholders: {name}, {id}, {date}
    /// (the backup's day, UTC), {time} (HH:MM, UTC), {backup} (its id).
    #[arg(long, value_name = "TEMPLATE")]
    pub name_template: Option<String>,
    /// The target n8n's database (postgres://user@host:port/db), read to check
    /// credential references (ids, names and types only). Password:
    /// ARK_N8N_DB_PASSWORD or ARK_N8N_DB_PASSWORD_FILE, never on the command
    /// line. Default: [n8n] database of the config file.
    #[arg(long, env = "ARK_N8N_DB")]
    pub n8n_db: Option<String>,
}

/// Where the workflows go, from the flags, ARK_* variables and the config
/// file; an error is the operator's to fix (nothing has been done yet).
fn destination(a: &Args, s: &Settings) -> Result<To, String> {
    match (&a.out, a.to_n8n) {
        (None, false) => Err(
            "where to? Give --out DIR (files to import in n8n) or --to-n8n \
                              (new workflows in the running n8n)"
                .into(),
        ),
        (Some(_), true) => Err("give either --out DIR or --to-n8n, not both".into()),
        (Some(dir), false) => Ok(To::Files { dir: dir.clone() }),
        (None, true) => {
            let url = a.n8n_url.as_ref().or(s.n8n.api_url.as_ref()).cloned();
            // The key is read only for an n8n that is configured.
            let api_key = match &url {
                Some(_) => secret(
                    "ARK_N8N_API_KEY",
                    "ARK_N8N_API_KEY_FILE",
                    s.n8n.api_key_file.as_deref(),
                )?
                .map(|k| k.to_string()),
                None => None,
            };
            Ok(To::N8n { url, api_key })
        }
    }
}

/// The target n8n's database, when configured.
fn credentials_db(a: &Args, s: &Settings) -> Result<Option<Server>, String> {
    crate::cli::postgres_args::no_password_on_the_command_line(
        "--n8n-db",
        "ARK_N8N_DB",
        a.n8n_db.as_ref(),
    )?;
    match a.n8n_db.as_ref().or(s.n8n.database.as_ref()) {
        None => Ok(None),
        Some(url) => {
            let pw = secret(
                "ARK_N8N_DB_PASSWORD",
                "ARK_N8N_DB_PASSWORD_FILE",
                s.n8n.database_password_file.as_deref(),
            )?;
            Ok(Some(Server::new(url.clone(), pw.map(|p| p.to_string()))))
        }
    }
}

/// Prints the header and each workflow's result as it is known (text only).
struct Lines {
    json: bool,
}

impl Watch for Lines {
    fn begun(&self, count: usize, backup: &ChosenBackup, target: &str) {
        if self.json {
            return;
        }
        let what = match (target.strip_prefix("dir:"), target.strip_prefix("n8n:")) {
            (Some(dir), _) => format!("to files in {dir}"),
            (_, Some(url)) => format!("into n8n at {url}"),
            _ => target.to_string(),
        };
        println!(
            "restoring {count} workflow(s) of backup {} (finished {} UTC) {what}",
            backup.backup_id,
            crate::cli::catalog::fmt_time(Some(backup.finished_ms))
        );
    }

    fn result(&self, r: &WorkflowResult) {
        if !self.json {
            print_result(r);
        }
    }
}

pub async fn run(cli: &Cli, a: &Args, cancel: &Cancel) -> CliResult {
    // Everything the operator can get wrong is found before the store opens.
    let settings = cli.settings().map_err(CliError::Usage)?;
    let to = destination(a, settings).map_err(CliError::Usage)?;
    let credentials_db = credentials_db(a, settings).map_err(CliError::Usage)?;
    let req = Request {
        backup: a.backup.clone(),
        selection: Selection {
            workflows: a.workflows.clone(),
            all: a.all,
            name_contains: a.name_contains.clone(),
            tags: a.tags.clone(),
        },
        to,
        name_template: a.name_template.clone(),
        credentials_db,
    };
    req.check()?;
    let ctx = cli.context(cancel.clone()).await?;
    let report = workflow::run_watched(&ctx, &req, &Printer, &Lines { json: cli.json })
        .await
        .map_err(|e| op_err(cancel, e))?;
    if cli.json {
        print_json(&report);
    } else {
        print_summary(&report);
    }
    if report.summary.failed > 0 {
        return Err(CliError::Failed(format!(
            "{} of {} workflows failed (restore {}; see above)",
            report.summary.failed,
            report.workflows.len(),
            report.restore_id
        )));
    }
    Ok(())
}

fn print_result(r: &WorkflowResult) {
    let outcome = match r.outcome {
        Outcome::Restored => "restored",
        Outcome::Skipped => "skipped ",
        Outcome::Failed => "FAILED  ",
    };
    let q = |s: &str| format!("\"{}\"", super::super::printable(s));
    let mut line = format!("  {outcome} {} {}", r.id, q(&r.name));
    match r.outcome {
        Outcome::Restored => {
            if let Some(f) = &r.file {
                line.push_str(&format!(" -> {f}"));
            }
            if let Some(id) = &r.new_id {
                line.push_str(&format!(
                    " -> new inactive workflow {id} {}",
                    q(r.new_name.as_deref().unwrap_or(""))
                ));
            }
        }
        _ => {
            if let Some(m) = &r.message {
                line.push_str(&format!(": {}", super::super::printable(m)));
            }
        }
    }
    println!("{line}");
    for d in &r.dropped {
        println!(
            "      dropped {}: {} (n8n: {})",
            d.field, d.reason, d.n8n_message
        );
    }
    for m in &r.missing_credentials {
        println!(
            "      missing credential {} {}{} used by {}: {}",
            m.credential_type,
            q(m.name.as_deref().unwrap_or("")),
            m.id.as_ref()
                .map(|i| format!(" (id {i})"))
                .unwrap_or_default(),
            super::super::printable(&m.nodes.join(", ")),
            m.reason
        );
    }
    for m in &r.remapped_credentials {
        println!(
            "      credential {} {} (id {}) matched by name: n8n uses credential {} of the target for {}",
            m.credential_type,
            q(m.name.as_deref().unwrap_or("")),
            m.id.as_deref().unwrap_or("none"),
            m.target_id,
            m.nodes.join(", ")
        );
    }
    for m in &r.unchecked_credentials {
        println!(
            "      unchecked credential {} {}{} used by {}",
            m.credential_type,
            q(m.name.as_deref().unwrap_or("")),
            m.id.as_ref()
                .map(|i| format!(" (id {i})"))
                .unwrap_or_default(),
            m.nodes.join(", ")
        );
    }
}

fn print_summary(r: &RestoreReport) {
    for w in &r.warnings {
        println!("note: {w}");
    }
    let missing: usize = r
        .workflows
        .iter()
        .map(|w| w.missing_credentials.len())
        .sum();
    println!(
        "{} restored, {} skipped, {} failed{} (restore {}, {}; `n8n-ark restore history`)",
        r.summary.restored,
        r.summary.skipped,
        r.summary.failed,
        if missing > 0 {
            format!("; {missing} missing credential reference(s)")
        } else {
            String::new()
        },
        r.restore_id,
        crate::cli::catalog::fmt_duration(Some(r.duration_ms)),
    );
}
