//! `n8n-ark restore …`: one file per kind of restore.
pub mod config;
pub mod database;
pub mod full;
pub mod history;
pub mod workflow;

use super::{Cli, CliResult};

#[derive(Debug, clap::Subcommand)]
pub enum RestoreCommand {
    /// Restore workflows to files (--out DIR) or into a running n8n (--to-n8n),
    /// as new inactive workflows; the originals are never touched.
    Workflow(workflow::Args),
    /// Restore a database dump with pg_restore, into a new database (--as) or
    /// over the existing one (--replace --yes, after a pinned safety backup).
    Database(database::Args),
    /// Restore config files (modes, owners, symlinks) under a root directory.
    Config(config::Args),
    /// Restore the whole system: stop n8n, restore databases and config, start
    /// it again and prove it answers.
    Full(full::Args),
    /// The restores made from this store, oldest first.
    History(history::Args),
}

pub async fn run(cli: &Cli, cmd: &RestoreCommand) -> CliResult {
    // SIGINT, SIGTERM and SIGHUP stop every restore cleanly (the engine sees
    // the cancellation, undoes what it made and records RestoreFailed).
    let cancel = || super::signals::install(super::signals::OnSignal::Cancel);
    match cmd {
        RestoreCommand::Workflow(a) => workflow::run(cli, a, &cancel()).await,
        RestoreCommand::Database(a) => database::run(cli, a, &cancel()).await,
        RestoreCommand::Config(a) => config::run(cli, a, &cancel()).await,
        RestoreCommand::Full(a) => full::run(cli, a, &cancel()).await,
        RestoreCommand::History(a) => history::run(cli, a).await,
    }
}

/// The store (a restore reads objects from it and appends its event) and its
/// catalog, caught up (to resolve `latest` and names).
pub async fn open_store_and_catalog(
    cli: &Cli,
) -> CliResult<(crate::store::Store, crate::catalog::Catalog)> {
    let store = cli.open_store().await?;
    let catalog = super::catalog::open_caught_up(cli, &store).await?;
    Ok((store, catalog))
}

/// A restore error for the operator.
pub fn restore_err(e: crate::restore::RestoreError) -> super::CliError {
    match e {
        crate::restore::RestoreError::Invalid(m) => super::CliError::Usage(m),
        e => super::CliError::Failed(e.to_string()),
    }
}

/// An operation's error as this command ends with it: stopped by a signal,
/// the exit status is 128 + that signal's number.
pub fn op_err(cancel: &crate::cancel::Cancel, e: crate::ops::OpError) -> super::CliError {
    match (e.kind, cancel.reason()) {
        (crate::ops::ErrorKind::Interrupted, Some(reason)) => {
            let code = super::signals::exit_code(&reason);
            super::CliError::Interrupted(super::CliError::Op(e).to_string(), code)
        }
        _ => super::CliError::Op(e),
    }
}

/// A restore's progress on the command line: warnings as `warning: …`
/// lines, its steps as lines on standard error (after `prefix`) unless
/// `quiet`.
pub struct Steps {
    pub prefix: &'static str,
    pub quiet: bool,
}

impl crate::ops::Reporter for Steps {
    fn report(&self, p: crate::ops::Progress) {
        match p {
            crate::ops::Progress::Stage { name } if !self.quiet => {
                eprintln!("{}{name}", self.prefix)
            }
            p => crate::ops::Reporter::report(&super::progress::Printer, p),
        }
    }
}
