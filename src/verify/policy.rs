//! The verification policy: which verifications run by themselves, and when.
//!
//! A policy is a list of rules, each a level (`exists`, `data`, `restore`)
//! and a schedule:
//! - `after_backup`: each new backup, right after it completes;
//! - `every_n_backups` (n): each nth completed backup of the store (counted
//!   over the journal's `BackupCompleted` events, forgotten backups included,
//!   so the count never moves back);
//! - `percent` (p): each new backup with probability p/100;
//! - `daily`, `weekly`: the newest completed backup, when the newest
//!   completed verification of that level (of any backup) is older than a day
//!   or a week (or there is none);
//! - `manual`: never by itself (it says that level is run by hand).
//!
//! The policy is stored as `VerificationPolicySet` events (each replaces the
//! previous policy whole); with none, the defaults hold: `data` after every
//! backup and `restore` of the newest backup daily. The catalog projects the
//! events into `verification_policy`; what is due is computed from the
//! catalog's copy of the journal (`events`), so it needs no other table.
//!
//! The random draw of `percent` rules comes from the operating system, or,
//! when `ARK_VERIFY_SEED` is set (for tests and reproducible audits), from
//! BLAKE3 of `"n8n-ark verify percent\0" SEED "\0" BACKUP_ID "\0" RULE_INDEX`:
//! the first 8 bytes as a little-endian integer, modulo 100; the backup is
//! chosen when that is below p.
use crate::catalog::{Catalog, CatalogError};
use crate::store::{journal, Store, StoreError};
use serde::Serialize;
use sqlx::Row;
use store_format::event::{VerificationPolicySet, VerificationRule};
use store_format::Event;

/// The environment variable that makes `percent` draws deterministic.
pub const SEED_ENV: &str = "ARK_VERIFY_SEED";

pub const LEVELS: [&str; 3] = ["exists", "data", "restore"];
pub const SCHEDULES: [&str; 6] = [
    "after_backup",
    "every_n_backups",
    "percent",
    "daily",
    "weekly",
    "manual",
];

pub const DAY_MS: i64 = 24 * 3600 * 1000;

/// The rules in force when no policy was ever set.
pub fn default_rules() -> Vec<VerificationRule> {
    vec![
        rule("data", "after_backup", None, None),
        rule("restore", "daily", None, None),
    ]
}

fn rule(level: &str, schedule: &str, n: Option<u32>, percent: Option<u8>) -> VerificationRule {
    VerificationRule {
        level: level.into(),
        schedule: schedule.into(),
        n,
        percent,
    }
}

/// Parses `LEVEL:SCHEDULE[:N]` (`data:after_backup`, `restore:every_n_backups:5`,
/// `data:percent:10`, `restore:weekly`, `exists:manual`).
pub fn parse_rule(s: &str) -> Result<VerificationRule, String> {
    let parts: Vec<&str> = s.trim().split(':').collect();
    let usage = "a rule is LEVEL:SCHEDULE[:N] with LEVEL exists, data or restore and SCHEDULE \
                 after_backup, every_n_backups:N, percent:P, daily, weekly or manual";
    let (level, schedule, arg) = match parts.as_slice() {
        [l, s] => (*l, *s, None),
        [l, s, n] => (*l, *s, Some(*n)),
        _ => return Err(format!("rule {s:?}: {usage}")),
    };
    let level = level.trim().to_ascii_lowercase();
    let schedule = match schedule.trim().to_ascii_lowercase().as_str() {
        "every_n" | "every_n_backups" => "every_n_backups".to_string(),
        other => other.to_string(),
    };
    let arg = match arg {
        None => None,
        Some(a) => Some(
            a.trim()
                .parse::<u32>()
                .map_err(|_| format!("rule {s:?}: {a:?} is not a whole number"))?,
        ),
    };
    let r = match schedule.as_str() {
        "every_n_backups" => rule(&level, &schedule, arg, None),
        "percent" => rule(
            &level,
            &schedule,
            None,
            arg.map(|p| p.min(u8::MAX as u32) as u8),
        ),
        _ if arg.is_some() => {
            return Err(format!(
                "rule {s:?}: the schedule {schedule} takes no number"
            ))
        }
        _ => rule(&level, &schedule, None, None),
    };
    // `percent:300` would be cut to 255 above: check the number as given.
    if r.schedule == "percent" && arg.is_some_and(|p| p > 100) {
        return Err(format!("rule {s:?}: a percentage is 1 to 100"));
    }
    check_rule(&r).map_err(|e| format!("rule {s:?}: {e}"))?;
    Ok(r)
}

