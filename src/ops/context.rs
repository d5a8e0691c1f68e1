//! What every operation runs in.
use crate::cancel::Cancel;
use crate::sandbox::SandboxManager;
use crate::settings::Settings;
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Who asked for an operation (recorded in its events, shown in the UI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// Someone ran a command.
    #[default]
    Manual,
    /// A schedule of `n8n-ark serve`.
    Schedule,
    /// A request to the REST API.
    Api,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Manual => "manual",
            Trigger::Schedule => "schedule",
            Trigger::Api => "api",
        }
    }
}

/// The variables of the process environment an operation may use (its
/// `ARK_*` settings, `N8N_ENCRYPTION_KEY`), read once by the front end: the
/// engine never reads the environment itself, so a long-running server
/// decides what each operation sees.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    vars: BTreeMap<String, String>,
}

impl Environment {
    /// An empty environment (no variable set).
    pub fn empty() -> Environment {
        Environment::default()
    }

    /// The process's variables that concern n8n-ark (`ARK_*`, `AWS_*`,
    /// `N8N_ENCRYPTION_KEY`, `PATH`), as they are now. For front ends.
    pub fn capture() -> Environment {
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| {
                k.starts_with("ARK_")
                    || k.starts_with("AWS_")
                    || k == "N8N_ENCRYPTION_KEY"
                    || k == "PATH"
            })
            .collect();
        Environment { vars }
    }

    /// Every variable of the snapshot, by name.
    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }

    /// `name`'s value, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// `name`'s value when set and not blank.
    pub fn nonempty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.trim().is_empty())
    }

    /// With `name` set to `value` (tests, and a server building a job's view).
    pub fn with(mut self, name: &str, value: &str) -> Environment {
        self.vars.insert(name.to_string(), value.to_string());
        self
    }
}

/// What an operation runs in: the store it works on, where the local state
/// (the catalog) lives, the environment snapshot, the sandbox manager, its
/// cancellation and who asked. Cheap to clone; one per operation call
/// (clones share the sandbox manager: one per process).
#[derive(Debug, Clone)]
pub struct Context {
    pub store: Store,
    pub data_dir: PathBuf,
    pub env: Arc<Environment>,
    /// Makes the sandboxes of every operation of this process (their limit,
    /// leases and shutdown): a front end makes one and gives it to each
    /// Context.
    pub sandbox: Arc<SandboxManager>,
    /// The configuration file's settings (empty without one); with `env` and
    /// the request they resolve through [`crate::config::Resolver`].
    pub settings: Arc<Settings>,
    pub cancel: Cancel,
    pub trigger: Trigger,
}

impl Context {
    pub fn new(store: Store, data_dir: impl Into<PathBuf>) -> Context {
        Context {
            store,
            data_dir: data_dir.into(),
            env: Arc::new(Environment::empty()),
            sandbox: Arc::new(SandboxManager::default()),
            settings: Arc::new(Settings::default()),
            cancel: Cancel::default(),
            trigger: Trigger::Manual,
        }
    }

    pub fn with_env(mut self, env: Arc<Environment>) -> Context {
        self.env = env;
        self
    }

    /// With the process's sandbox manager (shared by its operations).
    pub fn with_sandbox(mut self, sandbox: Arc<SandboxManager>) -> Context {
        self.sandbox = sandbox;
        self
    }

    pub fn with_settings(mut self, settings: Arc<Settings>) -> Context {
        self.settings = settings;
        self
    }

    /// The resolver of this operation's configuration (settings, then the
    /// environment snapshot, then the request's overrides).
    pub fn config(&self) -> crate::config::Resolver<'_> {
        crate::config::Resolver::new(&self.settings, &self.env)
    }

    pub fn with_cancel(mut self, cancel: Cancel) -> Context {
        self.cancel = cancel;
        self
    }

    pub fn with_trigger(mut self, trigger: Trigger) -> Context {
        self.trigger = trigger;
        self
    }

    /// An [`super::OpError`] of kind `interrupted` once the operation was asked
    /// to stop: checked at step boundaries.
    pub fn check_cancelled(&self, at: &str) -> super::OpResult<()> {
        match self.cancel.interrupted() {
            Some(why) => Err(super::OpError::interrupted(format!("{why} {at}"))),
            None => Ok(()),
        }
    }
}
