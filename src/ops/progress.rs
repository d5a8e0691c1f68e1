//! Progress: one shape for every long operation. The CLI draws it (a bar on a
//! terminal, log lines otherwise); the server streams the same events as
//! server-sent events and keeps them with the job.
use serde::Serialize;
use std::sync::Mutex;

/// One thing an operation reports while it runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Progress {
    /// A step begins (e.g. `snapshot`, `dump`, `mark`, `sweep`).
    Stage { name: String },
    /// Bytes done so far, of `total` when known.
    Bytes { done: u64, total: Option<u64> },
    /// One thing handled (a workflow, a database, a file, an object batch).
    Item {
        name: String,
        outcome: String,
        detail: String,
    },
    /// Something an operator should know that is not a failure.
    Warning { message: String },
    /// A part of the outcome ready before the operation ends (a backup's
    /// summary before the verifications the policy asks for; each of those
    /// as it begins and ends): `name` says which, `value` is its JSON.
    Partial {
        name: String,
        value: serde_json::Value,
    },
}

/// Where an operation's progress goes.
pub trait Reporter: Send + Sync {
    fn report(&self, p: Progress);

    fn stage(&self, name: &str) {
        self.report(Progress::Stage { name: name.into() });
    }
    fn bytes(&self, done: u64, total: Option<u64>) {
        self.report(Progress::Bytes { done, total });
    }
    fn partial(&self, name: &str, value: serde_json::Value) {
        self.report(Progress::Partial {
            name: name.into(),
            value,
        });
    }
    fn warn(&self, message: impl Into<String>)
    where
        Self: Sized,
    {
        self.report(Progress::Warning {
            message: message.into(),
        });
    }
}

impl dyn Reporter + '_ {
    /// [`Reporter::warn`] on a trait object.
    pub fn warning(&self, message: impl Into<String>) {
        self.report(Progress::Warning {
            message: message.into(),
        });
    }
}

/// Reports nowhere.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoReport;

impl Reporter for NoReport {
    fn report(&self, _: Progress) {}
}

/// Keeps everything reported (tests; a job's log).
#[derive(Debug, Default)]
pub struct Collect(Mutex<Vec<Progress>>);

impl Collect {
    pub fn new() -> Collect {
        Collect::default()
    }
    pub fn events(&self) -> Vec<Progress> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    pub fn warnings(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|p| match p {
                Progress::Warning { message } => Some(message),
                _ => None,
            })
            .collect()
    }
}

impl Reporter for Collect {
    fn report(&self, p: Progress) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(p);
    }
}
