//! Choosing the workflows: names, ids, parts of names, tags, `--all`.
use super::*;

/// A workflow to restore, and whether it was named (an archived workflow is
/// restored only when named).
#[derive(Debug, Clone, Copy)]
pub struct Picked<'a> {
    pub workflow: &'a WorkflowEntry,
    pub named: bool,
}

/// Resolves one reference against a backup's workflows: an id, else an exact
/// name, else a unique part of a name (case-insensitive).
pub fn resolve<'a>(
    workflows: &'a [WorkflowEntry],
    reference: &str,
    backup_id: &str,
) -> Result<&'a WorkflowEntry> {
    let r = reference.trim();
    if r.is_empty() {
        return Err(RestoreError::Invalid(
            "an empty workflow name: give an id, a name or a part of a name".into(),
        ));
    }
    if let Some(w) = workflows.iter().find(|w| w.id == r) {
        return Ok(w);
    }
    let pick = |hits: Vec<&'a WorkflowEntry>, how: &str| -> Option<Result<&'a WorkflowEntry>> {
        match hits.len() {
            0 => None,
            1 => Some(Ok(hits[0])),
            n => {
                let list: Vec<String> = hits
                    .iter()
                    .take(10)
                    .map(|w| format!("{} ({:?})", w.id, w.name))
                    .collect();
                Some(Err(RestoreError::Invalid(format!(
                    "{n} workflows of backup {backup_id} {how} {r:?}: {}{}; name one by its id",
                    list.join(", "),
                    if n > 10 { ", ..." } else { "" }
                ))))
            }
        }
    };
    if let Some(res) = pick(
        workflows.iter().filter(|w| w.name == r).collect(),
        "are named",
    ) {
        return res;
    }
    let needle = r.to_lowercase();
    if let Some(res) = pick(
        workflows
            .iter()
            .filter(|w| w.name.to_lowercase().contains(&needle))
            .collect(),
        "have names containing",
    ) {
        return res;
    }
    Err(RestoreError::Invalid(format!(
        "backup {backup_id} has no workflow {r:?} (give its id, its exact name or a unique part \
         of it; `n8n-ark show {backup_id}` lists them)"
    )))
}

/// The workflows a selection picks, in the backup's order, each once.
pub fn select<'a>(
    workflows: &'a [WorkflowEntry],
    selection: &Selection,
    backup_id: &str,
) -> Result<Vec<Picked<'a>>> {
    selection.check()?;
    let mut named = HashSet::new();
    for r in &selection.workflows {
        named.insert(resolve(workflows, r, backup_id)?.id.as_str());
    }
    let needles: Vec<String> = selection
        .name_contains
        .iter()
        .map(|m| m.to_lowercase())
        .collect();
    let tags: Vec<String> = selection.tags.iter().map(|t| t.to_lowercase()).collect();
    let matches = |w: &WorkflowEntry| -> bool {
        if selection.all {
            return true;
        }
        if !selection.filters() {
            return false;
        }
        let name = w.name.to_lowercase();
        (needles.is_empty() || needles.iter().any(|n| name.contains(n)))
            && (tags.is_empty()
                || w.tags
                    .iter()
                    .any(|t| tags.iter().any(|x| *x == t.to_lowercase())))
    };
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for w in workflows {
        let is_named = named.contains(w.id.as_str());
        if (is_named || matches(w)) && seen.insert(w.id.as_str()) {
            out.push(Picked {
                workflow: w,
                named: is_named,
            });
        }
    }
    if out.is_empty() {
        let mut what = Vec::new();
        for m in &selection.name_contains {
            what.push(format!("--match {m:?}"));
        }
        for t in &selection.tags {
            what.push(format!("--tag {t:?}"));
        }
        return Err(RestoreError::Invalid(format!(
            "no workflow of backup {backup_id} matches {} (`n8n-ark show {backup_id}` lists them)",
            what.join(" and ")
        )));
    }
    Ok(out)
}
