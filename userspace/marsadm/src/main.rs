//! `marsadm`: the admin tool of MARS.
//!
//! marsadm never talks to the kernel through ioctls: it reads what the module publishes
//! (`/proc/mars/status` and the status keys of the /mars tree) and writes switch keys
//! (docs/resource-control.md, docs/marsadm.md). The one command that talks to another host is
//! join-cluster, which fetches a member's tree over the tree channel (docs/cluster.md).

mod checks;
mod cli;
mod cluster;
mod host;
mod members;
mod module_status;
mod output;
mod peer;
mod resource;
mod tree;
mod view;
mod wait;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let json = cli.json;
    match cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            output::print_error(&err, json);
            std::process::ExitCode::FAILURE
        }
    }
}
