//! `history WORKFLOW`: every version of one workflow across the completed
//! backups, from the catalog (see [`super::read`]).
use super::read::{read_catalog, ReadContext};
use super::{OpResult, Reporter};
use crate::catalog::{Catalog, WorkflowHistory};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Request {
    /// The workflow: its id, its name, or a part of its name that only it has.
    pub workflow: String,
}

pub async fn run(rc: &ReadContext, req: &Request, r: &dyn Reporter) -> OpResult<WorkflowHistory> {
    read_catalog(rc, r, async |c: &Catalog| c.history(&req.workflow).await).await
}
