//! The sandbox flags a command flattens into its arguments, turned into the
//! engine's [`SandboxOptions`].
use super::value_enums::SandboxArg;
use crate::sandbox::{parse_cpus, parse_memory, SandboxKind, SandboxOptions};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct SandboxArgs {
    /// Where to restore for verification or browsing: docker (a container of
    /// the image below) or local (initdb in a temporary directory). Default:
    /// docker when an engine answers and an image is known, else local.
    #[arg(long = "sandbox", env = "ARK_SANDBOX", value_enum)]
    pub sandbox: Option<SandboxArg>,
    /// Docker: the PostgreSQL image of the sandbox (default: the image of the
    /// n8n postgres container: --pg-container, ARK_PG_CONTAINER or the config
    /// file's [postgres] container).
    #[arg(long = "sandbox-image", env = "ARK_SANDBOX_IMAGE")]
    pub sandbox_image: Option<String>,
    /// Docker: memory limit of the sandbox, e.g. 2g, 512m (bytes without a suffix).
    #[arg(long = "sandbox-memory", env = "ARK_SANDBOX_MEMORY", value_parser = parse_memory)]
    pub sandbox_memory: Option<i64>,
    /// Docker: CPU limit of the sandbox, e.g. 1.5.
    #[arg(long = "sandbox-cpus", env = "ARK_SANDBOX_CPUS", value_parser = parse_cpus)]
    pub sandbox_cpus: Option<f64>,
}

impl SandboxArgs {
    /// The engine's options, with the n8n postgres container the command
    /// knows of (flag, variable or config file).
    pub fn options(&self, pg_container: Option<String>) -> SandboxOptions {
        SandboxOptions {
            sandbox: self.sandbox.map(SandboxKind::from),
            sandbox_image: self.sandbox_image.clone(),
            sandbox_memory: self.sandbox_memory,
            sandbox_cpus: self.sandbox_cpus,
            pg_container,
        }
    }
}
