//! Command-line surface: global options, subcommands and their dispatch.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

use mars_core::lamport::Stamp;

use crate::cluster;
use crate::host;
use crate::module_status::ModuleStatus;
use crate::output;
use crate::tree::Tree;

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

    /// The /mars filesystem holding the cluster tree and the logfiles.
    #[arg(long, global = true, value_name = "DIR", default_value = "/mars", hide = true)]
    pub mars_dir: PathBuf,

    /// Act as this host instead of the kernel's host name.
    #[arg(long, global = true, value_name = "NAME")]
    pub host: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show whether mars.ko is loaded, its version, uptime and number of resources.
    #[command(visible_alias = "status")]
    View,
    /// Create a new cluster in /mars with this host as its first member.
    CreateCluster {
        /// This host's address for its peers (default: its first global IPv4 address).
        #[arg(long, value_name = "ADDRESS")]
        ip: Option<String>,
    },
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::View => {
            let status = ModuleStatus::read(&cli.proc_dir)?;
            output::emit(&status, cli.json)
        }
        Command::CreateCluster { ip } => {
            host::require_root()?;
            host::require_mars_filesystem(&cli.mars_dir)?;
            let me = host::host_name(cli.host.as_deref())?;
            let address = match ip {
                Some(ip) => ip,
                None => host::default_address()?,
            };
            let seen = ModuleStatus::read(&cli.proc_dir).map(|s| s.lamport).unwrap_or(Stamp::ZERO);
            let mut tree = Tree::new(&cli.mars_dir, &me, seen);
            let now_secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let created = cluster::create_cluster(&mut tree, &me, &address, now_secs)?;
            output::emit(&created, cli.json)
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
