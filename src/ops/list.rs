//! `list`: the backups in the store, oldest first, failed ones included,
//! from the catalog (see [`super::read`] for how it is reached).
use super::read::{read_catalog, ReadContext};
use super::{OpError, OpResult, Reporter};
use crate::catalog::{BackupFilter, BackupRecord, BackupStatus, Catalog};
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Request {
    /// Only backups of this kind (one of [`crate::backup::ALL_KINDS`]).
    pub kind: Option<String>,
    /// Only backups in this state.
    pub status: Option<BackupStatus>,
    /// Include forgotten backups (removed by retention or by hand).
    pub all: bool,
}

/// The backups, in time order (the JSON of `list --json`).
pub type Outcome = Vec<BackupRecord>;

pub async fn run(rc: &ReadContext, req: &Request, r: &dyn Reporter) -> OpResult<Outcome> {
    if let Some(k) = &req.kind {
        if !crate::backup::ALL_KINDS.contains(&k.as_str()) {
            return Err(OpError::invalid(format!(
                "unknown kind {k:?} (one of {})",
                crate::backup::ALL_KINDS.join(", ")
            )));
        }
    }
    let filter = BackupFilter {
        kind: req.kind.clone(),
        status: req.status,
        include_forgotten: req.all,
    };
    read_catalog(rc, r, async |c: &Catalog| c.list_backups(&filter).await).await
}
