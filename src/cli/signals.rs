//! SIGINT, SIGTERM and SIGHUP for the commands that stop cleanly (restores,
//! verifications): the CLI installs the handler, the engine sees a
//! [`Cancel`]. The first signal asks the operation to stop at its next safe
//! point (it undoes what it made, tears its sandbox down, records its event
//! and the command exits with 128 + the signal's number); a second one, or
//! the first for a command that cannot stop cleanly, removes the sandboxes
//! of this command's [`super::sandboxes`] manager and exits at once (what is
//! left then is what a killed process leaves: the next run removes it). The
//! engine itself handles no signal.
use crate::cancel::Cancel;
use std::io::Write;

/// What the first signal does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnSignal {
    /// Cancels the operation (it then ends by itself).
    Cancel,
    /// Removes this process's sandboxes and exits.
    Exit,
}

/// The exit status of a command stopped by `reason` (`SIGTERM` → 143).
pub fn exit_code(reason: &str) -> i32 {
    128 + match reason {
        "SIGHUP" => libc::SIGHUP,
        "SIGINT" => libc::SIGINT,
        "SIGTERM" => libc::SIGTERM,
        _ => libc::SIGTERM,
    }
}

/// Installs the handler (inside the runtime; the signals are caught from
/// this call on) and returns the cancellation it drives.
pub fn install(on: OnSignal) -> Cancel {
    use tokio::signal::unix::{signal, SignalKind};
    let cancel = Cancel::new();
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return cancel;
    };
    let c = cancel.clone();
    tokio::spawn(async move {
        let mut first = true;
        loop {
            let name = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
                _ = hup.recv() => "SIGHUP",
            };
            // After SIGHUP the terminal may be gone: never panic on stderr.
            if first && on == OnSignal::Cancel {
                first = false;
                let _ = writeln!(
                    std::io::stderr(),
                    "{name}: stopping at the next safe point (send it again to stop at once)"
                );
                c.cancel(name);
                continue;
            }
            let removed = tokio::task::spawn_blocking(|| super::sandboxes().remove_live_blocking())
                .await
                .unwrap_or_default();
            for line in removed {
                let _ = writeln!(std::io::stderr(), "interrupted: {line}");
            }
            std::process::exit(exit_code(name));
        }
    });
    cancel
}
