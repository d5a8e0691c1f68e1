//! The engine is a library three front ends drive: nothing below `src/cli/`
//! and `src/main.rs` may print, prompt, exit the process, install a signal
//! handler, or read the process's environment (an operation gets what it
//! needs from its Context and its request). The compiler already refuses
//! clap, indicatif and rpassword outside the `cli` feature (`./setup.sh test`
//! builds the engine without it); this test refuses the rest, by reading the
//! engine's source.
//!
//! Reads of the environment not yet moved into the Context are listed in
//! `PENDING_ENV_READS`, each with its file: the list may only shrink (an
//! entry whose read is gone fails too, so that it is taken off).
use std::path::{Path, PathBuf};

/// Never in the engine.
const FORBIDDEN: &[(&str, &str)] = &[
    ("println!", "prints to stdout"),
    ("eprintln!", "prints to stderr"),
    ("print!(", "prints to stdout"),
    ("eprint!(", "prints to stderr"),
    ("std::io::stdout", "writes to stdout"),
    ("std::io::stderr", "writes to stderr"),
    ("std::io::stdin", "reads the terminal"),
    ("process::exit", "exits the process"),
    ("libc::signal(", "installs a signal handler"),
    ("libc::sigaction", "installs a signal handler"),
    ("tokio::signal", "installs a signal handler"),
    ("signal_hook", "installs a signal handler"),
    ("ctrlc::", "installs a signal handler"),
    ("rpassword", "prompts on the terminal"),
    ("indicatif", "draws on the terminal"),
    (
        "clap::",
        "parses a command line (the CLI's value_enums.rs mirrors an engine enum)",
    ),
];

/// Reads of the process's environment.
const ENV_READS: &[&str] = &["env::var(", "env::var_os(", "env::vars(", "env::vars_os("];

/// The one place the environment is read: the snapshot a front end takes
/// once and hands to the Context.
const ENV_SNAPSHOT: &str = "src/ops/context.rs";

/// Environment reads still deep in the engine (file, what it reads). To be
/// moved into the Context; never added to.
const PENDING_ENV_READS: &[(&str, &str)] = &[
    ("src/sandbox/docker.rs", "ARK_SANDBOX_IMAGE"),
    ("src/sandbox/local.rs", "ARK_SANDBOX_TMPDIR"),
    ("src/sandbox/local.rs", "ARK_SANDBOX_PG_ROOT"),
    ("src/sandbox/local.rs", "vars_os"),
    ("src/sandbox/mod.rs", "ARK_PG_CONTAINER"),
    ("src/sandbox/mod.rs", "ARK_SANDBOX_REAPER_BIN"),
    ("src/source/postgres.rs", "PATH"),
    ("src/crypto/mod.rs", "ARK_KDF_TARGET_MS"),
    ("src/store/lock.rs", "ARK_LOCK_REFRESH_MS"),
    ("src/restore/database.rs", "PATH"),
];

/// Exceptions to `FORBIDDEN` (file, pattern, why).
/// Only ever shrinks: an entry whose use is gone fails too.
const ALLOWED: &[(&str, &str, &str)] = &[];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn engine_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join("src"), &mut out);
    out.retain(|p| {
        let rel = rel(p);
        // A module's unit tests in a file of their own (`mod tests;`).
        !rel.starts_with("src/cli/") && rel != "src/main.rs" && !rel.ends_with("/tests.rs")
    });
    out.sort();
    out
}

fn rel(p: &Path) -> String {
    p.strip_prefix(root())
        .unwrap()
        .to_string_lossy()
        .replace('\\', "/")
}

/// The file's code lines (line number, text), comments and tests left out.
fn code_lines(p: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(p).unwrap();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        // Unit tests at the end of a file may print and read what they like.
        if t.starts_with("#[cfg(test)]") {
            break;
        }
        if t.starts_with("//") {
            continue;
        }
        let code = match t.find(" //") {
            Some(at) => &t[..at],
            None => t,
        };
        out.push((i + 1, code.to_string()));
    }
    out
}

#[test]
fn the_engine_never_prints_prompts_exits_or_handles_signals() {
    let files = engine_files();
    assert!(files.len() > 30, "the engine's sources were not found");
    let mut found = Vec::new();
    for f in &files {
        let rel = rel(f);
        for (n, line) in code_lines(f) {
            for (pat, what) in FORBIDDEN {
                if line.contains(pat) && !ALLOWED.iter().any(|(af, ap, _)| *af == rel && ap == pat)
                {
                    found.push(format!("{rel}:{n}: {what} ({pat}): {line}"));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the engine must leave this to its front ends:\n{}",
        found.join("\n")
    );
    for (af, ap, _) in ALLOWED {
        let used = code_lines(&root().join(af))
            .iter()
            .any(|(_, l)| l.contains(ap));
        assert!(used, "{af} no longer uses {ap}: take it off ALLOWED");
    }
}

#[test]
fn the_engine_reads_the_environment_only_through_its_context() {
    let mut found = Vec::new();
    let mut pending_seen = vec![false; PENDING_ENV_READS.len()];
    for f in engine_files() {
        let rel = rel(&f);
        if rel == ENV_SNAPSHOT {
            continue;
        }
        for (n, line) in code_lines(&f) {
            if !ENV_READS.iter().any(|p| line.contains(p)) {
                continue;
            }
            let mut pending = false;
            for (i, (pf, what)) in PENDING_ENV_READS.iter().enumerate() {
                if *pf == rel && line.contains(what) {
                    pending_seen[i] = true;
                    pending = true;
                }
            }
            if !pending {
                found.push(format!("{rel}:{n}: {line}"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "the engine reads the process's environment; take it from the Context (ctx.env) or the request:\n{}",
        found.join("\n")
    );
    let gone: Vec<String> = PENDING_ENV_READS
        .iter()
        .zip(&pending_seen)
        .filter(|(_, seen)| !**seen)
        .map(|((f, what), _)| format!("{f}: {what}"))
        .collect();
    assert!(
        gone.is_empty(),
        "these reads are gone: take them off PENDING_ENV_READS:\n{}",
        gone.join("\n")
    );
}
