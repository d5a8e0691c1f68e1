//! Credential references: checked against the target n8n's database, or
//! from what n8n did with each created workflow.
use super::*;

/// One node's reference to a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct NodeRef {
    pub(super) node_index: usize,
    pub(super) node: String,
    pub(super) credential_type: String,
    pub(super) id: Option<String>,
    pub(super) name: Option<String>,
    /// Old style: `{type: "name"}`, or `id: null`.
    pub(super) by_name_only: bool,
}

pub(super) fn id_text(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(super) fn node_refs(nodes: &[Json]) -> Vec<NodeRef> {
    let mut out = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let node = n
            .get("name")
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_string();
        let Some(Json::Object(creds)) = n.get("credentials") else {
            continue;
        };
        for (t, r) in creds.iter() {
            let (id, name, by_name_only) = match r {
                Json::String(s) => (None, Some(s.clone()), true),
                Json::Object(o) => {
                    let id = o.get("id").and_then(id_text);
                    (
                        id.clone(),
                        o.get("name").and_then(Json::as_str).map(String::from),
                        id.is_none(),
                    )
                }
                _ => continue,
            };
            out.push(NodeRef {
                node_index: i,
                node: node.clone(),
                credential_type: t.clone(),
                id,
                name,
                by_name_only,
            });
        }
    }
    out
}

/// The target n8n's credentials: ids, names and types (never their data).
#[derive(Debug, Clone, Default)]
pub struct TargetCredentials {
    pub(super) by_id: HashMap<String, String>,
    pub(super) by_name_type: HashMap<(String, String), Vec<String>>,
}

impl TargetCredentials {
    /// From (id, name, type) rows.
    pub fn new(rows: impl IntoIterator<Item = (String, String, String)>) -> TargetCredentials {
        let mut t = TargetCredentials::default();
        for (id, name, ty) in rows {
            t.by_name_type
                .entry((name, ty.clone()))
                .or_default()
                .push(id.clone());
            t.by_id.insert(id, ty);
        }
        for ids in t.by_name_type.values_mut() {
            ids.sort();
        }
        t
    }

    /// Reads `credentials_entity` (id, name, type) of the target n8n's database.
    pub async fn load(db: &PgTarget) -> std::result::Result<TargetCredentials, SourceError> {
        use sqlx::Connection;
        let mut conn = db.connect().await?;
        let rows: std::result::Result<Vec<(String, String, String)>, sqlx::Error> =
            sqlx::query_as("SELECT id::text, name::text, type::text FROM credentials_entity")
                .fetch_all(&mut conn)
                .await;
        let _ = conn.close().await;
        let rows = rows.map_err(|e| match &e {
            sqlx::Error::Database(d) if d.code().as_deref() == Some("42P01") => {
                SourceError::Database(format!(
                    "{} has no table credentials_entity: is it n8n's database?",
                    db.display()
                ))
            }
            _ => SourceError::Database(format!(
                "reading the credentials' names in {}: {e}",
                db.display()
            )),
        })?;
        Ok(TargetCredentials::new(rows))
    }

    /// What n8n does with a reference: `Ok(None)` it keeps it, `Ok(Some(id))`
    /// it rewrites it to that credential, `Err(why)` it stays dangling.
    pub(super) fn resolve(&self, r: &NodeRef) -> std::result::Result<Option<String>, String> {
        if !r.by_name_only {
            if let Some(id) = &r.id {
                if self.by_id.get(id) == Some(&r.credential_type) {
                    return Ok(None);
                }
            }
        }
        let Some(name) = &r.name else {
            return Err(
                "the target has no credential with this id, and the reference has no name".into(),
            );
        };
        let ids = self
            .by_name_type
            .get(&(name.clone(), r.credential_type.clone()))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        match ids {
            [] => Err(format!(
                "the target has no {} credential with this id or named {name:?}",
                r.credential_type
            )),
            [one] => Ok(Some(one.clone())),
            // n8n takes the first match for old-style references by name.
            [first, ..] if r.by_name_only => Ok(Some(first.clone())),
            many => Err(format!(
                "the target has no credential with this id, and {} {} credentials named {name:?}: \
                 n8n cannot choose",
                many.len(),
                r.credential_type
            )),
        }
    }
}

