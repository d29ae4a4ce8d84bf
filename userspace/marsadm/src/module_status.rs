//! The module's liveness status, read from `/proc/mars/status`.
//!
//! The file holds one `key value` pair per line (see docs/marsadm.md). Unknown keys are kept
//! out of the typed fields, so a newer module with more keys still works with this marsadm.

use std::fmt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use mars_core::lamport::{HostId, Stamp};
use serde::Serialize;

/// What `/proc/mars/status` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleStatus {
    /// Version of the loaded mars.ko.
    pub version: String,
    /// Seconds since the module was loaded.
    pub uptime_seconds: u64,
    /// Number of resources the module knows.
    pub resources: u64,
    /// Cluster membership: `member`, `not-member`, `no-mars` or `unknown`.
    pub cluster: String,
    /// The module's Lamport clock (its host is not shown, so it stays zero).
    #[serde(skip)]
    pub lamport: Stamp,
    /// The module's first TCP port (parameter `port`).
    #[serde(skip)]
    pub port: Option<u64>,
    /// Where the tree server listens (`None`: not listening).
    #[serde(skip)]
    pub listen: Option<String>,
    /// Why the module does not listen, once it has tried (`listen none REASON`).
    #[serde(skip)]
    pub listen_error: Option<String>,
    /// The peers this host's clients talk to.
    #[serde(skip)]
    pub peers: Vec<PeerStatus>,
}

/// One `peer` line: a client connection of this host's module.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PeerStatus {
    /// The peer's host name.
    pub name: String,
    /// The address connected to.
    pub address: String,
    /// State of the tree channel: `up`, `down`, `connecting` or `handshaking`.
    pub tree: String,
    /// Milliseconds since the connection came up.
    pub up_ms: Option<u64>,
    /// Milliseconds since anything arrived from the peer.
    pub contact_ago_ms: Option<u64>,
    /// Failed attempts in a row.
    pub failures: u64,
    /// Complete tree pulls.
    pub pulls: u64,
    /// Why the last connection ended or attempt failed.
    pub error: String,
}

impl PeerStatus {
    /// Parses the rest of a `peer` line: `NAME ADDRESS field=value ... error=TEXT`.
    fn parse(rest: &str) -> Result<PeerStatus> {
        let (fields, error) = match rest.split_once(" error=") {
            Some((f, e)) => (f, e.trim().to_string()),
            None => (rest, String::new()),
        };
        let mut words = fields.split_whitespace();
        let name = words.next().context("peer line without a name")?.to_string();
        let address = words.next().context("peer line without an address")?.to_string();
        let mut p = PeerStatus { name, address, error, ..PeerStatus::default() };
        for w in words {
            let Some((k, v)) = w.split_once('=') else { continue };
            let n = || v.parse::<u64>().with_context(|| format!("peer {}: {k} is not a number: {v:?}", p.name));
            match k {
                "tree" => p.tree = v.to_string(),
                "up_ms" => p.up_ms = Some(n()?),
                "contact_ago_ms" => p.contact_ago_ms = Some(n()?),
                "failures" => p.failures = n()?,
                "pulls" => p.pulls = n()?,
                _ => {}
            }
        }
        Ok(p)
    }
}

impl ModuleStatus {
    /// Reads the status file under `proc_dir` (normally `/proc/mars`).
    pub fn read(proc_dir: &Path) -> Result<ModuleStatus> {
        let path = proc_dir.join("status");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "mars.ko is not loaded ({} does not exist): load it with `modprobe mars` or `insmod mars.ko`",
                path.display()
            ),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        ModuleStatus::parse(&text).with_context(|| format!("unexpected contents in {}", path.display()))
    }

    /// Parses the `key value` lines of the status file.
    pub fn parse(text: &str) -> Result<ModuleStatus> {
        let mut version = None;
        let mut uptime = None;
        let mut resources = None;
        let mut cluster = None;
        let mut lamport = 0;
        let mut listen = None;
        let mut listen_error = None;
        let mut port = None;
        let mut peers = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let Some((key, value)) = line.split_once(' ') else {
                bail!("line {}: expected `key value`, got {line:?}", n + 1);
            };
            let value = value.trim();
            let number =
                || value.parse::<u64>().with_context(|| format!("line {}: {key} is not a number: {value:?}", n + 1));
            match key {
                "version" => version = Some(value.to_string()),
                "uptime_s" => uptime = Some(number()?),
                "resources" => resources = Some(number()?),
                "cluster" => cluster = Some(value.to_string()),
                "lamport_ns" => lamport = number()?,
                "port" => port = Some(number()?),
                "listen" => match value.strip_prefix("none") {
                    Some(reason) => listen_error = Some(reason.trim()).filter(|r| !r.is_empty()).map(str::to_string),
                    None => listen = Some(value.to_string()),
                },
                "peer" => peers.push(PeerStatus::parse(value).with_context(|| format!("line {}", n + 1))?),
                _ => {}
            }
        }
        Ok(ModuleStatus {
            version: version.context("no `version` line")?,
            uptime_seconds: uptime.context("no `uptime_s` line")?,
            resources: resources.context("no `resources` line")?,
            cluster: cluster.unwrap_or_else(|| "unknown".to_string()),
            lamport: Stamp::new(lamport, HostId(0)),
            port,
            listen,
            listen_error,
            peers,
        })
    }

    /// The status of the client connection to `peer`, if there is one.
    pub fn peer(&self, peer: &str) -> Option<&PeerStatus> {
        self.peers.iter().find(|p| p.name == peer)
    }
}

