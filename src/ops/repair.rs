//! `repair journal`: after journal damage, what it affects and what a repair
//! would record (a dry run), or the repair itself: records appended for what
//! the store still proves, and the damage acknowledged. Never rewrites or
//! deletes a record. The catalog follows at once.
use super::{catalog, Context, OpError, OpResult, Reporter};
use crate::store::journal_repair::{self, Assessment, RepairReport};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Request {
    /// Append the records (without it: only the plan).
    pub apply: bool,
    /// Who asks, for the `JournalRepaired` event (`user@host`).
    pub repaired_by: String,
}

#[derive(Debug, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// A dry run: what a repair would record; nothing was changed.
    Plan { plan: Assessment },
    /// What the repair appended.
    Repaired { repair: RepairReport },
}

pub async fn run(ctx: &Context, req: &Request, r: &dyn Reporter) -> OpResult<Outcome> {
    r.stage("assess");
    if !req.apply {
        let plan = journal_repair::assess(&ctx.store).await?;
        return Ok(Outcome::Plan { plan });
    }
    ctx.check_cancelled("before anything was appended; nothing was changed")?;
    r.stage("repair");
    let repair = journal_repair::repair(&ctx.store, &req.repaired_by).await?;
    catalog::follow(ctx, r).await;
    let after = journal_repair::assess(&ctx.store).await?;
    if !after.problems.is_empty() {
        return Err(OpError::new(
            super::ErrorKind::Damaged,
            format!(
                "the journal still has {} unrepaired problem(s) (new damage meanwhile?)",
                after.problems.len()
            ),
        )
        .with_command("n8n-ark check"));
    }
    Ok(Outcome::Repaired { repair })
}
