//! Command-line surface: global options, subcommands and their dispatch.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use mars_core::lamport::Stamp;
use mars_core::proto::Channel;
use mars_core::resource_keys::Switch;
use mars_core::session::SECRET_LEN;

use crate::checks::{self, Target};
use crate::cluster;
use crate::host;
use crate::members;
use crate::module_status::ModuleStatus;
use crate::output;
use crate::peer;
use crate::resource::{self, Ctx, Report};
use crate::tree::{self, Tree};
use crate::view::{self, View};

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

    /// How long to wait for mars.ko to carry out a command, in seconds.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 30)]
    pub timeout: u64,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show whether mars.ko is loaded and the state of the resources on this host.
    #[command(visible_alias = "status")]
    View {
        /// One resource, or `all`.
        #[arg(value_name = "NAME|all", default_value = "all")]
        resource: String,
    },
    /// Create a new cluster in /mars with this host as its first member.
    CreateCluster {
        /// This host's address for its peers (default: its first global IPv4 address).
        #[arg(long, value_name = "ADDRESS")]
        ip: Option<String>,
    },
    /// Join the cluster of PEER (a member's host name or IP address): fetch its tree, add this host.
    JoinCluster {
        /// A member of the cluster: host name, IPv4 or IPv6 address.
        peer: String,
        /// This host's address for its peers (default: its first global IPv4 address).
        #[arg(long, value_name = "ADDRESS")]
        ip: Option<String>,
        /// The cluster secret, copied from a member's /mars/.secret (default: /mars/.secret).
        #[arg(long, value_name = "FILE")]
        secret_file: Option<PathBuf>,
    },
    /// Leave the cluster (refused while this host still belongs to a resource).
    LeaveCluster,
    /// Try the handshake with PEER on every channel: is it reachable, and does it take this
    /// host's secret?
    CheckPeer {
        /// A member: host name, IPv4 or IPv6 address.
        peer: String,
        /// The cluster secret to prove (default: /mars/.secret).
        #[arg(long, value_name = "FILE")]
        secret_file: Option<PathBuf>,
    },
    #[command(flatten)]
    Resource(ResourceCommand),
}