/// Checks one rule (as parsed, or as read from an event).
pub fn check_rule(r: &VerificationRule) -> Result<(), String> {
    if !LEVELS.contains(&r.level.as_str()) {
        return Err(format!(
            "unknown level {:?} (exists, data or restore)",
            r.level
        ));
    }
    match r.schedule.as_str() {
        "every_n_backups" => match r.n {
            Some(n) if n >= 1 => {}
            _ => return Err("every_n_backups needs N ≥ 1 (e.g. restore:every_n_backups:5)".into()),
        },
        "percent" => match r.percent {
            Some(p) if (1..=100).contains(&p) => {}
            _ => return Err("percent needs a percentage from 1 to 100 (e.g. data:percent:10)".into()),
        },
        s if SCHEDULES.contains(&s) => {}
        s => {
            return Err(format!(
                "unknown schedule {s:?} (after_backup, every_n_backups:N, percent:P, daily, weekly or manual)"
            ))
        }
    }
    Ok(())
}

/// Checks a whole policy: at least one rule, each valid, none twice.
pub fn check_rules(rules: &[VerificationRule]) -> Result<(), String> {
    if rules.is_empty() {
        return Err(
            "a policy needs at least one rule (LEVEL:manual rules make one that runs nothing by itself)"
                .into(),
        );
    }
    for (i, r) in rules.iter().enumerate() {
        check_rule(r)?;
        if rules[..i].contains(r) {
            return Err(format!("the rule {} is given twice", describe_rule(r)));
        }
    }
    Ok(())
}

/// `LEVEL:SCHEDULE[:N]`, the form `--rule` takes.
pub fn describe_rule(r: &VerificationRule) -> String {
    match (r.schedule.as_str(), r.n, r.percent) {
        ("every_n_backups", Some(n), _) => format!("{}:every_n_backups:{n}", r.level),
        ("percent", _, Some(p)) => format!("{}:percent:{p}", r.level),
        _ => format!("{}:{}", r.level, r.schedule),
    }
}

/// Where the policy in force comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicySource {
    /// No policy was ever set: the defaults.
    Default,
    /// A `VerificationPolicySet` of the journal.
    Set,
}

/// The policy in force.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    pub rules: Vec<VerificationRule>,
    pub source: PolicySource,
    /// The journal record of the `VerificationPolicySet` in force.
    pub seq: Option<u64>,
    pub set_ms: Option<i64>,
    pub set_by: Option<String>,
}

/// The policy in force, from the catalog (caught up by the caller).
pub async fn policy_in_force(catalog: &Catalog) -> Result<Policy, CatalogError> {
    let row = sqlx::query(
        "SELECT seq, set_ms, set_by, rules FROM verification_policy ORDER BY seq DESC LIMIT 1",
    )
    .fetch_optional(catalog.pool())
    .await?;
    let Some(row) = row else {
        return Ok(Policy {
            rules: default_rules(),
            source: PolicySource::Default,
            seq: None,
            set_ms: None,
            set_by: None,
        });
    };
    let rules: String = row.try_get("rules")?;
    let rules: Vec<VerificationRule> = serde_json::from_str(&rules).map_err(|e| {
        CatalogError::NoCatalog(format!(
            "the catalog's verification policy cannot be read ({e}); run `n8n-ark catalog rebuild`"
        ))
    })?;
    Ok(Policy {
        rules,
        source: PolicySource::Set,
        seq: Some(row.try_get::<i64, _>("seq")? as u64),
        set_ms: Some(row.try_get("set_ms")?),
        set_by: Some(row.try_get("set_by")?),
    })
}

