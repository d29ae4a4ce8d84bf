// SPDX-License-Identifier: GPL-2.0

//! MARS: asynchronous long-distance block-device replication.
//!
//! The crate root: module metadata and parameters, and the module's lifetime. The pure core
//! (formats, clocks, decisions) is `lib/`, compiled here as [`mars_core`]; everything that touches
//! kernel interfaces directly is in [`kx`].

use kernel::prelude::*;
use kernel::sync::Arc;

#[path = "../bricks/mod.rs"]
mod bricks;
mod errors;
mod handshake;
mod kx;
mod logfiles;
#[path = "../lib/src/lib.rs"]
mod mars_core;
mod peers;
mod replay_position;
mod resource;
mod secret;
mod shown;
mod status;
mod sync_record;
mod strategy;
mod tree_index;
mod tree_store;
mod wire;

use mars_core::params;

module! {
    type: MarsModule,
    name: "mars",
    authors: ["The MARS developers"],
    description: "Asynchronous long-distance block-device replication",
    license: "GPL",
    params: {
        interval_ms: u32 {
            default: 1000,
            description: "Strategy loop interval in milliseconds (100..60000)",
        },
        port: u32 {
            default: 7777,
            description: "First of the four TCP ports for peers (1024..65532)",
        },
        log_rotate_mb: u32 {
            default: 1024,
            description: "Start a new logfile once the current one holds this many MiB (0: only on request)",
        },
    },
}

/// Load-time settings, validated.
#[derive(Clone, Copy)]
pub(crate) struct Settings {
    /// Strategy loop interval in milliseconds.
    pub(crate) interval_ms: u64,
    /// First TCP port.
    pub(crate) port: u64,
    /// Logfile size in bytes at which the primary rotates on its own; 0: only on request.
    pub(crate) log_rotate_bytes: u64,
}

impl Settings {
    /// Reads the module parameters and checks each against its [`params::Limit`].
    fn from_parameters() -> Result<Settings> {
        let check = |limit: params::Limit, value: u32| {
            limit.check(u64::from(value)).map_err(|e| {
                pr_err!("{}\n", shown::Shown(&e));
                EINVAL
            })
        };
        Ok(Settings {
            interval_ms: check(params::INTERVAL_MS, *module_parameters::interval_ms.value())?,
            port: check(params::PORT, *module_parameters::port.value())?,
            log_rotate_bytes: check(params::LOG_ROTATE_MB, *module_parameters::log_rotate_mb.value())? << 20,
        })
    }
}

/// The loaded module: owns everything that must go away on `rmmod` (dropped in field order).
struct MarsModule {
    /// The strategy thread; stopped first on unload (it tears down every resource).
    _strategy: kx::kthread::KThread<strategy::Strategy>,
    /// `/proc/mars/status`.
    _proc: kx::proc::ProcDir<status::ModuleStatus>,
    /// The module's bio_set; released last.
    _block: kx::disk::BlockLayer,
}

impl kernel::Module for MarsModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let settings = Settings::from_parameters()?;
        kx::crc::init()?;
        kx::sha::init()?;
        let block = kx::disk::BlockLayer::init()?;
        let status = Arc::pin_init(status::ModuleStatus::new(settings), GFP_KERNEL)?;
        let proc = kx::proc::ProcDir::new(c"mars", c"status", status.clone())?;
        let interval_ms = u32::try_from(settings.interval_ms).map_err(|_| EINVAL)?;
        let strategy = Arc::pin_init(strategy::Strategy::new(status.clone(), interval_ms), GFP_KERNEL)?;
        let strategy = kx::kthread::KThread::spawn(c"mars_strategy", strategy)?;
        pr_info!(
            "MARS {} loaded on host {} (interval {} ms, port {})\n",
            mars_core::VERSION,
            status.host_name(),
            settings.interval_ms,
            settings.port
        );
        Ok(MarsModule { _strategy: strategy, _proc: proc, _block: block })
    }
}

impl Drop for MarsModule {
    fn drop(&mut self) {
        pr_info!("MARS {} unloading\n", mars_core::VERSION);
    }
}