/// The subcommands that act on resources: they need root, the module and a mounted /mars.
#[derive(Subcommand, Debug)]
pub enum ResourceCommand {
    /// Create a resource with its data on DEVICE and this host as its primary.
    CreateResource {
        /// The resource name (at most 26 bytes); the device appears as /dev/mars/NAME.
        name: String,
        /// The backing block device, e.g. /dev/vg0/r0.
        device: PathBuf,
        /// Size in bytes, a multiple of 4096 (default: the whole device).
        #[arg(long, value_name = "BYTES")]
        size: Option<u64>,
    },
    /// Join resource NAME as a secondary, its copy on DEVICE (at least the resource's size).
    JoinResource {
        /// The resource.
        name: String,
        /// The block device for this host's copy, e.g. /dev/vg0/r0.
        device: PathBuf,
    },
    /// Leave resource NAME: this host keeps no copy any more (refused on the primary).
    LeaveResource {
        /// The resource.
        name: String,
    },
    /// Make this host primary: /dev/mars/NAME appears here.
    Primary {
        /// The resource.
        name: String,
        /// Take over even if another host is the designated primary (with no peers yet, the
        /// same as without it).
        #[arg(long)]
        force: bool,
    },
    /// Make no host primary: /dev/mars/NAME goes away.
    Secondary {
        /// The resource.
        name: String,
    },
    /// Attach the backing device (and bring /dev/mars/NAME back if this host is primary).
    Up {
        /// One resource, or `all`.
        #[arg(value_name = "NAME|all")]
        resource: String,
    },
    /// Stop being primary, then detach the backing device.
    Down {
        /// One resource, or `all`.
        #[arg(value_name = "NAME|all")]
        resource: String,
    },
    /// Start a new logfile.
    LogRotate {
        /// The resource.
        name: String,
    },
    /// Delete the logfiles that are completely written back to the backing device.
    LogDelete {
        /// The resource.
        name: String,
        /// A member whose replay position this delete does not wait for (it will need a sync);
        /// may be given more than once.
        #[arg(long, value_name = "HOST")]
        leave_behind: Vec<String>,
    },
    /// Delete a resource that is down: its keys and logfiles go, its backing device stays.
    DeleteResource {
        /// The resource.
        name: String,
    },
    /// Stop applying the fetched log to this secondary's data device (fetching goes on).
    PauseReplay {
        /// The resource.
        name: String,
    },
    /// Apply the fetched log again.
    ResumeReplay {
        /// The resource.
        name: String,
    },
    /// Wait until this secondary has replayed what the primary had logged when the call began,
    /// and its data device is consistent.
    WaitReplay {
        /// The resource.
        name: String,
    },
    /// Sync this secondary again from its primary (fast: only blocks that differ).
    Invalidate {
        /// The resource.
        name: String,
        /// Copy every block, without comparing digests first.
        #[arg(long)]
        full: bool,
    },
    /// Stop this secondary's sync (it resumes where it stopped).
    PauseSync {
        /// The resource.
        name: String,
    },
    /// Let this secondary's sync go on.
    ResumeSync {
        /// The resource.
        name: String,
    },
    /// Stop fetching the primary's log here (sync and replay stop with it).
    PauseFetch {
        /// The resource.
        name: String,
    },
    /// Fetch the primary's log again.
    ResumeFetch {
        /// The resource.
        name: String,
    },
    /// Limit the block data this host's syncs of the resource fetch, in bytes per second.
    SetSyncRate {
        /// The resource.
        name: String,
        /// Bytes per second, with an optional binary suffix (`k`, `M`, `G`), or `0` / `unlimited`.
        rate: String,
    },
    /// Limit the logfile data this host fetches for the resource, in bytes per second.
    SetFetchRate {
        /// The resource.
        name: String,
        /// Bytes per second, with an optional binary suffix (`k`, `M`, `G`), or `0` / `unlimited`.
        rate: String,
    },
    /// Wait until this secondary's sync has copied the whole device.
    WaitSync {
        /// The resource.
        name: String,
    },
    /// Wait until mars.ko has carried out the resource's switches.
    WaitResource {
        /// One resource, or `all`.
        #[arg(value_name = "NAME|all")]
        resource: String,
    },
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::View { resource } => {
            let view = view(&cli, &Target::parse(resource)?)?;
            output::emit(&view, cli.json)
        }
        Command::CreateCluster { ip } => {
            host::require_root()?;
            host::require_mars_filesystem(&cli.mars_dir)?;
            let me = host::host_name(cli.host.as_deref())?;
            let address = match ip {
                Some(ip) => ip.clone(),
                None => host::default_address()?,
            };
            let module = ModuleStatus::read(&cli.proc_dir).ok();
            let seen = module.as_ref().map(|s| s.lamport).unwrap_or(Stamp::ZERO);
            let mut tree = Tree::new(&cli.mars_dir, &me, seen);
            let now_secs =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            let secret: [u8; SECRET_LEN] = peer::random_bytes()?;
            let created = cluster::create_cluster(&mut tree, &me, &address, now_secs, &secret)?;
            // With mars.ko loaded, the command returns once other hosts can join (the strategy
            // thread opens the listeners on its next round), or says why they cannot yet.
            // Without it, the tree is ready for the module's first load.
            if module.is_some() {
                let tried =
                    wait_module(&cli, Duration::from_secs(cli.timeout), "to try listening for joining hosts", |s| {
                        s.cluster == "member" && (s.listen.is_some() || s.listen_error.is_some())
                    })?;
                if let Some(why) = tried.listen_error {
                    eprintln!("marsadm: warning: other hosts cannot join yet, mars.ko does not listen: {why}");
                }
            }
            output::emit(&created, cli.json)
        }
        Command::JoinCluster { peer, ip, secret_file } => {
            let joined = join(&cli, peer, ip.as_deref(), secret_file.as_deref())?;
            output::emit(&joined, cli.json)
        }
        Command::CheckPeer { peer, secret_file } => {
            let me = host::host_name(cli.host.as_deref())?;
            let secret =
                cluster::read_secret(&secret_file.clone().unwrap_or_else(|| cli.mars_dir.join(cluster::SECRET_FILE)))?;
            let port = ModuleStatus::read(&cli.proc_dir).ok().and_then(|s| s.port).unwrap_or(7777);
            let ip = peer::resolve(peer, 0)?.ip();
            let timeout = Duration::from_secs(cli.timeout.clamp(1, 30));
            let report = PeerCheck {
                peer: peer.clone(),
                channels: peer::check_channels(ip, port as u16, &me, &secret, timeout),
            };
            output::emit(&report, cli.json)?;
            if report.channels.iter().any(|c| c.error.is_some()) {
                anyhow::bail!("{peer} refused or did not answer on some channel (see above)");
            }
            Ok(())
        }
        Command::LeaveCluster => {
            host::require_root()?;
            let module = ModuleStatus::read(&cli.proc_dir)?;
            host::require_mars_filesystem(&cli.mars_dir)?;
            let me = host::host_name(cli.host.as_deref())?;
            let mut tree = Tree::new(&cli.mars_dir, &me, module.lamport);
            let left = cluster::leave_cluster(&mut tree, &me)?;
            wait_module(&cli, Duration::from_secs(cli.timeout), "to see that this host left", |s| {
                s.cluster != "member"
            })?;
            output::emit(&left, cli.json)
        }
        Command::Resource(command) => {
            let mut ctx = resource_ctx(&cli)?;
            let port = ModuleStatus::read(&cli.proc_dir).ok().and_then(|s| s.port).unwrap_or(7777);
            let report = resource_command(&mut ctx, command, &cli.mars_dir, u16::try_from(port).unwrap_or(7777))?;
            output::emit(&report, cli.json)
        }
    }
}

