//! `backup`: one backup of a kind, its sources resolved from the request,
//! the `ARK_*` variables and the config file ([`crate::config`]), then the
//! verifications the policy asks for after it ([`super::policy::after_backup`]).
//!
//! The backup records its own events (`BackupStarted`, then
//! `BackupCompleted` or `BackupFailed`; a request whose settings cannot be
//! resolved is recorded as failed at stage `configuration`), and the catalog
//! catches up with them (opened while the backup runs, so that only this
//! backup's events remain to apply afterwards). A cancellation stops the
//! backup cleanly: recorded as failed at stage `interrupted`, its lock
//! released, pg_dump stopped.
//!
//! The dump of a `postgres_n8n` backup can start before the store is open
//! (the passphrase's key derivation takes a few tenths of a second of one
//! core): a front end that opens the store itself calls [`prepare`] first,
//! opens the store meanwhile, then [`run_prepared`].
use super::policy::{self, PolicyRun};
use super::{catalog, Context, Environment, ErrorKind, OpError, OpResult, Reporter};
use crate::backup::{self, BackupKind, HeadStart, Sources};
use crate::config::{Resolver, SourceOverrides};
use crate::sandbox::SandboxOptions;
use crate::settings::Settings;
use crate::store::ingest::{BackupSession, BackupSummary, Counters};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
pub struct Request {
    /// What to back up.
    pub kind: BackupKind,
    /// Where from (each unset field falls back to its `ARK_*` variable, then
    /// the config file).
    #[serde(default)]
    pub sources: SourceOverrides,
    /// Run no verification after the backup, whatever the policy asks.
    #[serde(default)]
    pub no_verify: bool,
    /// The sandbox of a `restore`-level verification after the backup
    /// (without an image of its own it takes that of the container the dump
    /// ran in).
    #[serde(default)]
    pub sandbox: SandboxOptions,
}

/// A completed backup and the verifications the policy ran after it.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    #[serde(flatten)]
    pub summary: BackupSummary,
    /// `None` when none was asked for (`no_verify`, or the backup was
    /// interrupted as it completed); else every run (possibly none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verifications: Option<Vec<PolicyRun>>,
}

impl Outcome {
    /// The error a front end ends with when a verification after the backup
    /// did not pass (the backup stays completed).
    pub fn verification_failure(&self) -> Option<OpError> {
        policy::failure(
            &format!(
                "backup {} completed, but its verification failed: ",
                self.summary.backup_id
            ),
            self.verifications.as_deref().unwrap_or_default(),
        )
    }
}

/// The name of the [`crate::ops::Progress::Partial`] report of the
/// [`BackupSummary`], as soon as the backup completed (before the
/// verifications).
pub const PARTIAL_SUMMARY: &str = "backup";

/// A request resolved: its sources (or why they cannot be), the sandbox of
/// the verifications after it, and the dump already started.
pub struct Prepared {
    resolved: Result<(Sources, SandboxOptions), String>,
    head_start: Option<HeadStart>,
}

/// Resolves the request's sources and, when `head_start`, starts the dump
/// of a `postgres_n8n` backup (not while a person types the store's
/// passphrase: the snapshot would be held open, and pg_dump blocked, for as
/// long as that takes). Dropped unused, the dump is killed.
pub async fn prepare(
    settings: &Settings,
    env: &Environment,
    req: &Request,
    head_start: bool,
) -> Prepared {
    let config = Resolver::new(settings, env);
    let resolved = config
        .backup_sources(req.kind, &req.sources)
        .and_then(|sources| {
            let sandbox = if req.no_verify {
                req.sandbox.clone()
            } else {
                config.sandbox(&req.sandbox, &req.sources.postgres)?
            };
            Ok((sources, sandbox))
        });
    let head_start = match &resolved {
        Ok((sources, _)) if head_start => HeadStart::start(req.kind, sources).await,
        _ => None,
    };
    Prepared {
        resolved,
        head_start,
    }
}

impl Prepared {
    /// The backup will not be taken (its store could not be opened): a dump
    /// already started is stopped and waited for (see [`HeadStart::abandon`]).
    pub async fn abandon(self) {
        if let Some(h) = self.head_start {
            h.abandon().await;
        }
    }
}

/// Takes the backup, then runs the verifications the policy asks for.
pub async fn run(ctx: &Context, req: &Request, r: &dyn Reporter) -> OpResult<Outcome> {
    let prepared = prepare(&ctx.settings, &ctx.env, req, false).await;
    run_prepared(ctx, req, prepared, r).await
}