/// Every policy ever set, oldest first (the catalog's history of the events).
pub async fn policy_history(catalog: &Catalog) -> Result<Vec<Policy>, CatalogError> {
    let rows =
        sqlx::query("SELECT seq, set_ms, set_by, rules FROM verification_policy ORDER BY seq")
            .fetch_all(catalog.pool())
            .await?;
    rows.iter()
        .map(|row| {
            let rules: String = row.try_get("rules")?;
            Ok(Policy {
                rules: serde_json::from_str(&rules).unwrap_or_default(),
                source: PolicySource::Set,
                seq: Some(row.try_get::<i64, _>("seq")? as u64),
                set_ms: Some(row.try_get("set_ms")?),
                set_by: Some(row.try_get("set_by")?),
            })
        })
        .collect()
}

/// Appends a `VerificationPolicySet` after checking the rules (nothing is
/// written when they are wrong).
pub async fn set_policy(
    store: &Store,
    rules: Vec<VerificationRule>,
    set_by: &str,
) -> Result<VerificationPolicySet, SetError> {
    check_rules(&rules).map_err(SetError::Invalid)?;
    let ev = VerificationPolicySet {
        rules,
        set_by: set_by.to_string(),
    };
    journal::append(store, Event::VerificationPolicySet(ev.clone())).await?;
    Ok(ev)
}

#[derive(Debug, thiserror::Error)]
pub enum SetError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One verification as the journal tells it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    pub verification_id: String,
    pub backup_id: String,
    pub level: String,
    /// `passed`, `failed` (a check did not hold) or `error` (it could not run
    /// to its end: `VerificationFailed`).
    pub result: String,
    pub time_ms: i64,
    pub seq: u64,
    /// The first check that did not hold, or the error, for people.
    pub detail: Option<String>,
}

/// One completed backup as the journal tells it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Completed {
    pub backup_id: String,
    pub kind: String,
    pub time_ms: i64,
    pub seq: u64,
    /// 1 for the store's first completed backup, counting forgotten ones
    /// (safety backups are not counted: they are the restores', not backups
    /// an operator or a schedule took).
    pub ordinal: u64,
    pub forgotten: bool,
    /// A safety backup taken by a restore: never the policy's newest backup.
    pub safety: bool,
}

/// What the journal says about backups and verifications, read from the
/// catalog's copy of it.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub backups: Vec<Completed>,
    pub runs: Vec<Run>,
}

impl History {
    /// The newest completed backup that was not forgotten, nor a restore's
    /// safety backup.
    pub fn newest_backup(&self) -> Option<&Completed> {
        self.backups
            .iter()
            .rev()
            .find(|b| !b.forgotten && !b.safety)
    }

    pub fn backup(&self, backup_id: &str) -> Option<&Completed> {
        self.backups.iter().find(|b| b.backup_id == backup_id)
    }

    /// The newest verification of `level` that ran to its end (passed or not).
    pub fn last_completed(&self, level: &str) -> Option<&Run> {
        self.runs
            .iter()
            .rev()
            .find(|r| r.level == level && r.result != "error")
    }

    /// The newest verification of `level`, whatever its end.
    pub fn last_run(&self, level: &str) -> Option<&Run> {
        self.runs.iter().rev().find(|r| r.level == level)
    }

    /// The verifications of one backup, oldest first.
    pub fn runs_of<'a>(&'a self, backup_id: &'a str) -> impl Iterator<Item = &'a Run> + 'a {
        self.runs.iter().filter(move |r| r.backup_id == backup_id)
    }
}

