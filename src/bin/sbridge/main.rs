//! `sbridge`: the command-line tool of the `sbridge` crate (feature `cli`).
//!
//! ```text
//! sbridge fit      --data X.csv|X.npy --eps 0.1 [--beta -0.2] [--scales std|FILE]
//!                  [--layout single|stencil:R|closure:K,BLOCKS,R|temporal:S|heads:FILE]
//!                  [--f32] --out model.sbm
//! sbridge sample   --model model.sbm --n N [--steps S] [--scheme isotropic|covariance]
//!                  [--condition 'c=v,c=v'] [--write projected|half] [--seed S] --out out.csv|.npy
//! sbridge inspect  model.sbm
//! sbridge demo lorenz96 [--quick|--paper] [--memory] [--psi-step closure|integrator]
//!                  [--seed S] [--threads N] [--out DIR]
//! ```
//!
//! Exit codes: 0 success; 2 usage error or bad input (one line `error: ...` on stderr naming the
//! file, line or parameter); 1 internal failure (e.g. a fit that does not converge). No command
//! leaves a partial output file behind: every output is written to a temporary file next to its
//! destination and renamed into place once complete.

/// `Err(CliError::Input(format!(...)))`.
macro_rules! bad_input {
    ($($t:tt)*) => {
        Err(crate::CliError::Input(format!($($t)*)))
    };
}

mod args;
mod demo;
mod fit;
mod inspect;
mod io;
mod layout_spec;
mod parallel;
mod progress;
mod sample;
mod svg;

use clap::Parser;
use std::fmt;
use std::process::ExitCode;

/// A failure of a command: bad input (exit code 2) or an internal failure (exit code 1).
#[derive(Debug)]
pub enum CliError {
    /// Usage error or bad input: a missing or malformed file, an impossible parameter.
    Input(String),
    /// Everything else: a fit that does not converge, a simulation that fails, an I/O failure
    /// while writing.
    Internal(String),
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Input(_) => 2,
            CliError::Internal(_) => 1,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (CliError::Input(m) | CliError::Internal(m)) = self;
        // One line, always: a message is never allowed to spill over several lines.
        f.write_str(&m.replace('\n', " "))
    }
}

/// Result of a command.
pub type CliResult<T> = Result<T, CliError>;

fn main() -> ExitCode {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                        ExitCode::from(2)
                    } else {
                        ExitCode::SUCCESS
                    };
                }
                _ => {
                    // clap's message spans several lines (message, details, usage): join
                    // everything before the usage into one line.
                    let text = e.render().to_string();
                    let parts: Vec<&str> = text
                        .lines()
                        .take_while(|l| !l.starts_with("Usage:"))
                        .map(str::trim)
                        .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
                        .collect();
                    let msg = if parts.is_empty() {
                        String::from("error: invalid arguments")
                    } else {
                        parts.join(" ")
                    };
                    eprintln!("{msg} (see --help)");
                    return ExitCode::from(2);
                }
            }
        }
    };
    let result = match cli.command {
        args::Command::Fit(a) => fit::run(&a),
        args::Command::Sample(a) => sample::run(&a),
        args::Command::Inspect(a) => inspect::run(&a),
        args::Command::Demo(args::DemoCommand::Lorenz96(a)) => demo::run(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
