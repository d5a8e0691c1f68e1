//! The store's passphrase as the command line gets it: `ARK_PASSWORD_FILE`,
//! `ARK_PASSWORD`, or a prompt on the terminal. (The engine takes a
//! passphrase source and never asks anyone itself.)
use crate::crypto::CryptoError as C;
use zeroize::Zeroizing;

fn from_env(var: &str, file_var: &str) -> Result<Option<Zeroizing<String>>, C> {
    if let Ok(path) = std::env::var(file_var) {
        let s = crate::crypto::read_passphrase_file(file_var, &path)?;
        // One trailing newline is the file's, not the passphrase's.
        let s = s
            .strip_suffix('\n')
            .map(|x| x.strip_suffix('\r').unwrap_or(x))
            .unwrap_or(&s)
            .to_string();
        return Ok(Some(Zeroizing::new(s)));
    }
    Ok(std::env::var(var).ok().map(Zeroizing::new))
}

fn on_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

fn nonempty(p: Zeroizing<String>) -> Result<Zeroizing<String>, C> {
    if p.is_empty() {
        Err(C::EmptyPassphrase)
    } else {
        Ok(p)
    }
}

/// Whether opening a store may ask for its passphrase at the terminal
/// (neither `ARK_PASSWORD_FILE` nor `ARK_PASSWORD` is set and both stdin and
/// stderr are a terminal): a person is then typing, for as long as it takes.
pub fn may_prompt() -> bool {
    std::env::var_os("ARK_PASSWORD_FILE").is_none()
        && std::env::var_os("ARK_PASSWORD").is_none()
        && on_terminal()
}

/// The passphrase that opens a store: `ARK_PASSWORD_FILE`, `ARK_PASSWORD`, or a prompt.
pub fn passphrase() -> Result<Zeroizing<String>, C> {
    if let Some(p) = from_env("ARK_PASSWORD", "ARK_PASSWORD_FILE")? {
        return nonempty(p);
    }
    if !on_terminal() {
        return Err(C::NoPassphrase);
    }
    let p = rpassword::prompt_password("store passphrase: ").map_err(C::Prompt)?;
    nonempty(Zeroizing::new(p))
}

/// A passphrase for a new key: from `var`/`file_var`, or asked twice on a terminal.
pub fn new_passphrase(var: &str, file_var: &str) -> Result<Zeroizing<String>, C> {
    if let Some(p) = from_env(var, file_var)? {
        return nonempty(p);
    }
    if !on_terminal() {
        return Err(if var == "ARK_PASSWORD" {
            C::NoPassphrase
        } else {
            C::NoNewPassphrase
        });
    }
    let a = Zeroizing::new(rpassword::prompt_password("new passphrase: ").map_err(C::Prompt)?);
    let b =
        Zeroizing::new(rpassword::prompt_password("new passphrase again: ").map_err(C::Prompt)?);
    if *a != *b {
        return Err(C::Mismatch);
    }
    nonempty(a)
}
