//! n8n-ark: backups for self-hosted n8n. The engine under the CLI and the service.
pub mod backup;
pub mod cancel;
pub mod catalog;
pub mod child_process;
#[cfg(feature = "cli")]
pub mod cli;
pub mod config;
pub mod crypto;
pub mod docker_exec;
pub mod ops;
pub mod restore;
pub mod sandbox;
pub mod settings;
pub mod source;
pub mod store;
pub mod verify;
