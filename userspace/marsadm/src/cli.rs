//! Command-line surface: global options, subcommands and their dispatch.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::module_status::ModuleStatus;
use crate::output;

/// Admin tool for MARS, asynchronous block-device replication over long distances.
#[derive(Parser, Debug)]
#[command(name = "marsadm", version, about, long_about = None)]
pub struct Cli {
    /// Print machine-readable JSON on stdout instead of text (errors too).
    #[arg(long, global = true)]
    pub json: bool,

    /// Where the module publishes its status (normally /proc/mars).
    #[arg(long, global = true, value_name = "DIR", default_value = "/proc/mars", hide = true)]
    pub proc_dir: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show whether mars.ko is loaded, its version, uptime and number of resources.
    #[command(visible_alias = "status")]
    View,
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::View => {
            let status = ModuleStatus::read(&cli.proc_dir)?;
            output::emit(&status, cli.json)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn json_is_a_global_flag() {
        let cli = Cli::try_parse_from(["marsadm", "view", "--json"]).expect("parses");
        assert!(cli.json);
        let cli = Cli::try_parse_from(["marsadm", "--json", "status"]).expect("parses");
        assert!(cli.json);
    }

    #[test]
    fn unknown_commands_are_rejected() {
        let err = Cli::try_parse_from(["marsadm", "frobnicate"]).unwrap_err();
        assert!(err.to_string().contains("unrecognized subcommand"));
    }
}
