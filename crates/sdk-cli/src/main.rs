//! `sdk`: see and drive what is on the agent SDK's bus. The guide is docs/cli.md.

// The doc comments of the command line are its help text, which names placeholders
// such as `sdk.<tenant>.…` as people type them, not as HTML.
#![allow(rustdoc::invalid_html_tags)]

mod asyncapi;
mod bench;
mod cli;
mod connect;
mod dlq;
mod error;
mod messages;
mod micro;
mod out;
mod payload;
mod schema;
mod serve;
mod show;
mod streams;
mod yaml;

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser as _};

use crate::cli::{Cli, Command, ServeCommand};
use crate::error::CliError;

fn main() -> ExitCode {
    // Never a backtrace: a bug still ends in one line.
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        out::status(&error::one_line(&format!(
            "error: internal error{location}: {info}; please report it"
        )));
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            out::status(&format!("error: cannot start the async runtime: {e}"));
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(line) = e.line() {
                out::status(&line);
            }
            e.exit_code()
        }
    }
}

/// Help and version print as clap prints them; a bad command line becomes one line.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        // Printing help can only fail when stdout is closed; nothing to add then.
        e.print().ok();
        return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    let rendered = e.render().to_string();
    let mut parts: Vec<String> = Vec::new();
    for line in rendered.lines().map(str::trim) {
        if line.is_empty() || line.starts_with("For more information") {
            continue;
        }
        if line.starts_with("Usage:") {
            break;
        }
        parts.push(line.trim_start_matches("error: ").to_owned());
    }
    let command = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .filter(|a| Cli::command().find_subcommand(a).is_some());
    let help = match command {
        Some(c) => format!("sdk {c} --help"),
        None => "sdk --help".to_owned(),
    };
    out::status(&format!(
        "error: {}; see `{help}`",
        error::one_line(&parts.join(" "))
    ));
    ExitCode::from(2)
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let global = cli.global;
    match cli.command {
        Command::Pub(args) => messages::publish(&global, args).await,
        Command::Sub(args) => messages::subscribe(&global, args).await,
        Command::Req(args) => messages::request(&global, args).await,
        Command::Serve(ServeCommand::Echo(args)) => serve::run(&global, args).await,
        Command::Micro(command) => micro::run(&global, command).await,
        Command::Schema(command) => schema::run(command),
        Command::Dlq(command) => dlq::run(&global, command).await,
        Command::Streams(command) => streams::run(&global, command).await,
        Command::Asyncapi(args) => asyncapi::run(&global, args),
        Command::Bench(args) => bench::run(&global, args).await,
        Command::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "sdk", &mut buf);
            out::line(&String::from_utf8_lossy(&buf))
        }
    }
}
