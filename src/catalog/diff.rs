//! What changed between two backups, from the catalog alone.
//!
//! Workflows are matched by id:
//! - `added` / `removed`: in one backup only;
//! - `renamed`: the same id under another name (whatever else changed);
//! - `changed`: another version whose nodes, tags or credential references
//!   differ, or whose object differs for a reason a rename or an
//!   (de)activation does not explain (connections, settings): with the nodes
//!   added, removed and changed, by node name, told apart by the nodes' hashes;
//! - `state_changed`: only activated, deactivated, archived or unarchived
//!   (and perhaps renamed).
use super::error::Result;
use super::query::{
    BackupRecord, ConfigFileEntry, CredentialEntry, DatabaseView, LoadedContents, TableEntry,
    WorkflowEntry,
};
use super::Catalog;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use store_format::contents::{CredentialRef, Node};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change<T> {
    pub from: T,
    pub to: T,
}

fn change<T: PartialEq + Clone>(a: &T, b: &T) -> Option<Change<T>> {
    (a != b).then(|| Change {
        from: a.clone(),
        to: b.clone(),
    })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiffSide {
    pub backup_id: String,
    pub kind: String,
    pub started_ms: Option<i64>,
}

impl From<&BackupRecord> for DiffSide {
    fn from(r: &BackupRecord) -> Self {
        DiffSide {
            backup_id: r.backup_id.clone(),
            kind: r.kind.clone(),
            started_ms: r.started_ms,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkflowBrief {
    pub id: String,
    pub name: String,
    pub active: bool,
    pub node_count: u64,
    pub object_id: String,
}

impl From<&WorkflowEntry> for WorkflowBrief {
    fn from(w: &WorkflowEntry) -> Self {
        WorkflowBrief {
            id: w.id.clone(),
            name: w.name.clone(),
            active: w.active,
            node_count: w.node_count,
            object_id: w.object_id.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkflowRenamed {
    pub id: String,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeBrief {
    pub name: String,
    pub node_type: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeChanged {
    pub name: String,
    pub node_type: String,
    /// Set when the node's type changed too.
    pub previous_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkflowChanged {
    pub id: String,
    /// The name in the second backup.
    pub name: String,
    pub previous_name: Option<String>,
    pub object: Change<String>,
    pub version_id: Option<Change<Option<String>>>,
    pub updated_at: Option<Change<Option<String>>>,
    pub nodes_added: Vec<NodeBrief>,
    pub nodes_removed: Vec<NodeBrief>,
    pub nodes_changed: Vec<NodeChanged>,
    pub active: Option<Change<bool>>,
    pub archived: Option<Change<bool>>,
    pub tags_added: Vec<String>,
    pub tags_removed: Vec<String>,
    pub credentials_added: Vec<CredentialRef>,
    pub credentials_removed: Vec<CredentialRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkflowStateChanged {
    pub id: String,
    pub name: String,
    pub active: Option<Change<bool>>,
    pub archived: Option<Change<bool>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WorkflowsDiff {
    pub added: Vec<WorkflowBrief>,
    pub removed: Vec<WorkflowBrief>,
    pub renamed: Vec<WorkflowRenamed>,
    pub changed: Vec<WorkflowChanged>,
    pub state_changed: Vec<WorkflowStateChanged>,
    /// In both backups, same version.
    pub unchanged: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CredentialRenamed {
    pub id: String,
    pub credential_type: String,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CredentialsDiff {
    pub added: Vec<CredentialEntry>,
    pub removed: Vec<CredentialEntry>,
    pub renamed: Vec<CredentialRenamed>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigFileChanged {
    pub path: String,
    /// What changed: `content`, `type`, `mode`, `owner`, `link_target`.
    pub changes: Vec<String>,
    pub from: ConfigFileEntry,
    pub to: ConfigFileEntry,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ConfigFilesDiff {
    /// Present (not missing) in the second backup only.
    pub added: Vec<ConfigFileEntry>,
    /// Present in the first backup only (absent, or missing, in the second).
    pub removed: Vec<ConfigFileEntry>,
    pub changed: Vec<ConfigFileChanged>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableBrief {
    pub schema: String,
    pub name: String,
    pub rows: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowsChanged {
    pub schema: String,
    pub name: String,
    pub from: u64,
    pub to: u64,
    pub delta: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnsChanged {
    pub schema: String,
    pub name: String,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Columns whose type or nullability changed.
    pub altered: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatabaseDiff {
    pub database: String,
    /// `added`, `removed` (the whole database) or `changed`.
    pub status: String,
    pub migration_head: Option<Change<Option<String>>>,
    pub server_version: Option<Change<String>>,
    pub tables_added: Vec<TableBrief>,
    pub tables_removed: Vec<TableBrief>,
    pub rows_changed: Vec<RowsChanged>,
    pub columns_changed: Vec<ColumnsChanged>,
}

/// What changed from backup `from` to backup `to`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackupDiff {
    pub from: DiffSide,
    pub to: DiffSide,
    pub identical: bool,
    pub workflows: WorkflowsDiff,
    pub credentials: CredentialsDiff,
    pub config_files: ConfigFilesDiff,
    /// Databases with any change.
    pub databases: Vec<DatabaseDiff>,
}

fn node_map(nodes: &[Node]) -> BTreeMap<&str, &Node> {
    nodes.iter().map(|n| (n.name.as_str(), n)).collect()
}

fn brief(n: &Node) -> NodeBrief {
    NodeBrief {
        name: n.name.clone(),
        node_type: n.node_type.clone(),
    }
}

fn set_diff<T: Ord + Clone>(a: &[T], b: &[T]) -> (Vec<T>, Vec<T>) {
    let sa: BTreeSet<&T> = a.iter().collect();
    let sb: BTreeSet<&T> = b.iter().collect();
    (
        sb.difference(&sa).map(|x| (*x).clone()).collect(),
        sa.difference(&sb).map(|x| (*x).clone()).collect(),
    )
}

fn diff_workflows(a: &[WorkflowEntry], b: &[WorkflowEntry]) -> WorkflowsDiff {
    let ma: BTreeMap<&str, &WorkflowEntry> = a.iter().map(|w| (w.id.as_str(), w)).collect();
    let mb: BTreeMap<&str, &WorkflowEntry> = b.iter().map(|w| (w.id.as_str(), w)).collect();
    let mut d = WorkflowsDiff::default();
    for (id, w) in &mb {
        if !ma.contains_key(id) {
            d.added.push((*w).into());
        }
    }
    for (id, w) in &ma {
        if !mb.contains_key(id) {
            d.removed.push((*w).into());
        }
    }
    for (id, wa) in &ma {
        let Some(wb) = mb.get(id) else { continue };
        let renamed = wa.name != wb.name;
        let active = change(&wa.active, &wb.active);
        let archived = change(&wa.archived, &wb.archived);
        let (na, nb) = (node_map(&wa.nodes), node_map(&wb.nodes));
        let nodes_added: Vec<NodeBrief> = nb
            .iter()
            .filter(|(k, _)| !na.contains_key(*k))
            .map(|(_, n)| brief(n))
            .collect();
        let nodes_removed: Vec<NodeBrief> = na
            .iter()
            .filter(|(k, _)| !nb.contains_key(*k))
            .map(|(_, n)| brief(n))
            .collect();
        let nodes_changed: Vec<NodeChanged> = na
            .iter()
            .filter_map(|(k, x)| {
                let y = nb.get(k)?;
                (x.hash != y.hash || x.node_type != y.node_type).then(|| NodeChanged {
                    name: y.name.clone(),
                    node_type: y.node_type.clone(),
                    previous_type: (x.node_type != y.node_type).then(|| x.node_type.clone()),
                })
            })
            .collect();
        let (tags_added, tags_removed) = set_diff(&wa.tags, &wb.tags);
        let (credentials_added, credentials_removed) = set_diff(&wa.credentials, &wb.credentials);
        let object_changed = wa.object_id != wb.object_id;
        let explained = renamed || active.is_some() || archived.is_some();
        let content_changed = !nodes_added.is_empty()
            || !nodes_removed.is_empty()
            || !nodes_changed.is_empty()
            || !tags_added.is_empty()
            || !tags_removed.is_empty()
            || !credentials_added.is_empty()
            || !credentials_removed.is_empty()
            || (object_changed && !explained);
        if renamed {
            d.renamed.push(WorkflowRenamed {
                id: id.to_string(),
                from: wa.name.clone(),
                to: wb.name.clone(),
            });
        }
        if content_changed {
            d.changed.push(WorkflowChanged {
                id: id.to_string(),
                name: wb.name.clone(),
                previous_name: renamed.then(|| wa.name.clone()),
                object: Change {
                    from: wa.object_id.clone(),
                    to: wb.object_id.clone(),
                },
                version_id: change(&wa.version_id, &wb.version_id),
                updated_at: change(&wa.updated_at, &wb.updated_at),
                nodes_added,
                nodes_removed,
                nodes_changed,
                active,
                archived,
                tags_added,
                tags_removed,
                credentials_added,
                credentials_removed,
            });
        } else if active.is_some() || archived.is_some() {
            d.state_changed.push(WorkflowStateChanged {
                id: id.to_string(),
                name: wb.name.clone(),
                active,
                archived,
            });
        } else if !renamed {
            d.unchanged += 1;
        }
    }
    d
}

fn diff_credentials(a: &[CredentialEntry], b: &[CredentialEntry]) -> CredentialsDiff {
    let ma: BTreeMap<&str, &CredentialEntry> = a.iter().map(|c| (c.id.as_str(), c)).collect();
    let mb: BTreeMap<&str, &CredentialEntry> = b.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut d = CredentialsDiff::default();
    for c in b {
        match ma.get(c.id.as_str()) {
            None => d.added.push(c.clone()),
            Some(old) if old.name != c.name => d.renamed.push(CredentialRenamed {
                id: c.id.clone(),
                credential_type: c.credential_type.clone(),
                from: old.name.clone(),
                to: c.name.clone(),
            }),
            Some(_) => {}
        }
    }
    for c in a {
        if !mb.contains_key(c.id.as_str()) {
            d.removed.push(c.clone());
        }
    }
    d
}

fn diff_config_files(a: &[ConfigFileEntry], b: &[ConfigFileEntry]) -> ConfigFilesDiff {
    let present = |v: &[ConfigFileEntry]| -> BTreeMap<String, ConfigFileEntry> {
        v.iter()
            .filter(|f| f.file_type != "missing")
            .map(|f| (f.path.clone(), f.clone()))
            .collect()
    };
    let (ma, mb) = (present(a), present(b));
    let mut d = ConfigFilesDiff::default();
    for (p, f) in &mb {
        match ma.get(p) {
            None => d.added.push(f.clone()),
            Some(old) => {
                let mut changes = Vec::new();
                if old.file_type != f.file_type {
                    changes.push("type");
                }
                if old.checksum != f.checksum || old.size != f.size {
                    changes.push("content");
                }
                if old.mode != f.mode {
                    changes.push("mode");
                }
                if old.uid != f.uid || old.gid != f.gid {
                    changes.push("owner");
                }
                if old.link_target != f.link_target {
                    changes.push("link_target");
                }
                if !changes.is_empty() {
                    d.changed.push(ConfigFileChanged {
                        path: p.clone(),
                        changes: changes.into_iter().map(String::from).collect(),
                        from: old.clone(),
                        to: f.clone(),
                    });
                }
            }
        }
    }
    for (p, f) in &ma {
        if !mb.contains_key(p) {
            d.removed.push(f.clone());
        }
    }
    d
}

fn table_brief(t: &TableEntry) -> TableBrief {
    TableBrief {
        schema: t.schema.clone(),
        name: t.name.clone(),
        rows: t.rows,
    }
}

fn diff_database(
    name: &str,
    a: Option<&DatabaseView>,
    b: Option<&DatabaseView>,
) -> Option<DatabaseDiff> {
    let empty = Vec::new();
    let ta = a.map(|d| &d.tables).unwrap_or(&empty);
    let tb = b.map(|d| &d.tables).unwrap_or(&empty);
    let key = |t: &TableEntry| (t.schema.clone(), t.name.clone());
    let ma: BTreeMap<(String, String), &TableEntry> = ta.iter().map(|t| (key(t), t)).collect();
    let mb: BTreeMap<(String, String), &TableEntry> = tb.iter().map(|t| (key(t), t)).collect();
    let mut d = DatabaseDiff {
        database: name.to_string(),
        status: match (a, b) {
            (None, Some(_)) => "added",
            (Some(_), None) => "removed",
            _ => "changed",
        }
        .to_string(),
        migration_head: match (a, b) {
            (Some(x), Some(y)) => change(&x.migration_head, &y.migration_head),
            _ => None,
        },
        server_version: match (a, b) {
            (Some(x), Some(y)) => change(&x.server_version, &y.server_version),
            _ => None,
        },
        tables_added: vec![],
        tables_removed: vec![],
        rows_changed: vec![],
        columns_changed: vec![],
    };
    for (k, t) in &mb {
        match ma.get(k) {
            None => d.tables_added.push(table_brief(t)),
            Some(old) => {
                if old.rows != t.rows {
                    d.rows_changed.push(RowsChanged {
                        schema: t.schema.clone(),
                        name: t.name.clone(),
                        from: old.rows,
                        to: t.rows,
                        delta: t.rows as i64 - old.rows as i64,
                    });
                }
                if old.columns != t.columns {
                    let ca: BTreeMap<&str, _> =
                        old.columns.iter().map(|c| (c.name.as_str(), c)).collect();
                    let cb: BTreeMap<&str, _> =
                        t.columns.iter().map(|c| (c.name.as_str(), c)).collect();
                    let added: Vec<String> = cb
                        .keys()
                        .filter(|k| !ca.contains_key(*k))
                        .map(|k| k.to_string())
                        .collect();
                    let removed: Vec<String> = ca
                        .keys()
                        .filter(|k| !cb.contains_key(*k))
                        .map(|k| k.to_string())
                        .collect();
                    let altered: Vec<String> = ca
                        .iter()
                        .filter(|(k, c)| cb.get(*k).is_some_and(|n| n != *c))
                        .map(|(k, _)| k.to_string())
                        .collect();
                    if !(added.is_empty() && removed.is_empty() && altered.is_empty()) {
                        d.columns_changed.push(ColumnsChanged {
                            schema: t.schema.clone(),
                            name: t.name.clone(),
                            added,
                            removed,
                            altered,
                        });
                    }
                }
            }
        }
    }
    for (k, t) in &ma {
        if !mb.contains_key(k) {
            d.tables_removed.push(table_brief(t));
        }
    }
    let changed = a.is_none()
        || b.is_none()
        || d.migration_head.is_some()
        || d.server_version.is_some()
        || !d.tables_added.is_empty()
        || !d.tables_removed.is_empty()
        || !d.rows_changed.is_empty()
        || !d.columns_changed.is_empty();
    changed.then_some(d)
}

fn diff_contents(
    a: &LoadedContents,
    b: &LoadedContents,
) -> (
    WorkflowsDiff,
    CredentialsDiff,
    ConfigFilesDiff,
    Vec<DatabaseDiff>,
) {
    let names: BTreeSet<&str> = a
        .databases
        .iter()
        .chain(&b.databases)
        .map(|d| d.name.as_str())
        .collect();
    let databases = names
        .into_iter()
        .filter_map(|n| {
            diff_database(
                n,
                a.databases.iter().find(|d| d.name == n),
                b.databases.iter().find(|d| d.name == n),
            )
        })
        .collect();
    (
        diff_workflows(&a.workflows, &b.workflows),
        diff_credentials(&a.credentials, &b.credentials),
        diff_config_files(&a.config_files, &b.config_files),
        databases,
    )
}

impl Catalog {
    /// What changed from backup `from` to backup `to` (both completed, with
    /// their contents in the catalog).
    pub async fn diff(&self, from: &str, to: &str) -> Result<BackupDiff> {
        let (ra, ca) = self.contents_of(from).await?;
        let (rb, cb) = self.contents_of(to).await?;
        let (workflows, credentials, config_files, databases) = diff_contents(&ca, &cb);
        let identical = workflows.added.is_empty()
            && workflows.removed.is_empty()
            && workflows.renamed.is_empty()
            && workflows.changed.is_empty()
            && workflows.state_changed.is_empty()
            && credentials == CredentialsDiff::default()
            && config_files == ConfigFilesDiff::default()
            && databases.is_empty();
        Ok(BackupDiff {
            from: (&ra).into(),
            to: (&rb).into(),
            identical,
            workflows,
            credentials,
            config_files,
            databases,
        })
    }
}