/// [`run`] with the request prepared (see [`prepare`]).
pub async fn run_prepared(
    ctx: &Context,
    req: &Request,
    prepared: Prepared,
    r: &dyn Reporter,
) -> OpResult<Outcome> {
    let Prepared {
        resolved,
        head_start,
    } = prepared;
    r.stage("backup");
    // The catalog opens and catches up with earlier events while the backup
    // runs; afterwards only this backup's events remain to apply.
    let early_catalog = async {
        match catalog::open(ctx, r).await {
            Ok((catalog, Ok(_))) => Some(catalog),
            Ok((catalog, Err(_))) => {
                catalog.close().await;
                None
            }
            Err(_) => None,
        }
    };
    let (sources, sandbox) = match resolved {
        Ok((s, b)) => (Ok(s), b),
        Err(m) => (Err(m), SandboxOptions::default()),
    };
    let work = async {
        match &sources {
            Ok(sources) => take(ctx, req.kind, sources, head_start, r).await,
            Err(message) => {
                Err(backup::record_rejected(&ctx.store, req.kind, message, ctx.trigger).await)
            }
        }
    };
    let (result, early) = tokio::join!(work, early_catalog);
    // The catalog follows the journal (also after a failure, which it shows).
    follow(ctx, early, r).await;
    if ctx.cancel.is_cancelled() {
        return match result {
            Err(e) => Err(OpError::new(
                ErrorKind::Interrupted,
                format!("{e} (recorded in the store's journal)"),
            )),
            // Completed all the same: no verification after it.
            Ok(summary) => {
                r.partial(PARTIAL_SUMMARY, to_value(&summary));
                Ok(Outcome {
                    summary,
                    verifications: None,
                })
            }
        };
    }
    let summary = result?;
    r.partial(PARTIAL_SUMMARY, to_value(&summary));
    if req.no_verify {
        return Ok(Outcome {
            summary,
            verifications: None,
        });
    }
    // The verifications the policy asks for after a completed backup. A
    // failed one leaves the backup completed (the outcome says so).
    let runs = policy::after_backup(ctx, &summary.backup_id, &sandbox, r).await;
    Ok(Outcome {
        summary,
        verifications: Some(runs),
    })
}

fn to_value<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).expect("outcome types serialize")
}

/// The backup itself, its bytes reported while it reads.
async fn take(
    ctx: &Context,
    kind: BackupKind,
    sources: &Sources,
    head_start: Option<HeadStart>,
    r: &dyn Reporter,
) -> Result<BackupSummary, backup::BackupError> {
    let counters: Mutex<Option<Arc<Counters>>> = Mutex::new(None);
    let progress = |session: &BackupSession| {
        *counters.lock().unwrap_or_else(|p| p.into_inner()) = Some(session.counters());
        None
    };
    let work = backup::run_in(
        &ctx.store,
        kind,
        sources,
        &progress,
        Default::default(),
        head_start,
        &ctx.cancel,
        ctx.env.get(crate::source::config_files::ENCRYPTION_KEY_VAR),
        ctx.trigger,
    );
    let ticker = async {
        let mut last = None;
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let c = counters.lock().unwrap_or_else(|p| p.into_inner()).clone();
            if let Some(c) = c {
                let done = c.logical_bytes.load(std::sync::atomic::Ordering::Relaxed);
                if last != Some(done) {
                    last = Some(done);
                    r.bytes(done, None);
                }
            }
        }
    };
    tokio::select! {
        result = work => result,
        _ = ticker => unreachable!("the ticker never ends"),
    }
}

/// Brings the catalog up to date after the backup (a damaged one is set
/// aside and made again); a catalog problem is a warning (the backup itself
/// is in the store either way, and every operation that reads the catalog
/// catches up first).
async fn follow(ctx: &Context, opened: Option<crate::catalog::Catalog>, r: &dyn Reporter) {
    let caught_up = match opened {
        Some(c) => catalog::catch_up_replacing(ctx, c, false, r).await,
        None => catalog::open(ctx, r).await,
    };
    let result = match caught_up {
        Ok((c, report)) => {
            c.close().await;
            match report {
                Ok(report) => {
                    catalog::report_journal_damage(r, &report.journal_damage, &report.recovered);
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            }
        }
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = result {
        r.warning(format!(
            "the catalog in {} was not updated ({e}); the backup is in the store, \
             and the next command that reads the catalog catches up with it",
            ctx.data_dir.display()
        ));
    }
}