/// Reads backups and verifications from the catalog's `events`.
pub async fn history(catalog: &Catalog) -> Result<History, CatalogError> {
    let rows = sqlx::query(
        "SELECT seq, time_ms, kind, version, body FROM events \
         WHERE kind IN ('BackupCompleted', 'BackupForgotten', 'VerificationCompleted', 'VerificationFailed') \
         ORDER BY seq",
    )
    .fetch_all(catalog.pool())
    .await?;
    let safety = catalog.safety_backup_ids().await?;
    let mut h = History::default();
    for row in rows {
        let seq = row.try_get::<i64, _>("seq")? as u64;
        let time_ms: i64 = row.try_get("time_ms")?;
        let kind: String = row.try_get("kind")?;
        let version = row.try_get::<i64, _>("version")? as u16;
        let body: Vec<u8> = row.try_get("body")?;
        // A body this reader cannot decode is skipped (as replay keeps it as unknown).
        let Ok(ev) = Event::decode(&kind, version, &body) else {
            continue;
        };
        match ev {
            Event::BackupCompleted(e) => {
                let is_safety = safety.contains(&e.backup_id);
                let ordinal =
                    h.backups.iter().filter(|b| !b.safety).count() as u64 + u64::from(!is_safety);
                h.backups.push(Completed {
                    backup_id: e.backup_id,
                    kind: e.kind,
                    time_ms,
                    seq,
                    ordinal,
                    forgotten: false,
                    safety: is_safety,
                });
            }
            Event::BackupForgotten(e) => {
                for b in h.backups.iter_mut().filter(|b| b.backup_id == e.backup_id) {
                    b.forgotten = true;
                }
            }
            Event::VerificationCompleted(e) => h.runs.push(Run {
                verification_id: e.verification_id,
                backup_id: e.backup_id,
                level: e.level,
                result: if e.passed { "passed" } else { "failed" }.into(),
                time_ms,
                seq,
                detail: e.failures.first().map(describe_check),
            }),
            Event::VerificationFailed(e) => h.runs.push(Run {
                verification_id: e.verification_id,
                backup_id: e.backup_id,
                level: e.level,
                result: "error".into(),
                time_ms,
                seq,
                detail: Some(format!("{}: {}", e.stage, e.message)),
            }),
            _ => {}
        }
    }
    Ok(h)
}

/// One failed check, for people: `row_count n8n.public.x: expected 5, found 4`.
pub fn describe_check(c: &store_format::event::VerificationCheck) -> String {
    format!(
        "{} {}: expected {}, found {}",
        c.check, c.subject, c.expected, c.found
    )
}

/// A verification the policy asks for.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Due {
    pub backup_id: String,
    pub level: String,
    /// The rule that asks for it (`LEVEL:SCHEDULE[:N]`), and why, for people.
    pub rule: String,
    pub reason: String,
}

/// The `percent` draw for one backup and rule: 0 to 99.
pub fn percent_draw(seed: Option<&str>, backup_id: &str, rule_index: usize) -> u8 {
    match seed {
        Some(seed) => {
            let mut h = blake3::Hasher::new();
            h.update(b"n8n-ark verify percent\0");
            h.update(seed.as_bytes());
            h.update(b"\0");
            h.update(backup_id.as_bytes());
            h.update(b"\0");
            h.update(rule_index.to_string().as_bytes());
            let d = h.finalize();
            let mut b = [0u8; 8];
            b.copy_from_slice(&d.as_bytes()[..8]);
            (u64::from_le_bytes(b) % 100) as u8
        }
        None => rand::Rng::gen_range(&mut rand::thread_rng(), 0..100u8),
    }
}

/// The seed of `percent` draws, from `ARK_VERIFY_SEED` (empty: none).
pub fn seed_from_env(env: &crate::ops::Environment) -> Option<String> {
    env.nonempty(SEED_ENV).map(str::to_string)
}

/// What the policy asks for a backup that just completed: its
/// `after_backup`, `every_n_backups` and `percent` rules, each level once
/// (in the order exists, data, restore).
pub fn due_after_backup(policy: &Policy, backup: &Completed, seed: Option<&str>) -> Vec<Due> {
    let mut due: Vec<Due> = Vec::new();
    for (i, r) in policy.rules.iter().enumerate() {
        let reason = match (r.schedule.as_str(), r.n, r.percent) {
            ("after_backup", _, _) => Some("after every backup".to_string()),
            ("every_n_backups", Some(n), _) if n >= 1 && backup.ordinal % n as u64 == 0 => Some(
                format!("backup #{} of the store, every {n} backups", backup.ordinal),
            ),
            ("percent", _, Some(p)) => {
                let draw = percent_draw(seed, &backup.backup_id, i);
                (draw < p).then(|| format!("drawn {draw} < {p} (a random {p}% of backups)"))
            }
            _ => None,
        };
        if let Some(reason) = reason {
            push_due(&mut due, &backup.backup_id, r, reason);
        }
    }
    sort_due(&mut due);
    due
}

