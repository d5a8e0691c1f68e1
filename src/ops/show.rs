//! `show BACKUP`: what one backup holds (workflows, credential names, config
//! files, database tables), from the catalog without loading the backup
//! (see [`super::read`]); and `show BACKUP --table NAME`: rows of one table
//! of a backed-up database, read from a browse sandbox the dump is loaded
//! into (see [`crate::restore::table`]).
use super::read::{read_catalog, ReadContext};
use super::{Context, OpError, OpResult, Reporter};
use crate::catalog::{BackupView, Catalog, WorkflowFilter};
use crate::restore::table::{TableRequest, TableRows};
use crate::sandbox::SandboxOptions;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Request {
    /// A backup id, a unique prefix of one, `latest` or `latest:KIND`.
    pub backup: String,
    /// Only workflows whose name contains this (any case).
    #[serde(default)]
    pub workflow: Option<String>,
    /// Only active (true) or inactive (false) workflows.
    #[serde(default)]
    pub active: Option<bool>,
    /// Only workflows with this tag.
    #[serde(default)]
    pub tag: Option<String>,
}

pub async fn run(rc: &ReadContext, req: &Request, r: &dyn Reporter) -> OpResult<BackupView> {
    let filter = WorkflowFilter {
        name_contains: req.workflow.clone(),
        active: req.active,
        tag: req.tag.clone(),
    };
    read_catalog(rc, r, async |c: &Catalog| {
        let id = c.resolve(&req.backup).await?;
        c.show(&id, &filter).await
    })
    .await
}

fn default_limit() -> u32 {
    20
}

/// Rows of one table of a backup's database.
#[derive(Debug, Clone, Deserialize)]
pub struct TableReq {
    /// A backup id, a unique prefix of one, `latest` or `latest:KIND`.
    pub backup: String,
    /// The database (default: the n8n database, else the only one).
    #[serde(default)]
    pub database: Option<String>,
    /// `name` or `schema.name`.
    pub table: String,
    /// How many rows (1 to 10000).
    #[serde(default = "default_limit")]
    pub limit: u32,
    /// Skip this many rows first.
    #[serde(default)]
    pub offset: u64,
    /// Highest primary key first.
    #[serde(default)]
    pub descending: bool,
    /// Secret columns unmasked.
    #[serde(default)]
    pub show_secrets: bool,
    /// How long the browse sandbox stays up after its last use (default
    /// [`crate::sandbox::BROWSE_IDLE`]).
    #[serde(default)]
    pub sandbox_idle_secs: Option<u64>,
    /// Where and how the sandbox is made.
    #[serde(default)]
    pub sandbox: SandboxOptions,
}

/// Reads rows of a table of a backup from a browse sandbox (made, or
/// reused while it is up). The table is checked against the backup's
/// manifest before any sandbox is made.
pub async fn table(ctx: &Context, req: &TableReq, r: &dyn Reporter) -> OpResult<TableRows> {
    if !(1..=10000).contains(&req.limit) {
        return Err(OpError::invalid(format!(
            "limit {} is out of range 1..10000",
            req.limit
        )));
    }
    ctx.check_cancelled("before the backup was read")?;
    let catalog = super::catalog::caught_up(ctx, r).await?;
    let chosen = crate::restore::choose_backup(&catalog, &ctx.store, &req.backup).await;
    catalog.close().await;
    let chosen = chosen.map_err(OpError::from)?;
    let treq = TableRequest {
        database: req.database.clone(),
        table: req.table.clone(),
        limit: req.limit,
        offset: req.offset,
        descending: req.descending,
        show_secrets: req.show_secrets,
    };
    let db = crate::restore::table::find_database(&chosen, treq.database.as_deref())
        .map_err(OpError::from)?;
    crate::restore::table::find_table(db, &treq.table).map_err(OpError::from)?;
    let idle = req
        .sandbox_idle_secs
        .map(std::time::Duration::from_secs)
        .unwrap_or(crate::sandbox::BROWSE_IDLE);
    r.stage("read table");
    crate::restore::table::read_table(
        &ctx.store,
        &chosen,
        &treq,
        &req.sandbox,
        idle,
        &ctx.sandbox,
        r,
    )
    .await
    .map_err(OpError::from)
}
