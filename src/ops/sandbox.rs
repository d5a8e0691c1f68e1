//! `sandbox list|remove`: the temporary PostgreSQL sandboxes n8n-ark made on
//! this machine (verification, restore checks, browsing). They need no
//! store: what the machine holds is read from Docker and the sandboxes'
//! directories.
use super::{OpError, OpResult, Reporter};
use crate::sandbox::{self, SandboxError, SandboxInfo};
use serde::{Deserialize, Serialize};

/// n8n-ark's sandboxes on this machine (containers and directories).
pub async fn list(r: &dyn Reporter) -> OpResult<Vec<SandboxInfo>> {
    r.stage("list sandboxes");
    sandbox::list().await.map_err(OpError::from)
}

#[derive(Debug, Clone, Deserialize)]
pub struct RemoveRequest {
    /// Its name, as `list` gives it (container name or directory).
    pub name: String,
}

/// What `remove` removed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Removed {
    pub removed: String,
}

/// Removes one sandbox by name; a name that is none of ours is an invalid
/// request.
pub async fn remove(req: &RemoveRequest, r: &dyn Reporter) -> OpResult<Removed> {
    r.stage("remove sandbox");
    // `Failed` is the one refusal of `remove`: no sandbox of ours has that name.
    sandbox::remove(&req.name).await.map_err(|e| match e {
        SandboxError::Failed(m) => OpError::invalid(m).with_command("n8n-ark sandbox list"),
        e => OpError::from(e),
    })?;
    Ok(Removed {
        removed: req.name.clone(),
    })
}

/// `reap`: what a sweep removed (the sandboxes whose owner is gone, whose
/// lease went stale, or whose browse idle time passed).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReapRequest {
    /// Stay until no browse sandbox is left, removing each when its idle time
    /// passes (the background reaper `show --table` starts).
    #[serde(default)]
    pub until_empty: bool,
}

/// Removes the leftovers the process's sandbox manager finds; with
/// `until_empty`, stays until no browse sandbox is left (nothing is listed
/// then: they go one by one).
pub async fn reap(
    manager: &crate::sandbox::SandboxManager,
    req: &ReapRequest,
    r: &dyn Reporter,
) -> OpResult<Vec<String>> {
    r.stage("reap sandboxes");
    if req.until_empty {
        sandbox::reap_until_empty().await?;
        return Ok(vec![]);
    }
    Ok(manager.reap().await?)
}
