//! When to sync: a short quiet period after the last change groups an editor's save (write
//! a temp file, rename it) or an unpacked archive into one sync, but a stream of changes
//! never waits longer than the repo's `sync_interval`.

use std::time::{Duration, Instant};

/// Quiet time after the last change before a sync starts.
pub const QUIET: Duration = Duration::from_millis(15);

#[derive(Debug, Clone)]
pub struct Debounce {
    quiet: Duration,
    ceiling: Duration,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Debounce {
    pub fn new(quiet: Duration, ceiling: Duration) -> Self {
        Self {
            quiet,
            ceiling: ceiling.max(quiet),
            first: None,
            last: None,
        }
    }

    pub fn set_ceiling(&mut self, ceiling: Duration) {
        self.ceiling = ceiling.max(self.quiet);
    }

    /// A change arrived at `now`.
    pub fn note(&mut self, now: Instant) {
        self.first.get_or_insert(now);
        self.last = Some(now);
    }

    #[cfg(test)]
    pub fn is_pending(&self) -> bool {
        self.first.is_some()
    }

    /// When the pending changes should be synced (None when nothing is pending).
    pub fn deadline(&self) -> Option<Instant> {
        let (first, last) = (self.first?, self.last?);
        Some((last + self.quiet).min(first + self.ceiling))
    }

    /// A sync started: changes from now on start a new window.
    pub fn clear(&mut self) {
        self.first = None;
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_period_after_the_last_change() {
        let t0 = Instant::now();
        let mut d = Debounce::new(Duration::from_millis(10), Duration::from_secs(2));
        assert_eq!(d.deadline(), None);
        d.note(t0);
        assert_eq!(d.deadline(), Some(t0 + Duration::from_millis(10)));
        d.note(t0 + Duration::from_millis(5));
        assert_eq!(d.deadline(), Some(t0 + Duration::from_millis(15)));
    }

    #[test]
    fn a_stream_of_changes_waits_at_most_the_ceiling() {
        let t0 = Instant::now();
        let mut d = Debounce::new(Duration::from_millis(10), Duration::from_secs(2));
        for ms in (0..5000).step_by(5) {
            d.note(t0 + Duration::from_millis(ms));
        }
        assert_eq!(d.deadline(), Some(t0 + Duration::from_secs(2)));
        d.clear();
        assert!(!d.is_pending());
    }
}