/// What check-peer found, per channel.
#[derive(Debug, serde::Serialize)]
struct PeerCheck {
    peer: String,
    channels: Vec<peer::ChannelCheck>,
}

impl std::fmt::Display for PeerCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in &self.channels {
            match (&c.peer, &c.error) {
                (Some(name), _) => writeln!(f, "{:<12} {:<24} ok: authenticated {name}", c.channel, c.address)?,
                (None, Some(e)) => writeln!(f, "{:<12} {:<24} {e}", c.channel, c.address)?,
                (None, None) => writeln!(f, "{:<12} {:<24} ?", c.channel, c.address)?,
            }
        }
        Ok(())
    }
}

/// join-cluster: checks, fetch, checks against the fetched tree, then writes; waits until
/// mars.ko is connected to the peer.
fn join(cli: &Cli, peer_arg: &str, ip: Option<&str>, secret_file: Option<&std::path::Path>) -> Result<cluster::Joined> {
    host::require_root()?;
    let module = ModuleStatus::read(&cli.proc_dir)?;
    host::require_mars_filesystem(&cli.mars_dir)?;
    let me = host::host_name(cli.host.as_deref())?;
    let mut tree = Tree::new(&cli.mars_dir, &me, module.lamport);
    let address = match ip {
        Some(ip) => ip.to_string(),
        None => host::default_address()?,
    };
    let (secret, given) = match secret_file {
        Some(f) => (cluster::read_secret(f)?, true),
        None => {
            let own = cli.mars_dir.join(cluster::SECRET_FILE);
            if !own.exists() {
                anyhow::bail!(
                    "no cluster secret: copy /mars/{} from a member and give it with --secret-file FILE",
                    cluster::SECRET_FILE
                );
            }
            (cluster::read_secret(&own)?, false)
        }
    };
    let port = u16::try_from(module.port.unwrap_or(7777)).unwrap_or(7777);
    let addr = peer::resolve(peer_arg, port)?;
    // Nothing is written before the peer's tree is here and checked.
    let fetched = peer::fetch_tree(addr, &me, &secret, Duration::from_secs(cli.timeout.clamp(1, 30)))?;
    let (ip, cluster_id) = cluster::check_join(&mut tree, &me, &address, &fetched)?;
    let joined = cluster::join_cluster(&mut tree, &me, ip, cluster_id, &fetched, given.then_some(&secret[..]))?;
    let peer_name = fetched.name.clone();
    wait_module(cli, Duration::from_secs(cli.timeout), &format!("to connect to {peer_name}"), |s| {
        s.cluster == "member" && s.peer(&peer_name).is_some_and(|p| p.tree == "up")
    })?;
    Ok(joined)
}

/// Polls `/proc/mars/status` until `done` holds, at most `timeout`; returns the status that
/// satisfied it.
fn wait_module(cli: &Cli, timeout: Duration, what: &str, done: impl Fn(&ModuleStatus) -> bool) -> Result<ModuleStatus> {
    let start = std::time::Instant::now();
    loop {
        let status = ModuleStatus::read(&cli.proc_dir)?;
        if done(&status) {
            return Ok(status);
        }
        if start.elapsed() >= timeout {
            let errors: Vec<String> = status
                .peers
                .iter()
                .filter(|p| !p.error.is_empty())
                .map(|p| format!("{}: {}", p.name, p.error))
                .collect();
            anyhow::bail!(
                "timed out after {} s waiting for mars.ko {what}{}: the tree is written, mars.ko keeps trying; see marsadm view",
                timeout.as_secs(),
                if errors.is_empty() { String::new() } else { format!(" ({})", errors.join("; ")) }
            );
        }
        std::thread::sleep(crate::wait::POLL_INTERVAL);
    }
}

