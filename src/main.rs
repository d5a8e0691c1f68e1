use clap::Parser;
use n8n_ark::cli::{run, Cli};

fn main() {
    let cli = Cli::parse();
    use std::io::IsTerminal;
    // Backups log their stages (structured lines on stderr); on a terminal a
    // progress bar shows instead. ARK_LOG overrides (e.g. `debug`).
    let default_filter = if std::io::stderr().is_terminal() {
        "warn"
    } else {
        "warn,n8n_ark::backup=info"
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ARK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = rt.block_on(run(cli)) {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}