/// What the policy asks for now by time: `daily` and `weekly` rules whose
/// level has no completed verification within the period, for the newest
/// backup.
pub fn due_by_time(policy: &Policy, history: &History, now_ms: i64) -> Vec<Due> {
    let mut due: Vec<Due> = Vec::new();
    let Some(newest) = history.newest_backup() else {
        return due;
    };
    for r in &policy.rules {
        let Some(period) = period_ms(&r.schedule) else {
            continue;
        };
        let last = history.last_completed(&r.level);
        let reason = match last {
            None => Some(format!("{}: no {} verification yet", r.schedule, r.level)),
            Some(run) if now_ms - run.time_ms >= period => Some(format!(
                "{}: the last {} verification was {} ago",
                r.schedule,
                r.level,
                fmt_age(now_ms - run.time_ms)
            )),
            Some(_) => None,
        };
        if let Some(reason) = reason {
            push_due(&mut due, &newest.backup_id, r, reason);
        }
    }
    sort_due(&mut due);
    due
}

fn period_ms(schedule: &str) -> Option<i64> {
    match schedule {
        "daily" => Some(DAY_MS),
        "weekly" => Some(7 * DAY_MS),
        _ => None,
    }
}

fn push_due(due: &mut Vec<Due>, backup_id: &str, r: &VerificationRule, reason: String) {
    if due
        .iter()
        .any(|d| d.backup_id == backup_id && d.level == r.level)
    {
        return;
    }
    due.push(Due {
        backup_id: backup_id.to_string(),
        level: r.level.clone(),
        rule: describe_rule(r),
        reason,
    });
}

fn sort_due(due: &mut [Due]) {
    let rank = |l: &str| LEVELS.iter().position(|x| *x == l).unwrap_or(LEVELS.len());
    due.sort_by_key(|d| rank(&d.level));
}

/// `3 h 12 min`, `2 d 4 h`.
pub fn fmt_age(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        3600..=86399 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {} h", s / 86400, (s % 86400) / 3600),
    }
}

/// One rule with what it last did and what it will do.
#[derive(Debug, Clone, Serialize)]
pub struct RuleStatus {
    /// `LEVEL:SCHEDULE[:N]`.
    pub rule: String,
    pub level: String,
    pub schedule: String,
    pub n: Option<u32>,
    pub percent: Option<u8>,
    /// The newest verification of this rule's level (the journal does not say
    /// which rule asked for a verification).
    pub last_run: Option<Run>,
    /// Whether it asks for a verification now (`daily`/`weekly` only: the
    /// others run after backups).
    pub due_now: bool,
    /// When it runs next, for people.
    pub next: String,
}