/// The view of `target`: the module's status, and the resources' state on this host.
fn view(cli: &Cli, target: &Target) -> Result<View> {
    let module = ModuleStatus::read(&cli.proc_dir)?;
    let me = match host::host_name(cli.host.as_deref()) {
        Ok(me) => me,
        // The module's status needs no host name, the state of resources does.
        Err(_) if *target == Target::All && tree::resource_dirs(&cli.mars_dir)?.is_empty() => {
            return Ok(View { module, members: Vec::new(), resource_states: Vec::new() });
        }
        Err(e) => return Err(e),
    };
    let mut tree = Tree::new(&cli.mars_dir, &me, module.lamport);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let members = if *target == Target::All { members::members(&mut tree, &module, &me, now)? } else { Vec::new() };
    let mut v = view::view(module, &mut tree, &me, target)?;
    v.members = members;
    Ok(v)
}

/// Checks what every resource command needs (root, module loaded, /mars mounted, a valid host
/// name) and returns the context to run it in.
fn resource_ctx(cli: &Cli) -> Result<Ctx> {
    host::require_root()?;
    let module = ModuleStatus::read(&cli.proc_dir)?;
    host::require_mars_filesystem(&cli.mars_dir)?;
    let me = host::host_name(cli.host.as_deref())?;
    Ok(Ctx { tree: Tree::new(&cli.mars_dir, &me, module.lamport), host: me, timeout: Duration::from_secs(cli.timeout) })
}

