//! Programs n8n-ark runs for its work (`pg_dump`, `pg_dumpall`,
//! `pg_restore`) die with it: a command that is killed outright (SIGKILL,
//! the OOM killer) must not leave a dump holding a snapshot open, or a
//! restore writing into a database nobody watches.

/// Makes the child die (SIGKILL) when this process does
/// (`PR_SET_PDEATHSIG`), checked against a parent that already exited
/// between the fork and the `prctl`.
///
/// `PR_SET_PDEATHSIG` is bound to the thread that forks: spawn from a
/// runtime worker or the main thread (they live as long as the process),
/// never from a short-lived thread (e.g. `spawn_blocking`, whose threads end
/// when idle).
pub fn die_with_parent(cmd: &mut tokio::process::Command) {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls (prctl, getppid) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                return Err(std::io::Error::other("the parent process is gone"));
            }
            Ok(())
        });
    }
}
