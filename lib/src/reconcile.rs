//! What the strategy does with one resource on this host, decided from what it observed.
//!
//! Pure: mars.ko's strategy thread reads the tree and its own state of the resource each round,
//! asks these functions for the steps to take, and carries them out (drivers/strategy.rs).
//! marsadm's tests drive the very same functions with a simulated module, so the rules of
//! docs/resource-control.md exist once.
//!
//! A round has two phases. [`transitions`] moves the resource towards what its switches ask
//! (attached, primary); its steps run in order and the first that fails ends the phase, since
//! each builds on the ones before it. [`upkeep`] then looks at the state those steps left and
//! lists the work that state calls for (replay position, log rotation and deletion, detaching);
//! each of those runs whatever became of the others.

/// What the tree asks of this host for one resource.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    /// `todo-global/delete-RES` is set: remove the resource here.
    pub delete: bool,
    /// `data-HOST` exists: the resource has a data device on this host.
    pub data_device: bool,
    /// `todo-HOST/attach` is 1.
    pub attach: bool,
    /// `primary` names this host.
    pub primary: bool,
    /// `todo-HOST/log-rotate`: the number of the newest log-rotate request (0: none).
    pub log_rotate: u64,
    /// `todo-HOST/log-delete`: the number of the newest log-delete request (0: none).
    pub log_delete: u64,
}

/// What this host's module is doing with the resource.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Local {
    /// The data device is open.
    pub attached: bool,
    /// `/dev/mars/RES` exists and its writes are logged (or, in emergency mode, written through).
    pub primary: bool,
    /// Logging has stopped on a full /mars (emergency mode).
    pub emergency: bool,
    /// Bytes in the logfile being written, while logging.
    pub logfile_bytes: Option<u64>,
    /// `actual-HOST/log-rotate`: the newest log-rotate request carried out.
    pub log_rotated: u64,
    /// `actual-HOST/log-delete`: the newest log-delete request carried out.
    pub log_deleted: u64,
}

/// Module settings the decisions depend on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// Start a new logfile once the current one holds this many bytes; 0: never.
    pub rotate_at: u64,
}

/// One thing to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Remove the resource's keys and logfiles from this host (it is detached here).
    Delete,
    /// Open the data device, replaying the log tail onto it.
    Attach,
    /// Create `/dev/mars/RES` and log its writes.
    BecomePrimary,
    /// Remove `/dev/mars/RES` (it must not be open), write everything back, publish the position.
    StopPrimary,
    /// Publish how far the data device holds the log (`replay-HOST`).
    PublishReplayPosition,
    /// Have the logger continue in a new logfile for log-rotate request `request`; it is
    /// reported done once the logger has switched.
    Rotate {
        /// The request's number.
        request: u64,
    },
    /// Report log-rotate request `request` done without rotating: in emergency mode no logfile
    /// is written, and the next primary start logs into a new one anyway.
    RotateNotNeeded {
        /// The request's number.
        request: u64,
    },
    /// Start a new logfile: the current one has reached [`Settings::rotate_at`].
    RotateFull,
    /// Delete the logfiles the data device holds completely, for log-delete request `request`;
    /// it is reported done once every logfile before the current one is gone.
    DeleteLogs {
        /// The request's number.
        request: u64,
    },
    /// Close the data device.
    Detach,
}

/// Most steps one phase can hold.
pub const MAX_STEPS: usize = 6;

/// The steps of one phase, in the order to take them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Steps {
    items: [Step; MAX_STEPS],
    len: usize,
}

impl Steps {
    const fn new() -> Steps {
        Steps { items: [Step::Delete; MAX_STEPS], len: 0 }
    }

    fn push(&mut self, step: Step) {
        // Each phase below pushes at most MAX_STEPS steps (checked by the tests).
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = step;
            self.len += 1;
        }
    }

    /// The steps as a slice.
    pub fn as_slice(&self) -> &[Step] {
        self.items.get(..self.len).unwrap_or(&[])
    }

    /// True if there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<'a> IntoIterator for &'a Steps {
    type Item = &'a Step;
    type IntoIter = core::slice::Iter<'a, Step>;
    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

/// The first phase: the steps that bring the resource to what `wanted` asks, from `local`.
/// Take them in order; when one fails, skip the rest (each needs the ones before it).
pub fn transitions(wanted: &Wanted, local: &Local) -> Steps {
    let mut steps = Steps::new();
    if wanted.delete {
        // A resource attached here is deleted once `down` has detached it.
        if !local.attached {
            steps.push(Step::Delete);
        }
        return steps;
    }
    if !wanted.data_device {
        return steps; // Not a resource of this host.
    }
    if wanted.attach && !local.attached {
        steps.push(Step::Attach);
    }
    if wanted.attach && wanted.primary && !local.primary {
        steps.push(Step::BecomePrimary);
    }
    if !wanted.primary && local.primary {
        steps.push(Step::StopPrimary);
    }
    steps
}

