// SPDX-License-Identifier: GPL-2.0

//! One resource on this host: its brick graph, built and torn down by the strategy.
//!
//! Attached: the data device is open and the log has been replayed onto it. Primary: a logger
//! appends to a new logfile and `/dev/mars/NAME` exists. Teardown order is the reverse: the disk
//! goes first (no new bios), then the logger thread (it drains its queue), then the device.

use kernel::prelude::*;
use kernel::sync::Arc;

use crate::bricks::replay::replay;
use crate::bricks::trans_logger::{Logger, LoggerStats};
use crate::kx::bdev::BackingDevice;
use crate::kx::disk::Disk;
use crate::kx::file::{KFile, OpenMode};
use crate::kx::kthread::KThread;
use crate::kx::vfs::{self, KPath};
use crate::mars_core::names::{format_logfile_name, parse_logfile_name, LOGFILE_NAME_MAX};
use crate::status::ModuleStatus;
use crate::tree_store::ROOT;

/// The primary side of a resource: its device and logger.
struct Primary {
    /// Removed after the logger is quiesced.
    disk: Disk<Logger>,
    /// Stopped after the disk is gone.
    _thread: KThread<Logger>,
    logger: Arc<Logger>,
    /// Name of the logfile being written.
    log_name: KVec<u8>,
}

/// One resource this host has a data device for.
pub(crate) struct Resource {
    name: KVec<u8>,
    primary: Option<Primary>,
    dev: Option<Arc<BackingDevice>>,
    /// The logfile whose damage stopped the replay at attach; reported until detach.
    damaged: Option<KVec<u8>>,
}

/// What the strategy publishes about a resource.
pub(crate) struct ResourceView<'a> {
    /// Data device open and log replayed.
    pub(crate) attached: bool,
    /// `/dev/mars/NAME` exists here.
    pub(crate) primary: bool,
    /// Openers of `/dev/mars/NAME`.
    pub(crate) openers: u32,
    /// Logfile being written, if primary.
    pub(crate) log_name: &'a [u8],
    /// Logger counters, if primary.
    pub(crate) stats: Option<LoggerStats>,
    /// The logfile whose damage stopped the replay at attach, if any.
    pub(crate) damaged: Option<&'a [u8]>,
}

impl Resource {
    /// A resource known by name, not attached.
    pub(crate) fn new(name: &[u8]) -> Result<Resource> {
        let mut owned = KVec::with_capacity(name.len(), GFP_KERNEL)?;
        owned.extend_from_slice(name, GFP_KERNEL)?;
        Ok(Resource { name: owned, primary: None, dev: None, damaged: None })
    }

    /// The resource's name.
    pub(crate) fn name(&self) -> &[u8] {
        &self.name
    }

