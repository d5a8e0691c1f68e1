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
            Progress::Bytes { .. } | Progress::Partial { .. } => {}
        }
    }
}

/// A bar on a terminal drawn from an operation's [`Progress::Bytes`]
/// (nothing when standard error is not a terminal); cleared by
/// [`ByteBar::clear`] or when dropped.
#[derive(Default)]
pub struct ByteBar(std::sync::Mutex<Option<indicatif::ProgressBar>>);

impl ByteBar {
    pub fn update(&self, done: u64, total: Option<u64>) {
        use std::io::IsTerminal;
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            if !std::io::stderr().is_terminal() {
                return;
            }
            let bar = match total {
                Some(n) => indicatif::ProgressBar::new(n),
                None => indicatif::ProgressBar::no_length(),
            };
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {bytes}/{total_bytes} {binary_bytes_per_sec} {wide_bar} {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            super::stdio::set_progress_bar(Some(bar.clone()));
            *slot = Some(bar);
        }
        if let Some(bar) = slot.as_ref() {
            if let Some(n) = total {
                bar.set_length(n);
            }
            bar.set_position(done);
        }
    }

    pub fn clear(&self) {
        if let Some(bar) = self.0.lock().unwrap_or_else(|p| p.into_inner()).take() {
            super::stdio::set_progress_bar(None);
            bar.finish_and_clear();
        }
    }
}

impl Drop for ByteBar {
    fn drop(&mut self) {
        self.clear();
    }
}
