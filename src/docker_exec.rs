//! `docker exec` through bollard, as the dump source (pg_dump, pg_dumpall),
//! the restore tools (pg_restore, psql) and the Docker sandbox run it: one
//! attached exec, its output as a stream, its standard input when asked for.
use bollard::container::LogOutput;
use futures::Stream;
use std::pin::Pin;
use tokio::io::AsyncWrite;

/// The exec's standard output and error, interleaved as Docker sends them.
pub type ExecOutput = Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>;

/// An exec that runs, attached.
pub struct Attached {
    pub id: String,
    pub output: ExecOutput,
    /// The exec's standard input (closed at once unless asked for).
    pub input: Pin<Box<dyn AsyncWrite + Send>>,
}

/// Why an exec could not start, in words for the operator.
#[derive(Debug)]
pub struct ExecError {
    pub message: String,
    /// An engine or network hiccup rather than a missing or stopped container.
    pub retryable: bool,
}

/// The local Docker engine (DOCKER_HOST, else its unix socket).
pub fn connect() -> Result<bollard::Docker, String> {
    bollard::Docker::connect_with_local_defaults()
        .map_err(|e| format!("cannot reach the Docker engine: {e}"))
}

/// What a failed call about `container` means.
pub fn exec_error(container: &str, e: &bollard::errors::Error) -> ExecError {
    let status = match e {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    };
    match status {
        Some(404) => ExecError {
            message: format!("there is no running container {container:?} (docker exec)"),
            retryable: false,
        },
        Some(409) => ExecError {
            message: format!("container {container:?} is not running"),
            retryable: false,
        },
        _ => ExecError {
            message: format!("docker exec in {container:?}: {e}"),
            retryable: true,
        },
    }
}

/// Starts `cmd` with `env` in `container`, attached to its output and, with
/// `stdin`, to its standard input.
#[allow(deprecated)]
pub async fn start(
    docker: &bollard::Docker,
    container: &str,
    cmd: Vec<String>,
    env: Vec<String>,
    stdin: bool,
) -> Result<Attached, ExecError> {
    use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
    let exec = docker
        .create_exec(
            container,
            CreateExecOptions {
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                attach_stdin: Some(stdin),
                tty: Some(false),
                cmd: Some(cmd),
                env: Some(env),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| exec_error(container, &e))?;
    let started = docker
        .start_exec(
            &exec.id,
            Some(StartExecOptions {
                detach: false,
                tty: false,
                output_capacity: Some(1 << 20),
            }),
        )
        .await
        .map_err(|e| exec_error(container, &e))?;
    match started {
        StartExecResults::Attached { output, input } => Ok(Attached {
            id: exec.id,
            output,
            input,
        }),
        StartExecResults::Detached => Err(ExecError {
            message: format!("docker exec in {container:?} did not attach"),
            retryable: true,
        }),
    }
}