    /// What is up, for status keys.
    pub(crate) fn view(&self) -> ResourceView<'_> {
        ResourceView {
            attached: self.dev.is_some(),
            primary: self.primary.is_some(),
            openers: self.primary.as_ref().map_or(0, |p| p.disk.openers()),
            log_name: self.primary.as_ref().map_or(&[][..], |p| &p.log_name),
            stats: self.primary.as_ref().map(|p| p.logger.stats()),
            damaged: self.damaged.as_deref(),
        }
    }

    /// The directory `/mars/resource-NAME`.
    fn dir(&self) -> Result<KPath> {
        KPath::join(&[ROOT, b"/resource-", &self.name])
    }

    /// Opens the data device at `path` and replays every logfile onto it, oldest first.
    /// A damaged logfile stops the replay at its last good record: reported (see
    /// [`ResourceView::damaged`]), not fatal.
    pub(crate) fn attach(&mut self, path: &[u8], size: u64, host: &str) -> Result {
        if self.dev.is_some() {
            return Ok(());
        }
        let dev = BackingDevice::open(&KPath::join(&[path])?)?;
        let have = dev.sectors().saturating_mul(512);
        if have < size {
            pr_err!(
                "resource {}: data device {} has {} bytes, less than the resource size {}\n",
                kernel::str::BStr::from_bytes(&self.name),
                kernel::str::BStr::from_bytes(path),
                have,
                size
            );
            return Err(ENOSPC);
        }
        let mut problem = None;
        for seq in self.logfile_seqs(host)? {
            let name = logfile_name(seq, host)?;
            let file = KFile::open(&KPath::join(&[self.dir()?.as_bytes(), b"/", &name])?, OpenMode::Read)?;
            let done = replay(&file, &dev)?;
            pr_info!(
                "resource {}: replayed {} records of {}, {}\n",
                kernel::str::BStr::from_bytes(&self.name),
                done.records,
                kernel::str::BStr::from_bytes(&name),
                crate::shown::Shown(&done.stop)
            );
            if !done.stop.reason.is_clean_end() {
                pr_err!(
                    "resource {}: logfile {} is damaged {}; replay stopped at its last good record\n",
                    kernel::str::BStr::from_bytes(&self.name),
                    kernel::str::BStr::from_bytes(&name),
                    crate::shown::Shown(&done.stop)
                );
                problem = Some(name);
                break;
            }
        }
        self.dev = Some(Arc::new(dev, GFP_KERNEL)?);
        self.damaged = problem;
        Ok(())
    }

    /// Sequence numbers of this host's logfiles, ascending.
    fn logfile_seqs(&self, host: &str) -> Result<KVec<u32>> {
        let mut seqs = KVec::new();
        vfs::list(&self.dir()?, |name, _| {
            if let Ok((seq, origin)) = parse_logfile_name(name) {
                if origin == host {
                    seqs.push(seq, GFP_KERNEL)?;
                }
            }
            Ok(())
        })?;
        seqs.sort_unstable();
        Ok(seqs)
    }

    /// Starts logging into a new logfile and creates `/dev/mars/NAME` of `size` bytes.
    pub(crate) fn become_primary(&mut self, size: u64, host: &str, status: &Arc<ModuleStatus>) -> Result {
        if self.primary.is_some() {
            return Ok(());
        }
        let dev = self.dev.clone().ok_or(ENODEV)?;
        let next = self.logfile_seqs(host)?.last().copied().unwrap_or(0).checked_add(1).ok_or(EOVERFLOW)?;
        let log_name = logfile_name(next, host)?;
        let log = KFile::open(&KPath::join(&[self.dir()?.as_bytes(), b"/", &log_name])?, OpenMode::CreateNew)?;
        let logger = Arc::pin_init(Logger::new(&self.name, dev, log, status.clone())?, GFP_KERNEL)?;
        let thread = KThread::spawn(c"mars_logger", logger.clone())?;
        let disk = Disk::create(&self.name, size / 512, logger.clone())?;
        pr_info!(
            "resource {}: primary, logging to {}\n",
            kernel::str::BStr::from_bytes(&self.name),
            kernel::str::BStr::from_bytes(&log_name)
        );
        self.primary = Some(Primary { disk, _thread: thread, logger, log_name });
        Ok(())
    }

    /// Starts a new logfile for the primary's logger (`marsadm log-rotate`); `ENODEV` if not primary.
    pub(crate) fn rotate(&mut self, host: &str) -> Result {
        let next = self.logfile_seqs(host)?.last().copied().unwrap_or(0).checked_add(1).ok_or(EOVERFLOW)?;
        let name = logfile_name(next, host)?;
        let path = KPath::join(&[self.dir()?.as_bytes(), b"/", &name])?;
        let p = self.primary.as_mut().ok_or(ENODEV)?;
        p.logger.rotate(KFile::open(&path, OpenMode::CreateNew)?);
        pr_info!(
            "resource {}: rotated from {} to {}\n",
            kernel::str::BStr::from_bytes(&self.name),
            kernel::str::BStr::from_bytes(&p.log_name),
            kernel::str::BStr::from_bytes(&name)
        );
        p.log_name = name;
        Ok(())
    }

    /// Removes `/dev/mars/NAME` after draining the logger; `EBUSY` while the device is open.
    pub(crate) fn stop_primary(&mut self) -> Result {
        if let Some(p) = &self.primary {
            if p.disk.openers() > 0 {
                return Err(EBUSY);
            }
        }
        if let Some(p) = self.primary.take() {
            let Primary { disk, _thread, logger, log_name } = p;
            // Nobody has the device open, so nothing new arrives; finish what did before the disk
            // goes (the block layer does not wait for bios a bio-based driver still holds) and
            // before the data device may close (reads sent on to it must be done).
            logger.quiesce();
            drop(disk);
            drop(_thread);
            drop(logger);
            pr_info!(
                "resource {}: secondary, {} closed\n",
                kernel::str::BStr::from_bytes(&self.name),
                kernel::str::BStr::from_bytes(&log_name)
            );
        }
        Ok(())
    }

    /// Deletes this host's logfiles whose records are all on the data device: every one but the
    /// logfile being written (attach replays them all, and a stopping logger drains its
    /// write-back). Returns how many were deleted; `ENODEV` when not attached.
    pub(crate) fn delete_logs(&self, host: &str) -> Result<u32> {
        if self.dev.is_none() {
            return Err(ENODEV);
        }
        let dir = self.dir()?;
        let current = self.primary.as_ref().map(|p| &p.log_name[..]);
        let mut deleted = 0u32;
        for seq in self.logfile_seqs(host)? {
            let name = logfile_name(seq, host)?;
            if Some(&name[..]) == current {
                continue;
            }
            vfs::unlink(&dir, &KPath::join(&[&name])?)?;
            deleted = deleted.saturating_add(1);
        }
        Ok(deleted)
    }

    /// Releases the data device; `EBUSY` while primary.
    pub(crate) fn detach(&mut self) -> Result {
        if self.primary.is_some() {
            return Err(EBUSY);
        }
        self.dev = None;
        self.damaged = None;
        Ok(())
    }
}

/// `log-SSSSSSSSS-HOST` as bytes.
fn logfile_name(seq: u32, host: &str) -> Result<KVec<u8>> {
    let mut buf = [0u8; LOGFILE_NAME_MAX];
    let n = format_logfile_name(seq, host, &mut buf).map_err(|_| EINVAL)?;
    let mut out = KVec::with_capacity(n, GFP_KERNEL)?;
    out.extend_from_slice(buf.get(..n).ok_or(EINVAL)?, GFP_KERNEL)?;
    Ok(out)
}
