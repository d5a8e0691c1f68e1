//! Cancellation of a long operation, asked for by its front end (the CLI on
//! SIGINT, SIGTERM or SIGHUP; later a job cancelled in the server). The
//! engine never installs signal handlers: it checks a [`Cancel`] at its step
//! boundaries and races its long waits (a `pg_restore`, a health wait, a
//! sandbox load) with [`Cancel::cancelled`], then cleans up what it made and
//! returns an error that says it was interrupted.
use std::sync::{Arc, OnceLock};
use tokio_util::sync::CancellationToken;

/// A cancellation request shared by a front end and the operation it runs.
/// The default one is never cancelled.
#[derive(Clone, Default, Debug)]
pub struct Cancel {
    token: CancellationToken,
    reason: Arc<OnceLock<String>>,
}

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Asks the operation to stop; `reason` says why, for its messages and
    /// events (e.g. `SIGTERM`). The first reason given is kept.
    pub fn cancel(&self, reason: impl Into<String>) {
        let _ = self.reason.set(reason.into());
        self.token.cancel();
    }

    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Why it was cancelled (None while it is not).
    pub fn reason(&self) -> Option<String> {
        if !self.is_cancelled() {
            return None;
        }
        Some(
            self.reason
                .get()
                .cloned()
                .unwrap_or_else(|| "cancelled".into()),
        )
    }

    /// `interrupted by SIGTERM`, for messages (None while not cancelled).
    pub fn interrupted(&self) -> Option<String> {
        self.reason().map(|r| format!("interrupted by {r}"))
    }

    /// Completes when the operation is asked to stop.
    pub async fn cancelled(&self) {
        self.token.cancelled().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_reason_is_kept() {
        let c = Cancel::new();
        assert!(!c.is_cancelled() && c.reason().is_none());
        let seen = c.clone();
        let waiter = tokio::spawn(async move {
            seen.cancelled().await;
            seen.reason()
        });
        c.cancel("SIGTERM");
        c.cancel("SIGINT");
        assert_eq!(waiter.await.unwrap().as_deref(), Some("SIGTERM"));
        assert_eq!(c.interrupted().as_deref(), Some("interrupted by SIGTERM"));
    }
}
