//! What the operator sees on a terminal, and what a log file gets.
//!
//! - stderr not a terminal (a log file, journald, cron's mail, `2>&1 | tee`):
//!   one structured line per event (time, level, target, fields), a backup's
//!   stages at INFO, never an escape code.
//! - stderr a terminal: a progress bar on long work, which sandbox a
//!   command uses, and warnings and errors, each a plain line (`warning: …`, no time, no target) printed
//!   above the bar, never through it or between results.
//! - `ARK_LOG` (e.g. `info`, `debug`) asks for structured lines at that level,
//!   also on a terminal.
//! - Colour only on a terminal, never when `NO_COLOR` is set (no-color.org).
use std::io::IsTerminal;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Whether a stream that is (or is not) a terminal may get colour.
pub fn colour(is_terminal: bool) -> bool {
    is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Sets up the log lines as above; called once, before the command runs.
pub fn init_logging() {
    let terminal = std::io::stderr().is_terminal();
    let asked = tracing_subscriber::EnvFilter::try_from_env("ARK_LOG").ok();
    let builder = tracing_subscriber::fmt()
        .with_writer(|| AboveTheBar)
        .with_ansi(colour(terminal));
    match asked {
        Some(filter) => builder.with_env_filter(filter).init(),
        None if terminal => builder
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "warn,n8n_ark::sandbox=info",
            ))
            .event_format(Plain)
            .init(),
        None => builder
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "warn,n8n_ark::backup=info,n8n_ark::sandbox=info",
            ))
            .init(),
    }
}

/// `warning: the message key=value`: a log event as a line for a person.
struct Plain;

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        write!(writer, "{level}: ")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// stderr, with the progress bar (if one is drawn) out of the way.
struct AboveTheBar;

impl std::io::Write for AboveTheBar {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // A closed stderr is no reason to stop a command.
        super::stdio::above_the_bar(|| {
            let _ = std::io::stderr().lock().write_all(buf);
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}
