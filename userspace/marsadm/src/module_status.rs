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
                _ => {}
            }
        }
        Ok(ModuleStatus {
            version: version.context("no `version` line")?,
            uptime_seconds: uptime.context("no `uptime_s` line")?,
            resources: resources.context("no `resources` line")?,
            cluster: cluster.unwrap_or_else(|| "unknown".to_string()),
            lamport: Stamp::new(lamport, HostId(0)),
        })
    }
}

impl fmt::Display for ModuleStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "mars.ko {} loaded, up {} s, {} resource(s)", self.version, self.uptime_seconds, self.resources)?;
        let cluster = match self.cluster.as_str() {
            "member" => "this host is a cluster member",
            "not-member" => "this host is in no cluster (marsadm create-cluster or join-cluster)",
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
            }
        );
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
