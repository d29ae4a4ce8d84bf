// SPDX-License-Identifier: GPL-2.0

//! The module's liveness status, shown in `/proc/mars/status`.
//!
//! Format: one `key value` pair per line (documented in docs/marsadm.md); readers ignore keys
//! they do not know, so keys may be added but never change meaning.

use kernel::prelude::*;
use kernel::seq_file::SeqFile;
use kernel::seq_print;
use kernel::str::BStr;
use kernel::sync::Mutex;
use kernel::time::{Instant, Monotonic};

use crate::kx;
use crate::mars_core::lamport::{HostId, LamportClock};
use crate::mars_core::VERSION;
use crate::Settings;

/// Mutable module-wide state.
struct State {
    /// This host's Lamport clock.
    clock: LamportClock,
    /// Number of resources this host knows.
    resources: usize,
}

/// What the module publishes about itself.
#[pin_data]
pub(crate) struct ModuleStatus {
    /// When the module was loaded.
    loaded: Instant<Monotonic>,
    /// This host's name, as it was at load time.
    host: kx::host::HostName,
    /// Validated load-time parameters.
    settings: Settings,
    /// Clock and counters.
    #[pin]
    state: Mutex<State>,
}

impl ModuleStatus {
    /// Creates the status of a module loaded now with `settings`.
    pub(crate) fn new(settings: Settings) -> impl PinInit<Self> {
        let host = kx::host::HostName::current();
        let mut clock = LamportClock::new(HostId::from_name(host.as_bytes()));
        // The load itself is the first event of this host's clock.
        clock.tick(kx::time::real_time_nanos());
        pin_init!(ModuleStatus {
            loaded: Instant::now(),
            host,
            settings,
            state <- kernel::new_mutex!(State { clock, resources: 0 }, "mars_status"),
        })
    }

    /// This host's name.
    pub(crate) fn host_name(&self) -> &BStr {
        BStr::from_bytes(self.host.as_bytes())
    }
}

impl kx::proc::SeqShow for ModuleStatus {
    fn show(&self, m: &SeqFile) {
        let uptime_s = self.loaded.elapsed().as_millis() / 1000;
        let (lamport, resources) = {
            let state = self.state.lock();
            (state.clock.peek(kx::time::real_time_nanos()), state.resources)
        };
        seq_print!(m, "version {}\n", VERSION);
        seq_print!(m, "host {}\n", self.host_name());
        seq_print!(m, "uptime_s {}\n", uptime_s);
        seq_print!(m, "resources {}\n", resources);
        seq_print!(m, "lamport_ns {}\n", lamport);
        seq_print!(m, "interval_ms {}\n", self.settings.interval_ms);
        seq_print!(m, "port {}\n", self.settings.port);
    }
}
