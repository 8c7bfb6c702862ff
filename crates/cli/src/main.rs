//! `portcullis`: runs the service and drives the API, either in-process against the local store
//! (the bootstrap path, as the machine's administrator) or over HTTP against a running server
//! with an operator token.

mod args;
mod contacts;
mod demo;
mod export;
mod lab;
mod policy;
mod publish;
mod replay;
mod requests;
mod transport;

use anyhow::Context as _;
use args::{Cli, Command, ConfigCommand, MasterKeyCommand};
use clap::Parser as _;
use portcullis_app::clock::SystemClock;
use portcullis_app::ports::Clock as _;
use portcullis_core::redact::{redact_url_credentials, redact_urls_in};
use portcullis_server::config::{Config, EXAMPLE, Settings};
use std::io::Write as _;
use std::process::ExitCode;

/// mimalloc instead of the system allocator: deciding an event allocates many small, short-lived
/// values (JSON, CEL values, rows), and glibc's malloc spent about a fifth of the server's time
/// on them under load (docs/design/decisions.md, "mimalloc is the binary's allocator").
/// Built without the `mimalloc` feature, the binary uses the system allocator, which heap
/// profilers follow.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The server's settings say how many threads its runtime has, so they are read (and
    // checked) before it is built; `run` reads them again to serve.
    let worker_threads = match &cli.command {
        Command::Serve => match settings(&cli) {
            Ok(settings) => {
                without_transparent_huge_pages();
                settings.worker_threads
            }
            Err(error) => return fail(&error),
        },
        _ => 0,
    };
    let runtime = match runtime(worker_threads) {
        Ok(runtime) => runtime,
        Err(error) => return fail(&anyhow::Error::new(error)),
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => fail(&error),
    }
}

/// Turns transparent huge pages off for the server process. mimalloc asks for them on its
/// memory, and the kernel then zeroes 2 MiB inside the page fault of the first write to each:
/// on the threads that answer requests, stalls of 1-8 ms (docs/design/decisions.md, "The server
/// runs without transparent huge pages"). Batch commands such as `replay` keep them: there
/// they save TLB misses and nobody waits on one event.
fn without_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(error) = rustix::thread::disable_transparent_huge_pages(true) {
        // Not fatal: the server only loses the latency it would have gained.
        let _ = writeln!(
            std::io::stderr(),
            "portcullis: transparent huge pages stay on ({error})"
        );
    }
}

/// A runtime with `worker_threads` threads (0: one per core).
fn runtime(worker_threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if worker_threads > 0 {
        builder.worker_threads(worker_threads);
    }
    builder.enable_all().build()
}

fn fail(error: &anyhow::Error) -> ExitCode {
    // Errors from the database driver, NATS or HTTP clients may quote a URL with credentials.
    let message = redact_urls_in(&format!("{error:#}"));
    let _ = writeln!(std::io::stderr(), "portcullis: {message}");
    ExitCode::from(2)
}

fn settings(cli: &Cli) -> anyhow::Result<Settings> {
    let config = Config::load(cli.config.as_deref(), std::env::vars())?;
    Ok(config.settle()?)
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Serve => {
            let settings = settings(&cli)?;
            init_logging(&settings);
            serve(settings).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Config {
            command: ConfigCommand::Example,
        } => print(EXAMPLE),
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            let settings = settings(&cli)?;
            print(&format!(
                "configuration is valid: listening on {}, database {}\n",
                settings.listen,
                redact_url_credentials(&settings.database_url)
            ))
        }
        Command::Openapi => print(&portcullis_server::openapi::document_json()),
        Command::Replay(args) => replay::run(args),
        Command::Simulate(args) => lab::simulate(args),
        Command::Eval(args) => lab::eval(args),
        Command::Demo(args) => {
            init_demo_logging();
            demo::run(args, shutdown_signal()).await
        }
        Command::MasterKey {
            command: MasterKeyCommand::New,
        } => {
            let settings = settings(&cli)?;
            let id = portcullis_server::keyring_file::add_key(
                &settings.keyring_file,
                SystemClock.now(),
            )?;
            print(&format!(
                "added master key {id} to {} and made it active; run `portcullis keys rewrap` to move every secret to it\n",
                settings.keyring_file.display()
            ))
        }
        Command::Publish(args) => {
            publish::check_prefix(&args.subject_prefix)?;
            let url = match &args.nats_url {
                Some(url) => url.clone(),
                None => settings(&cli)?
                    .nats
                    .map(|nats| nats.url)
                    .context("no NATS server: pass --nats-url or configure nats_url")?,
            };
            publish::run(args, &url).await
        }
        Command::Decisions {
            command: args::DecisionsCommand::Export(export),
        } => export::run(&api(&cli).await?, export).await,
        Command::Policy { command } => policy::run(&api(&cli).await?, command).await,
        command => {
            let request = requests::for_command(command)?;
            let response = match (&cli.server, &cli.token) {
                (Some(server), token) => transport::remote(server, token.as_deref(), &request)?,
                (None, _) => {
                    let settings = settings(&cli)?;
                    transport::local(&settings, &request).await?
                }
            };
            if let Command::Contacts {
                command:
                    args::ContactsCommand::Verify {
                        file: Some(file),
                        region,
                        ..
                    },
            } = command
            {
                return contacts::verify_file(file, region.as_deref(), &response);
            }
            transport::render(&request, &response)
        }
    }
}

/// Where a command that makes several requests sends them.
async fn api(cli: &Cli) -> anyhow::Result<transport::Api> {
    transport::Api::for_cli(cli.server.as_deref(), cli.token.as_deref(), || {
        settings(cli)
    })
    .await
}

fn print(text: &str) -> anyhow::Result<ExitCode> {
    std::io::stdout()
        .write_all(text.as_bytes())
        .context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}

/// The demo prints its own story on stdout; the server's log says only what went wrong.
fn init_demo_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_writer(std::io::stderr)
        .init();
}

fn init_logging(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: log files and collectors get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if settings.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = start(&settings).await?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    portcullis_server::serve(listener, app, settings, shutdown_signal()).await?;
    Ok(())
}

/// Opens the store and starts the use cases. Unlike an API caller, the administrator starting
/// the service sees the detail of an internal error (credentials in URLs are redacted by
/// `fail`): "internal error" alone would leave them nothing to fix.
pub(crate) async fn start(settings: &Settings) -> anyhow::Result<portcullis_app::Portcullis> {
    portcullis_server::build_default(settings)
        .await
        .map_err(|error| match error {
            portcullis_app::AppError::Internal(detail) => {
                anyhow::anyhow!("internal error: {detail}")
            }
            other => anyhow::Error::new(other),
        })
        .context("starting portcullis")
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::runtime;

    #[test]
    fn the_runtime_has_the_configured_number_of_workers() {
        assert_eq!(runtime(3).unwrap().metrics().num_workers(), 3);
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(runtime(0).unwrap().metrics().num_workers(), cores);
    }
}