/// The status of every rule of `policy` at `now_ms`.
pub fn status(policy: &Policy, history: &History, now_ms: i64) -> Vec<RuleStatus> {
    let completed = history.backups.len() as u64;
    policy
        .rules
        .iter()
        .map(|r| {
            let last_run = history.last_run(&r.level).cloned();
            let (due_now, next) = match (r.schedule.as_str(), r.n, r.percent) {
                ("after_backup", _, _) => (false, "after each backup".to_string()),
                ("every_n_backups", Some(n), _) => {
                    let n = n.max(1) as u64;
                    let next = (completed / n + 1) * n;
                    (
                        false,
                        format!(
                            "after backup #{next} of the store ({} more)",
                            next - completed
                        ),
                    )
                }
                ("percent", _, Some(p)) => {
                    (false, format!("after each backup, with probability {p}%"))
                }
                ("daily" | "weekly", _, _) => {
                    let period = period_ms(&r.schedule).unwrap_or(DAY_MS);
                    match (history.newest_backup(), history.last_completed(&r.level)) {
                        (None, _) => (false, "when there is a backup".to_string()),
                        (Some(b), None) => (true, format!("due now (backup {})", b.backup_id)),
                        (Some(b), Some(run)) if now_ms - run.time_ms >= period => {
                            (true, format!("due now (backup {})", b.backup_id))
                        }
                        (Some(_), Some(run)) => (
                            false,
                            format!("in {}", fmt_age(run.time_ms + period - now_ms)),
                        ),
                    }
                }
                _ => (false, "only by hand (n8n-ark verify)".to_string()),
            };
            RuleStatus {
                rule: describe_rule(r),
                level: r.level.clone(),
                schedule: r.schedule.clone(),
                n: r.n,
                percent: r.percent,
                last_run,
                due_now,
                next,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_refuse() {
        assert_eq!(
            parse_rule("restore:every_n_backups:5").unwrap(),
            rule("restore", "every_n_backups", Some(5), None)
        );
        assert_eq!(
            parse_rule("data:percent:10").unwrap(),
            rule("data", "percent", None, Some(10))
        );
        assert_eq!(
            describe_rule(&parse_rule("Data:Daily").unwrap()),
            "data:daily"
        );
        for bad in [
            "data",
            "bogus:daily",
            "data:hourly",
            "data:percent",
            "data:percent:0",
            "data:percent:101",
            "data:percent:300",
            "data:every_n_backups:0",
            "data:daily:3",
            "data:every_n_backups:x",
            "a:b:c:d",
        ] {
            assert!(parse_rule(bad).is_err(), "{bad} accepted");
        }
        let r = parse_rule("data:daily").unwrap();
        assert!(check_rules(&[r.clone(), r]).is_err());
        assert!(check_rules(&[]).is_err());
        assert!(check_rules(&default_rules()).is_ok());
    }

    #[test]
    fn percent_draws_are_reproducible_with_a_seed() {
        let a = percent_draw(Some("s"), "20260101T000000Z-00000001", 0);
        assert_eq!(a, percent_draw(Some("s"), "20260101T000000Z-00000001", 0));
        let draws: Vec<u8> = (0..200)
            .map(|i| percent_draw(Some("s"), &format!("b{i}"), 0))
            .collect();
        let below = draws.iter().filter(|d| **d < 30).count();
        assert!((30..=90).contains(&below), "{below} of 200 below 30");
        assert!(draws.iter().all(|d| *d < 100));
    }

    fn completed(id: &str, ordinal: u64, time_ms: i64) -> Completed {
        Completed {
            backup_id: id.into(),
            kind: "postgres_n8n".into(),
            time_ms,
            seq: ordinal,
            ordinal,
            forgotten: false,
            safety: false,
        }
    }

    #[test]
    fn a_safety_backup_is_never_the_newest_backup() {
        let mut h = History::default();
        h.backups.push(completed("operator", 1, 1_000));
        let mut safety = completed("safety", 1, 2_000);
        safety.safety = true;
        h.backups.push(safety);
        assert_eq!(h.newest_backup().unwrap().backup_id, "operator");
    }

    #[test]
    fn what_is_due() {
        let policy = Policy {
            rules: vec![
                rule("data", "after_backup", None, None),
                rule("restore", "every_n_backups", Some(3), None),
                rule("data", "every_n_backups", Some(1), None),
                rule("exists", "percent", None, Some(100)),
                rule("restore", "daily", None, None),
            ],
            source: PolicySource::Set,
            seq: None,
            set_ms: None,
            set_by: None,
        };
        let d = due_after_backup(&policy, &completed("b2", 2, 0), None);
        let levels: Vec<&str> = d.iter().map(|d| d.level.as_str()).collect();
        assert_eq!(levels, ["exists", "data"]);
        let d = due_after_backup(&policy, &completed("b3", 3, 0), None);
        let levels: Vec<&str> = d.iter().map(|d| d.level.as_str()).collect();
        assert_eq!(levels, ["exists", "data", "restore"]);

        let mut h = History::default();
        assert!(due_by_time(&policy, &h, 10 * DAY_MS).is_empty());
        h.backups.push(completed("b1", 1, 0));
        h.backups.push(completed("b2", 2, DAY_MS));
        let d = due_by_time(&policy, &h, 2 * DAY_MS);
        assert_eq!(d.len(), 1);
        assert_eq!(
            (d[0].backup_id.as_str(), d[0].level.as_str()),
            ("b2", "restore")
        );
        h.runs.push(Run {
            verification_id: "v".into(),
            backup_id: "b1".into(),
            level: "restore".into(),
            result: "failed".into(),
            time_ms: 2 * DAY_MS - 1000,
            seq: 9,
            detail: None,
        });
        assert!(due_by_time(&policy, &h, 2 * DAY_MS).is_empty());
        assert_eq!(due_by_time(&policy, &h, 3 * DAY_MS).len(), 1);
        // A run that could not finish does not count.
        h.runs[0].result = "error".into();
        assert_eq!(due_by_time(&policy, &h, 2 * DAY_MS).len(), 1);
    }
}