/// The second phase: the work `local`, the state after [`transitions`], calls for. Each step
/// stands on its own; a failed one does not stop the others.
pub fn upkeep(wanted: &Wanted, local: &Local, settings: &Settings) -> Steps {
    let mut steps = Steps::new();
    if wanted.delete || !wanted.data_device {
        return steps;
    }
    if local.attached {
        steps.push(Step::PublishReplayPosition);
    }
    if wanted.log_rotate > local.log_rotated && local.primary {
        let request = wanted.log_rotate;
        steps.push(if local.emergency { Step::RotateNotNeeded { request } } else { Step::Rotate { request } });
    }
    let full = local.logfile_bytes.is_some_and(|b| settings.rotate_at > 0 && b >= settings.rotate_at);
    if full && local.primary && !local.emergency {
        steps.push(Step::RotateFull);
    }
    if wanted.log_delete > local.log_deleted && local.attached {
        steps.push(Step::DeleteLogs { request: wanted.log_delete });
    }
    if !wanted.attach && local.attached {
        steps.push(Step::Detach);
    }
    steps
}

/// Whose log this host's copy follows: the designated primary's (`primary`, from the
/// resource's `primary` key), while the data device is attached here, this host does not act as
/// primary and is not the one designated, and fetch is switched on (`todo-HOST/fetch`). `None`:
/// no fetch runs.
pub fn follow<'a>(primary: Option<&'a str>, host: &str, local: &Local, fetch_on: bool) -> Option<&'a str> {
    let other = primary.filter(|p| *p != host)?;
    (local.attached && !local.primary && fetch_on).then_some(other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secondary_follows_the_designated_primary_while_attached() {
        let attached = Local { attached: true, ..Local::default() };
        assert_eq!(follow(Some("node1"), "node2", &attached, true), Some("node1"));
        // Fetch switched off, not attached, still primary here, or no primary: no fetch.
        assert_eq!(follow(Some("node1"), "node2", &attached, false), None);
        assert_eq!(follow(Some("node1"), "node2", &Local::default(), true), None);
        assert_eq!(follow(Some("node1"), "node2", &Local { primary: true, ..attached }, true), None);
        assert_eq!(follow(None, "node2", &attached, true), None);
        // This host is the one designated: it becomes primary, it follows nobody.
        assert_eq!(follow(Some("node2"), "node2", &attached, true), None);
    }

    const MINE: Wanted =
        Wanted { delete: false, data_device: true, attach: true, primary: true, log_rotate: 0, log_delete: 0 };
    const SETTINGS: Settings = Settings { rotate_at: 1 << 30 };

    fn steps(s: Steps) -> Vec<Step> {
        s.as_slice().to_vec()
    }

    #[test]
    fn a_new_primary_attaches_then_starts_logging() {
        assert_eq!(steps(transitions(&MINE, &Local::default())), [Step::Attach, Step::BecomePrimary]);
    }

    #[test]
    fn an_attached_secondary_only_publishes_its_position() {
        let wanted = Wanted { primary: false, ..MINE };
        let local = Local { attached: true, ..Local::default() };
        assert!(transitions(&wanted, &local).is_empty());
        assert_eq!(steps(upkeep(&wanted, &local, &SETTINGS)), [Step::PublishReplayPosition]);
    }

    #[test]
    fn down_on_a_primary_stops_it_and_detaches_only_once_it_is_secondary() {
        let wanted = Wanted { attach: false, primary: false, ..MINE };
        let primary = Local { attached: true, primary: true, ..Local::default() };
        assert_eq!(steps(transitions(&wanted, &primary)), [Step::StopPrimary]);
        // If stopping failed (the device is open), the state is unchanged: detaching is still
        // listed, and the module refuses it while primary, which is reported.
        let secondary = Local { primary: false, ..primary };
        assert_eq!(steps(upkeep(&wanted, &secondary, &SETTINGS)), [Step::PublishReplayPosition, Step::Detach]);
    }

    #[test]
    fn primary_needs_attach_too() {
        let wanted = Wanted { attach: false, ..MINE };
        assert!(transitions(&wanted, &Local::default()).is_empty());
    }

    #[test]
    fn not_our_resource_means_nothing_to_do() {
        let wanted = Wanted { data_device: false, ..MINE };
        let local = Local { attached: true, primary: true, ..Local::default() };
        assert!(transitions(&wanted, &local).is_empty());
        assert!(upkeep(&wanted, &local, &SETTINGS).is_empty());
    }

    #[test]
    fn delete_waits_for_detach() {
        let wanted = Wanted { delete: true, ..MINE };
        assert!(transitions(&wanted, &Local { attached: true, ..Local::default() }).is_empty());
        assert_eq!(steps(transitions(&wanted, &Local::default())), [Step::Delete]);
        assert!(upkeep(&wanted, &Local::default(), &SETTINGS).is_empty());
    }

    #[test]
    fn log_rotate_requests_go_to_the_primary_and_are_done_once() {
        let wanted = Wanted { log_rotate: 3, ..MINE };
        let primary = Local { attached: true, primary: true, log_rotated: 2, ..Local::default() };
        assert_eq!(
            steps(upkeep(&wanted, &primary, &SETTINGS)),
            [Step::PublishReplayPosition, Step::Rotate { request: 3 }]
        );
        let done = Local { log_rotated: 3, ..primary };
        assert_eq!(steps(upkeep(&wanted, &done, &SETTINGS)), [Step::PublishReplayPosition]);
        let emergency = Local { emergency: true, ..primary };
        assert_eq!(steps(upkeep(&wanted, &emergency, &SETTINGS))[1], Step::RotateNotNeeded { request: 3 });
        let secondary = Local { primary: false, ..primary };
        assert_eq!(steps(upkeep(&wanted, &secondary, &SETTINGS)), [Step::PublishReplayPosition]);
    }

    #[test]
    fn a_full_logfile_is_rotated_unless_logging_stopped_or_the_limit_is_off() {
        let local = Local { attached: true, primary: true, logfile_bytes: Some(1 << 30), ..Local::default() };
        assert_eq!(steps(upkeep(&MINE, &local, &SETTINGS)), [Step::PublishReplayPosition, Step::RotateFull]);
        let below = Local { logfile_bytes: Some((1 << 30) - 1), ..local };
        assert_eq!(steps(upkeep(&MINE, &below, &SETTINGS)), [Step::PublishReplayPosition]);
        let emergency = Local { emergency: true, ..local };
        assert_eq!(steps(upkeep(&MINE, &emergency, &SETTINGS)), [Step::PublishReplayPosition]);
        assert_eq!(steps(upkeep(&MINE, &local, &Settings { rotate_at: 0 })), [Step::PublishReplayPosition]);
    }

    #[test]
    fn log_delete_needs_an_attached_data_device() {
        let wanted = Wanted { primary: false, log_delete: 1, ..MINE };
        let attached = Local { attached: true, ..Local::default() };
        assert_eq!(
            steps(upkeep(&wanted, &attached, &SETTINGS)),
            [Step::PublishReplayPosition, Step::DeleteLogs { request: 1 }]
        );
        assert!(upkeep(&wanted, &Local::default(), &SETTINGS).is_empty());
    }

    /// Every combination of inputs gives a plan within MAX_STEPS, never steps that contradict
    /// each other, and transitions that reach what is wanted.
    #[test]
    fn every_combination_is_consistent() {
        let bit = |bits: u32, i: u32| bits >> i & 1 == 1;
        for w in 0..16u32 {
            let (delete, data_device, attach, primary) = (bit(w, 0), bit(w, 1), bit(w, 2), bit(w, 3));
            for l in 0..8u32 {
                let (attached, is_primary, emergency) = (bit(l, 0), bit(l, 1), bit(l, 2));
                if is_primary && !attached {
                    continue; // not a state the module can be in
                }
                let wanted = Wanted { delete, data_device, attach, primary, log_rotate: 2, log_delete: 2 };
                let local = Local {
                    attached,
                    primary: is_primary,
                    emergency,
                    logfile_bytes: Some(u64::MAX),
                    log_rotated: 1,
                    log_deleted: 1,
                };
                let t = steps(transitions(&wanted, &local));
                let u = steps(upkeep(&wanted, &local, &SETTINGS));
                assert!(t.len() < MAX_STEPS && u.len() < MAX_STEPS, "{wanted:?} {local:?}: {t:?} {u:?}");
                assert!(!(t.contains(&Step::BecomePrimary) && t.contains(&Step::StopPrimary)));
                assert!(
                    !(u.contains(&Step::Rotate { request: 2 }) && u.contains(&Step::RotateNotNeeded { request: 2 }))
                );
                // Applying the transitions (all succeeding) reaches the wanted roles.
                let mut after = local;
                for s in &t {
                    match s {
                        Step::Attach => after.attached = true,
                        Step::BecomePrimary => after.primary = true,
                        Step::StopPrimary => after.primary = false,
                        _ => {}
                    }
                }
                if !delete && data_device {
                    // Without attach a primary stays one: `down` asks for secondary first, and
                    // upkeep's Detach is refused (and reported) while primary.
                    if attach {
                        assert!(after.attached && after.primary == primary, "{wanted:?} {local:?}");
                    }
                    assert!(transitions(&wanted, &after).is_empty(), "not a fixed point: {wanted:?} {after:?}");
                }
            }
        }
    }
}
