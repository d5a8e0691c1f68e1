//! Operations' progress as the command line shows it: warnings as one line
//! each on standard error (above a progress bar, if one is drawn), stages as
//! log lines.
use crate::ops::{Progress, Reporter};

/// Prints what an operation reports.
#[derive(Debug, Default, Clone, Copy)]
pub struct Printer;

impl Reporter for Printer {
    fn report(&self, p: Progress) {
        match p {
            Progress::Warning { message } => eprintln!("warning: {message}"),
            Progress::Stage { name } => tracing::debug!(stage = %name, "stage"),
            // Which sandbox is used: shown by default, as the sandbox's log.
            Progress::Item { name, detail, .. } if name == crate::sandbox::REPORT_ITEM => {
                tracing::info!(target: "n8n_ark::sandbox", "sandbox: {detail}")
            }
            Progress::Item {
                name,
                outcome,
                detail,
            } => tracing::debug!(%name, %outcome, %detail, "item"),
            Progress::Bytes { .. } => {}
        }
    }
}
