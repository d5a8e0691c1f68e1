//! `check`: the store's structure (config, journal records and chain,
//! manifests, every referenced object present) and with `read_data` every
//! object's content; then the local catalog read whole (a damaged one set
//! aside and made again), which also remembers the journal's problems so
//! that every later operation warns of them until they are repaired.
use super::{catalog, Context, OpResult, Reporter};
use crate::store::check::CheckReport;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Request {
    /// Also read every object and check that it decodes and hashes to its id.
    pub read_data: bool,
}

#[derive(Debug, Serialize)]
pub struct Outcome {
    #[serde(flatten)]
    pub report: CheckReport,
    /// What was found about the local catalog, if anything.
    pub catalog: Option<String>,
}

impl Outcome {
    /// No error found in the store.
    pub fn ok(&self) -> bool {
        self.report.ok()
    }
}

pub async fn run(ctx: &Context, req: &Request, r: &dyn Reporter) -> OpResult<Outcome> {
    r.stage(if req.read_data {
        "check (reading every object)"
    } else {
        "check"
    });
    let report = crate::store::check::run(&ctx.store, req.read_data).await?;
    r.stage("catalog");
    let note = check_catalog(ctx, &report.journal_problems, r).await;
    Ok(Outcome {
        report,
        catalog: note,
    })
}

/// Checks the local catalog's every page; a damaged one is moved aside and
/// rebuilt from the store. Then records the journal's problems in it.
/// Returns what an operator should read about it, if anything.
async fn check_catalog(
    ctx: &Context,
    problems: &[crate::store::journal::JournalProblem],
    r: &dyn Reporter,
) -> Option<String> {
    let (mut cat, caught_up) = match catalog::open(ctx, r).await {
        Ok(c) => c,
        Err(e) => return Some(format!("the catalog could not be opened ({e})")),
    };
    let mut note = None;
    if let Err(e) = &caught_up {
        note = Some(format!(
            "the catalog could not catch up with the store ({e})"
        ));
    }
    if let Err(e) = cat.check_whole().await {
        if e.is_damage() {
            let damaged = e.to_string();
            cat = match cat.replace_damaged(&ctx.data_dir, &ctx.store, &e).await {
                Ok(c) => c,
                Err(e2) => {
                    return Some(format!(
                        "the catalog is damaged ({damaged}) and could not be replaced ({e2})"
                    ))
                }
            };
            let rebuilt = cat.catch_up(&ctx.store).await;
            note = Some(format!(
                "the catalog was damaged ({damaged}): {}{}",
                cat.set_aside()
                    .map(|a| format!("moved aside to {} and ", a.moved_to.display()))
                    .unwrap_or_default(),
                match rebuilt {
                    Ok(_) => "made again from the store".to_string(),
                    Err(e) => format!("its rebuild from the store failed ({e})"),
                }
            ));
        } else {
            note = Some(format!("the catalog could not be checked ({e})"));
        }
    }
    if !problems.is_empty() {
        if let Err(e) = cat.note_journal_problems(problems).await {
            r.warning(format!(
                "the catalog could not record the journal's problems ({e})"
            ));
        }
    }
    cat.close().await;
    note
}
