//! Operations: what a front end asks the engine to do. The CLI now, `n8n-ark
//! serve` (REST API and jobs) and its scheduler next, call them the same way:
//!
//! ```text
//! front end:  request (serde) ─► ops::<op>::run(&Context, request, &dyn Reporter)
//!                                   │ appends its own events, catches the catalog up,
//!                                   │ checks the Context's cancellation between steps
//! front end:  ◄─ outcome (serde)  or  OpError { kind, message, hint, retryable }
//! ```
//!
//! One file per operation (in the manner of rustic_core's `commands/`).
//! Nothing here prints, prompts, exits, installs a signal handler or reads
//! the process environment: what an operation needs arrives in its
//! [`Context`] (the store, the data directory, an [`Environment`] snapshot
//! taken once by the front end, a cancellation, what triggered it) and its
//! request; what it has to say goes to its [`Reporter`] (stages, bytes,
//! items, warnings) and into its outcome.
mod context;
mod error;
mod progress;

pub use context::{Context, Environment, Trigger};
pub use error::{ErrorKind, Hint, OpError, OpResult};
pub use progress::{Collect, NoReport, Progress, Reporter};

pub mod backup;
pub mod catalog;
pub mod check;
pub mod diff;
pub mod gc;
pub mod history;
pub mod init;
pub mod key;
pub mod list;
pub mod policy;
pub mod read;
pub mod repair;
pub mod restore;
pub mod sandbox;
pub mod show;
pub mod verify;
