//! Facts about the local host marsadm needs: who it is, whether it runs as root, where /mars is.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use mars_core::tree::validate_host_name;

/// This host's MARS name: `override_name` if given, else the kernel's host name; validated.
pub fn host_name(override_name: Option<&str>) -> Result<String> {
    let name = match override_name {
        Some(n) => n.to_string(),
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .context("cannot read the host name from /proc/sys/kernel/hostname")?
            .trim()
            .to_string(),
    };
    validate_host_name(name.as_bytes())
        .map_err(|e| anyhow!("host name {name:?} cannot be used by MARS: {e} (give another one with --host)"))?;
    Ok(name)
}

/// Fails unless marsadm runs with effective uid 0.
pub fn require_root() -> Result<()> {
    let status = std::fs::read_to_string("/proc/self/status").context("cannot read /proc/self/status")?;
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .ok_or_else(|| anyhow!("no Uid line in /proc/self/status"))?;
    if euid != "0" {
        bail!("marsadm must run as root (effective uid is {euid})");
    }
    Ok(())
}

/// Fails unless `dir` is a directory with its own filesystem mounted on it.
pub fn require_mars_filesystem(dir: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir).map_err(|_| {
        anyhow!(
            "{} does not exist: create it and mount a dedicated filesystem on it (e.g. mkfs.ext4 DEV; mount DEV {})",
            dir.display(),
            dir.display()
        )
    })?;
    if !meta.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let parent = dir.join("..");
    let parent_meta = std::fs::metadata(&parent).with_context(|| format!("cannot stat {}", parent.display()))?;
    if meta.dev() == parent_meta.dev() {
        bail!("{} is not a mounted filesystem: mount the dedicated /mars filesystem first", dir.display());
    }
    Ok(())
}

/// The first global IPv4 address of an interface that is up (`ip -o -4 addr show scope global`).
pub fn default_address() -> Result<String> {
    let out = std::process::Command::new("ip")
        .args(["-o", "-4", "addr", "show", "scope", "global", "up"])
        .output()
        .context("cannot run `ip` to find this host's address")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "inet")?;
            words.next()?.split('/').next().map(str::to_string)
        })
        .ok_or_else(|| anyhow!("cannot find this host's address: give it with --ip ADDRESS"))
}