/// Runs one of the resource commands in `ctx`.
fn resource_command(ctx: &mut Ctx, command: &ResourceCommand, mars_dir: &std::path::Path, port: u16) -> Result<Report> {
    Ok(match command {
        ResourceCommand::CreateResource { name, device, size } => {
            resource::create_resource(ctx, name, device, *size, checks::block_device_size)?.into()
        }
        ResourceCommand::JoinResource { name, device } => {
            resource::join_resource(ctx, name, device, checks::block_device_size)?.into()
        }
        ResourceCommand::LeaveResource { name } => resource::leave_resource(ctx, name)?.into(),
        ResourceCommand::Primary { name, force } => resource::primary(ctx, name, *force)?.into(),
        ResourceCommand::Secondary { name } => resource::secondary(ctx, name)?.into(),
        ResourceCommand::Up { resource } => resource::up(ctx, &Target::parse(resource)?)?,
        ResourceCommand::Down { resource } => resource::down(ctx, &Target::parse(resource)?)?,
        ResourceCommand::LogRotate { name } => resource::log_rotate(ctx, name)?.into(),
        ResourceCommand::LogDelete { name, leave_behind } => resource::log_delete(ctx, name, leave_behind)?.into(),
        ResourceCommand::DeleteResource { name } => resource::delete_resource(ctx, name)?.into(),
        ResourceCommand::WaitResource { resource } => resource::wait_resource(ctx, &Target::parse(resource)?)?,
        ResourceCommand::PauseReplay { name } => resource::set_replay(ctx, name, false)?.into(),
        ResourceCommand::ResumeReplay { name } => resource::set_replay(ctx, name, true)?.into(),
        ResourceCommand::Invalidate { name, full } => resource::invalidate(ctx, name, *full)?.into(),
        ResourceCommand::PauseSync { name } => resource::set_sync(ctx, name, false)?.into(),
        ResourceCommand::ResumeSync { name } => resource::set_sync(ctx, name, true)?.into(),
        ResourceCommand::PauseFetch { name } => resource::set_fetch(ctx, name, false)?.into(),
        ResourceCommand::ResumeFetch { name } => resource::set_fetch(ctx, name, true)?.into(),
        ResourceCommand::WaitSync { name } => resource::wait_sync(ctx, name)?.into(),
        ResourceCommand::SetSyncRate { name, rate } => resource::set_rate(ctx, name, Switch::SyncRate, rate)?.into(),
        ResourceCommand::SetFetchRate { name, rate } => resource::set_rate(ctx, name, Switch::FetchRate, rate)?.into(),
        ResourceCommand::WaitReplay { name } => {
            let me = ctx.host.clone();
            let secret = cluster::read_secret(&mars_dir.join(cluster::SECRET_FILE))?;
            let timeout = ctx.timeout.clamp(Duration::from_secs(1), Duration::from_secs(30));
            let log_end = |primary: &str, ip: std::net::IpAddr, res: &str| {
                let addr = std::net::SocketAddr::new(ip, port.saturating_add(Channel::Replication.port_offset()));
                peer::log_end(addr, &me, &secret, res, timeout)
                    .with_context(|| format!("cannot ask the primary {primary} how far its log goes"))
            };
            resource::wait_replay(ctx, name, log_end)?.into()
        }
    })
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

    #[test]
    fn resource_commands_parse() {
        let cli = Cli::try_parse_from(["marsadm", "create-resource", "r0", "/dev/vda", "--size", "134217728"])
            .expect("parses");
        assert_eq!(cli.timeout, 30);
        match cli.command {
            Command::Resource(ResourceCommand::CreateResource { name, device, size }) => {
                assert_eq!((name.as_str(), device, size), ("r0", PathBuf::from("/dev/vda"), Some(134217728)));
            }
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from(["marsadm", "secondary", "r0", "--timeout", "3"]).expect("parses");
        assert_eq!(cli.timeout, 3);
        let cli = Cli::try_parse_from(["marsadm", "primary", "--force", "r0"]).expect("parses");
        assert!(matches!(cli.command, Command::Resource(ResourceCommand::Primary { force: true, .. })));
        let cli = Cli::try_parse_from(["marsadm", "view"]).expect("parses");
        assert!(matches!(cli.command, Command::View { resource } if resource == "all"));
        for args in [
            ["up", "all"],
            ["down", "r0"],
            ["log-rotate", "r0"],
            ["log-delete", "r0"],
            ["delete-resource", "r0"],
            ["wait-resource", "all"],
        ] {
            Cli::try_parse_from(["marsadm", args[0], args[1]]).expect("parses");
        }
        assert!(Cli::try_parse_from(["marsadm", "create-resource", "r0", "/dev/vda", "--size", "1G"]).is_err());
        assert!(Cli::try_parse_from(["marsadm", "up"]).is_err());
    }

    /// A /proc/mars and a /mars for `view`, with resource r0 in the tree.
    fn fixture() -> (tempfile::TempDir, Vec<String>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let proc_dir = dir.path().join("proc");
        let mars_dir = dir.path().join("mars");
        std::fs::create_dir_all(&proc_dir).unwrap();
        std::fs::write(proc_dir.join("status"), "version 0.1.0\nuptime_s 1\nresources 1\ncluster member\n").unwrap();
        let mut tree = Tree::new(&mars_dir, "node1", Stamp::ZERO);
        tree.set("resource-r0/size", "1048576").unwrap();
        let args = ["--proc-dir", proc_dir.to_str().unwrap(), "--mars-dir", mars_dir.to_str().unwrap()];
        (dir, args.iter().map(|s| s.to_string()).collect())
    }

    fn parse(globals: &[String], args: &[&str]) -> Cli {
        let argv = ["marsadm"].iter().copied().chain(globals.iter().map(String::as_str)).chain(args.iter().copied());
        Cli::try_parse_from(argv).expect("parses")
    }

    #[test]
    fn view_reads_the_module_and_the_tree() {
        let (_dir, globals) = fixture();
        let cli = parse(&globals, &["--host", "node1", "view"]);
        let v = view(&cli, &Target::All).expect("views");
        assert_eq!(v.resource_states.len(), 1);
        assert_eq!(v.resource_states[0].size, Some(1048576));
        let e = view(&cli, &Target::One("r1".into())).unwrap_err();
        assert!(e.to_string().contains("unknown resource r1"), "{e}");
        // An unusable host name still shows the module when there are no resources.
        let no_mars = [globals[0].clone(), globals[1].clone(), "--mars-dir".into(), "/nonexistent".into()];
        let cli = parse(&no_mars, &["--host", "Bad_Name", "view"]);
        assert!(view(&cli, &Target::All).expect("views").resource_states.is_empty());
        let cli = parse(&globals, &["--host", "Bad_Name", "view"]);
        let e = view(&cli, &Target::All).unwrap_err();
        assert!(e.to_string().contains("cannot be used by MARS"), "{e}");
    }
}
