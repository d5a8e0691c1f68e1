//! What n8n-ark asks of the operating system, in one place and through
//! `nix`'s safe calls: whether it runs as root, the ids of an OS user
//! (looked up with the reentrant `getpwnam_r`: safe while other threads look
//! up users too), the host's name, whether a process runs.
use nix::errno::Errno;
use nix::unistd::{Pid, User};

/// Whether the process runs as root (its effective uid is 0).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The process's real uid.
pub fn uid() -> u32 {
    nix::unistd::getuid().as_raw()
}

/// The uid and primary gid of the OS user `name`; `None` when there is no
/// such user (or the user database cannot be read).
pub fn user_ids(name: &str) -> Option<(u32, u32)> {
    match User::from_name(name) {
        Ok(Some(u)) => Some((u.uid.as_raw(), u.gid.as_raw())),
        _ => None,
    }
}

/// The host's name; `None` when the system does not give one.
pub fn host_name() -> Option<String> {
    nix::unistd::gethostname()
        .ok()
        .map(|h| h.to_string_lossy().into_owned())
}

/// Whether a process of this id exists (one of another user's counts: the
/// check is refused, not failed).
pub fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    match nix::sys::signal::kill(Pid::from_raw(pid), None) {
        Ok(()) | Err(Errno::EPERM) => true,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_and_root_are_known() {
        assert!(pid_alive(std::process::id()));
        assert!(!pid_alive(0));
        assert!(!pid_alive(u32::MAX));
        assert_eq!(user_ids("root"), Some((0, 0)));
        assert_eq!(user_ids("no-such-user-of-n8n-ark"), None);
        assert!(!host_name().unwrap_or_default().is_empty());
    }
}
