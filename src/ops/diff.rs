//! `diff A B`: what changed from backup A to backup B (workflows down to
//! their nodes, credential names, config files, tables and row counts), from
//! the catalog (see [`super::read`]).
use super::read::{read_catalog, ReadContext};
use super::{OpResult, Reporter};
use crate::catalog::{BackupDiff, Catalog};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Request {
    /// The older backup: an id, a unique prefix of one, `latest` or `latest:KIND`.
    pub from: String,
    /// The newer backup.
    pub to: String,
}

pub async fn run(rc: &ReadContext, req: &Request, r: &dyn Reporter) -> OpResult<BackupDiff> {
    read_catalog(rc, r, async |c: &Catalog| {
        let from = c.resolve(&req.from).await?;
        let to = c.resolve(&req.to).await?;
        c.diff(&from, &to).await
    })
    .await
}
