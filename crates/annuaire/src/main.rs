//! `annuaire`: the command-line door onto the directory. Every rule lives in
//! the `domain` crate and every write in `store`; this file only parses
//! arguments, prints, and turns outcomes into exit statuses
//! (0 imported or dry run, 2 rejected, 1 any other error).

mod bench;
mod cli;
mod commands;
mod output;

use clap::Parser;
use std::process::ExitCode;

/// Exit statuses of the CLI.
pub const EXIT_REJECTED: u8 = 2;

#[tokio::main]
async fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match commands::run(args).await {
        Ok(code) => code,
        Err(e) => {
            // One line, the cause chain joined: what went wrong and what to do.
            let message = e.chain().map(|c| c.to_string()).collect::<Vec<_>>().join(" : ");
            eprintln!("erreur : {message}");
            ExitCode::from(1)
        }
    }
}