/// Groups references by credential, listing the nodes using each.
pub(super) fn group_uses(refs: Vec<(NodeRef, String)>) -> Vec<CredentialUse> {
    let mut out: Vec<CredentialUse> = Vec::new();
    for (r, reason) in refs {
        match out
            .iter_mut()
            .find(|u| u.credential_type == r.credential_type && u.id == r.id && u.name == r.name)
        {
            Some(u) => {
                if !u.nodes.contains(&r.node) {
                    u.nodes.push(r.node);
                }
            }
            None => out.push(CredentialUse {
                credential_type: r.credential_type,
                id: r.id,
                name: r.name,
                nodes: vec![r.node],
                reason,
            }),
        }
    }
    out
}

pub(super) fn group_remaps(refs: Vec<(NodeRef, String)>) -> Vec<Remapped> {
    let mut out: Vec<Remapped> = Vec::new();
    for (r, target_id) in refs {
        match out.iter_mut().find(|m| {
            m.credential_type == r.credential_type && m.id == r.id && m.target_id == target_id
        }) {
            Some(m) => {
                if !m.nodes.contains(&r.node) {
                    m.nodes.push(r.node);
                }
            }
            None => out.push(Remapped {
                credential_type: r.credential_type,
                name: r.name,
                id: r.id,
                target_id,
                nodes: vec![r.node],
            }),
        }
    }
    out
}

/// Checks references against the target's credentials.
pub(super) fn check_with_db(
    nodes: &[Json],
    creds: &TargetCredentials,
    result: &mut WorkflowResult,
) {
    let mut missing = Vec::new();
    let mut remapped = Vec::new();
    for r in node_refs(nodes) {
        match creds.resolve(&r) {
            Ok(None) => {}
            Ok(Some(id)) if Some(&id) == r.id.as_ref() => {}
            Ok(Some(id)) => remapped.push((r, id)),
            Err(why) => missing.push((r, why)),
        }
    }
    result.missing_credentials = group_uses(missing);
    result.remapped_credentials = group_remaps(remapped);
}

/// Reads what n8n did with each reference from the created workflow.
pub(super) fn check_with_answer(sent: &[Json], created: &[Json], result: &mut WorkflowResult) {
    let mut missing = Vec::new();
    let mut remapped = Vec::new();
    let mut unchecked = Vec::new();
    for r in node_refs(sent) {
        // n8n keeps the nodes' order; match by name to be sure.
        let node = created
            .get(r.node_index)
            .filter(|n| n.get("name").and_then(Json::as_str) == Some(r.node.as_str()))
            .or_else(|| {
                created
                    .iter()
                    .find(|n| n.get("name").and_then(Json::as_str) == Some(r.node.as_str()))
            });
        let now = node
            .and_then(|n| n.get("credentials"))
            .and_then(|c| c.get(&r.credential_type));
        let now_id = now.and_then(|c| c.get("id"));
        match now_id {
            Some(Json::Null) => missing.push((
                r,
                "n8n found no credential of this type with this name".to_string(),
            )),
            Some(v) => match id_text(v) {
                Some(id) if Some(&id) != r.id.as_ref() => remapped.push((r, id)),
                _ => unchecked.push((
                    r,
                    "n8n kept the id, which it does whether the credential exists or not \
                     (its public API cannot list credentials); configure the target n8n's \
                     database (--n8n-db / ARK_N8N_DB) to check"
                        .to_string(),
                )),
            },
            None => unchecked.push((r, "n8n's answer does not show this reference".to_string())),
        }
    }
    result.missing_credentials = group_uses(missing);
    result.remapped_credentials = group_remaps(remapped);
    result.unchecked_credentials = group_uses(unchecked);
}
