//! `gc`: deletes what no backup references (see `store::gc` for the protocol
//! that keeps it safe while backups run). Backups whose process stopped are
//! recorded first; the catalog follows the collection's event.
use super::{catalog, Context, OpResult, Reporter};
use crate::store::gc::{GcOptions, GcReport};
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Request {
    /// Report what would be freed; change nothing.
    pub dry_run: bool,
    /// Longest wait for running backups before leaving the set-aside objects
    /// for the next collection.
    pub max_wait_secs: u64,
}

impl Default for Request {
    fn default() -> Request {
        Request {
            dry_run: false,
            max_wait_secs: 3600,
        }
    }
}

pub async fn run(ctx: &Context, req: &Request, r: &dyn Reporter) -> OpResult<GcReport> {
    ctx.check_cancelled("before the collection began; nothing was changed")?;
    r.stage(if req.dry_run { "gc (dry run)" } else { "gc" });
    let opts = GcOptions {
        dry_run: req.dry_run,
        max_wait: Duration::from_secs(req.max_wait_secs),
    };
    let report = crate::store::gc::run(&ctx.store, &opts).await?;
    if !req.dry_run {
        catalog::follow(ctx, r).await;
    }
    Ok(report)
}
