use n8n_ark::cli::{finish, run, terminal, Cli};

fn main() {
    let cli = Cli::from_args();
    terminal::init_logging();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = rt.block_on(run(cli));
    std::process::exit(finish(result));
}
