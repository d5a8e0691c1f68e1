//! Operations driven directly, as the service and the scheduler will drive
//! them: a [`Context`] on a store of its own (encrypted, small chunks, a fast
//! key derivation), with its data dir, in a temporary directory.
use n8n_ark::ops::{Context, Environment};
use std::path::PathBuf;
use std::sync::Arc;

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub ctx: Context,
}

impl Fixture {
    /// A new encrypted store and its context (no environment variable set).
    pub async fn new() -> Fixture {
        super::fast_kdf();
        let dir = tempfile::tempdir().unwrap();
        let store = super::new_store(&dir.path().join("store")).await;
        let ctx = Context::new(store, dir.path().join("data"));
        Fixture { dir, ctx }
    }

    /// The same store opened again, as another process would.
    pub async fn reopen(&self) -> Context {
        let store = super::open_store(&self.dir.path().join("store")).await;
        Context::new(store, self.dir.path().join("data"))
    }

    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// This fixture's context with `env`.
    pub fn with_env(&self, env: Environment) -> Context {
        self.ctx.clone().with_env(Arc::new(env))
    }
}
