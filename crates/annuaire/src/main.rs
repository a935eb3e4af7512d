//! `annuaire`: the command-line door onto the directory. Every rule lives in
//! the `domain` crate and every write in `store`; this file only parses
//! arguments, prints, and turns outcomes into exit statuses
//! (0 imported or dry run, 2 rejected, 1 any other error).

mod account_commands;
mod admin_commands;
mod cli;
mod commands;
mod history_commands;
mod output;
mod result_file;
mod serve;

use clap::Parser;
use std::process::ExitCode;

/// mimalloc rather than the system allocator: an import makes millions of
/// short-lived strings, and glibc's malloc spent about a third of the plan's
/// time consolidating and splitting its free lists (perf, issue 6).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The journal of what happens out of the admin's sight (background jobs, the
/// scheduled feed, a history line that could not be written) goes to stderr
/// through `tracing`, with structured fields; the commands' own messages stay
/// plain French lines. RUST_LOG overrides the level (default `info`; sqlx's
/// slow-statement warnings only with RUST_LOG=sqlx=warn).
fn init_logging(format: cli::LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=error"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    // A second initialisation (none here) would be the only error: ignore it.
    let _ = match format {
        cli::LogFormat::Text => builder.try_init(),
        cli::LogFormat::Json => builder.json().try_init(),
    };
}

/// `annuaire users search --json | head`: when the reader goes away, stop as
/// other command-line tools do, silently, instead of panicking on the failed
/// write (Rust ignores SIGPIPE, so `println!` would panic). Not for the server,
/// which must outlive its clients.
fn stop_quietly_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: restores the default disposition of one signal before any other
    // thread writes; no handler, no shared state.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Exit statuses of the CLI.
pub const EXIT_REJECTED: u8 = 2;

#[tokio::main]
async fn main() -> ExitCode {
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        Err(e) => {
            // Usage errors exit 1 (2 means "import rejected"); --help exits 0.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 1 } else { 0 });
        }
    };
    init_logging(args.log_format);
    if !matches!(args.command, cli::Command::Serve(_)) {
        stop_quietly_on_closed_pipe();
    }
    match commands::run(args).await {
        Ok(code) => code,
        Err(e) => {
            // One line, the cause chain joined: what went wrong and what to do.
            let mut message = String::new();
            for cause in e.chain().map(|c| c.to_string()) {
                if !message.contains(&cause) {
                    if !message.is_empty() {
                        message.push_str(" : ");
                    }
                    message.push_str(&cause);
                }
            }
            eprintln!("erreur : {message}");
            // A refused action (nothing written, fixable by the admin) exits like a rejected import.
            if e.downcast_ref::<admin_commands::Refused>().is_some() {
                ExitCode::from(EXIT_REJECTED)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