impl fmt::Display for ModuleStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "mars.ko {} loaded, up {} s, {} resource(s)", self.version, self.uptime_seconds, self.resources)?;
        let cluster = match self.cluster.as_str() {
            "member" => "this host is a cluster member",
            "not-member" => "this host is in no cluster (marsadm create-cluster or join-cluster)",
            "leaving" => "this host is leaving the cluster (its peers are learning of it)",
            "no-mars" => "no /mars filesystem (mount it, then marsadm create-cluster)",
            other => other,
        };
        writeln!(f, "cluster: {cluster}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str =
        "version 0.1.0\nuptime_s 42\nresources 0\nlamport_ns 77\ncluster member\nstrategy_interval_ms 1000\n";

    #[test]
    fn parses_the_module_format_and_ignores_unknown_keys() {
        let s = ModuleStatus::parse(SAMPLE).expect("parses");
        assert_eq!(
            s,
            ModuleStatus {
                version: "0.1.0".into(),
                uptime_seconds: 42,
                resources: 0,
                cluster: "member".into(),
                lamport: Stamp::new(77, HostId(0)),
                port: None,
                listen: None,
                listen_error: None,
                peers: vec![],
            }
        );
    }

    #[test]
    fn parses_the_listener_and_peer_lines() {
        let text = "version 0.1.0\nuptime_s 1\nresources 0\ncluster member\nlisten 10.0.0.1:7777\n\
                    peer node2 10.0.0.2:7777 tree=up up_ms=1500 contact_ago_ms=20 failures=0 pulls=3 merged=9 error=\n\
                    peer node3 10.0.0.3:7777 tree=down contact_ago_ms=9000 failures=2 pulls=0 merged=0 error=ECONNREFUSED (connection refused)\n";
        let s = ModuleStatus::parse(text).expect("parses");
        assert_eq!(s.listen.as_deref(), Some("10.0.0.1:7777"));
        assert_eq!(s.peer("node2").unwrap().up_ms, Some(1500));
        let n3 = s.peer("node3").unwrap();
        assert_eq!((n3.tree.as_str(), n3.failures, n3.up_ms), ("down", 2, None));
        assert_eq!(n3.error, "ECONNREFUSED (connection refused)");
        let s = ModuleStatus::parse("version 1\nuptime_s 1\nresources 0\nlisten none ips/ip-x holds no IP address\n")
            .unwrap();
        assert_eq!(s.listen, None);
        assert_eq!(s.listen_error.as_deref(), Some("ips/ip-x holds no IP address"));
        let s = ModuleStatus::parse("version 1\nuptime_s 1\nresources 0\nlisten none \n").unwrap();
        assert_eq!((s.listen, s.listen_error), (None, None), "not tried yet");
    }

    #[test]
    fn reports_missing_and_malformed_lines() {
        let e = ModuleStatus::parse("version 1\nresources 0\n").unwrap_err();
        assert!(e.to_string().contains("uptime_s"), "{e}");
        let e = ModuleStatus::parse("version 1\nuptime_s soon\nresources 0\n").unwrap_err();
        assert!(e.to_string().contains("not a number"), "{e}");
        let e = ModuleStatus::parse("garbage\n").unwrap_err();
        assert!(e.to_string().contains("key value"), "{e}");
    }

    #[test]
    fn missing_proc_file_says_the_module_is_not_loaded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = ModuleStatus::read(dir.path()).unwrap_err();
        assert!(e.to_string().contains("mars.ko is not loaded"), "{e}");
    }

    #[test]
    fn reads_a_status_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("status"), SAMPLE).expect("write");
        let s = ModuleStatus::read(dir.path()).expect("reads");
        assert_eq!(s.uptime_seconds, 42);
        assert_eq!(
            s.to_string(),
            "mars.ko 0.1.0 loaded, up 42 s, 0 resource(s)\ncluster: this host is a cluster member\n"
        );
        let json = serde_json::to_value(&s).expect("json");
        assert_eq!(json["resources"], 0);
    }
}
