//! Standard output and error as a command-line tool writes them. A reader
//! that stops early (`n8n-ark list | head`) closes the pipe: the rest of the
//! output is dropped quietly, the command still finishes what it was doing (a
//! restore is never cut short by its reader going away) and exits with its
//! own status. std's `println!` would panic there ("failed printing to
//! stdout: Broken pipe", exit 101).
//!
//! The macros below shadow std's `println!`, `print!`, `eprintln!` and
//! `eprint!` in every module of the command line (cli/mod.rs declares this
//! module first, so they are in textual scope everywhere after it). The
//! engine below the command line prints nothing.
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// The progress bar on the terminal now, if any: whatever is printed goes
/// above it (the bar is cleared, the line written, the bar drawn again)
/// instead of through it.
static BAR: Mutex<Option<indicatif::ProgressBar>> = Mutex::new(None);

/// Makes `bar` the one lines are printed above (`None`: no bar any more).
pub fn set_progress_bar(bar: Option<indicatif::ProgressBar>) {
    *BAR.lock().unwrap_or_else(|p| p.into_inner()) = bar;
}

/// Runs `write` with the progress bar (if any) out of the way.
pub fn above_the_bar<T>(write: impl FnOnce() -> T) -> T {
    let bar = BAR.lock().unwrap_or_else(|p| p.into_inner()).clone();
    match bar {
        Some(b) => b.suspend(write),
        None => write(),
    }
}

/// Set once stdout cannot be written any more: nothing more is tried.
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);
/// The first write error on stdout other than a closed pipe (a full disk
/// under a redirection): reported at the end, see [`finish`].
static STDOUT_ERROR: Mutex<Option<String>> = Mutex::new(None);

#[doc(hidden)]
pub fn write_stdout(args: std::fmt::Arguments<'_>, newline: bool) {
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    let r = above_the_bar(|| {
        let mut out = std::io::stdout().lock();
        out.write_fmt(args).and_then(|()| {
            if newline {
                out.write_all(b"\n")
            } else {
                Ok(())
            }
        })
    });
    if let Err(e) = r {
        stdout_failed(e);
    }
}

fn stdout_failed(e: std::io::Error) {
    STDOUT_GONE.store(true, Ordering::Relaxed);
    if e.kind() != std::io::ErrorKind::BrokenPipe {
        let mut first = STDOUT_ERROR.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert_with(|| e.to_string());
    }
}

#[doc(hidden)]
pub fn write_stderr(args: std::fmt::Arguments<'_>, newline: bool) {
    // Nowhere to say that stderr failed: what cannot be written is dropped.
    above_the_bar(|| {
        let mut err = std::io::stderr().lock();
        let _ = err.write_fmt(args).and_then(|()| {
            if newline {
                err.write_all(b"\n")
            } else {
                Ok(())
            }
        });
    });
}

/// Flushes stdout at the end of a command. `Err` when the output could not
/// be written for a reason other than its reader going away (a full disk
/// under `> file`): the command's output is incomplete and it must not
/// report success.
pub fn finish() -> Result<(), String> {
    if !STDOUT_GONE.load(Ordering::Relaxed) {
        if let Err(e) = std::io::stdout().lock().flush() {
            stdout_failed(e);
        }
    }
    match STDOUT_ERROR
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    {
        Some(e) => Err(format!("the output could not be written: {e}")),
        None => Ok(()),
    }
}

// `println!` and friends that never panic (see the module's documentation).
macro_rules! println {
    () => { $crate::cli::stdio::write_stdout(format_args!(""), true) };
    ($($arg:tt)*) => { $crate::cli::stdio::write_stdout(format_args!($($arg)*), true) };
}

#[allow(unused_macros)]
macro_rules! print {
    ($($arg:tt)*) => { $crate::cli::stdio::write_stdout(format_args!($($arg)*), false) };
}

macro_rules! eprintln {
    () => { $crate::cli::stdio::write_stderr(format_args!(""), true) };
    ($($arg:tt)*) => { $crate::cli::stdio::write_stderr(format_args!($($arg)*), true) };
}

#[allow(unused_macros)]
macro_rules! eprint {
    ($($arg:tt)*) => { $crate::cli::stdio::write_stderr(format_args!($($arg)*), false) };
}
