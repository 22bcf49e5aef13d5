//! When to talk to a repo's remote: every `push_interval` while it works, and after a failure
//! again after 1 s, 2 s, 4 s, ... at most 60 s, until it works again.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// The longest wait between retries of a failing remote.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct Schedule {
    interval: Duration,
    next: Instant,
    /// Consecutive failures.
    failures: u32,
    pub last_error: Option<String>,
    /// When the next attempt is due, for `jjfs status` (only while failing).
    pub next_retry: Option<DateTime<Utc>>,
}

impl Schedule {
    /// A remote checked first right away, then every `interval`.
    pub fn new(interval: Duration, now: Instant) -> Self {
        Self {
            interval,
            next: now,
            failures: 0,
            last_error: None,
            next_retry: None,
        }
    }

    pub fn set_interval(&mut self, interval: Duration, now: Instant) {
        if self.failures == 0 {
            self.next = self.next.min(now + interval);
        }
        self.interval = interval;
    }

    #[cfg(test)]
    pub fn due(&self, now: Instant) -> bool {
        now >= self.next
    }

    pub fn next(&self) -> Instant {
        self.next
    }

    pub fn succeeded(&mut self, now: Instant) {
        self.failures = 0;
        self.last_error = None;
        self.next_retry = None;
        self.next = now + self.interval;
    }

    pub fn failed(&mut self, error: String, now: Instant) {
        self.failures += 1;
        let wait = backoff(self.failures);
        self.last_error = Some(error);
        self.next = now + wait;
        self.next_retry = Some(Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default());
    }

    pub fn is_failing(&self) -> bool {
        self.failures > 0
    }
}

/// The wait after the `failures`-th failure in a row: 1 s, 2 s, 4 s, ... at most 60 s.
pub fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    Duration::from_secs(1u64 << exp).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        let waits: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn success_resets_and_waits_the_interval() {
        let t0 = Instant::now();
        let mut s = Schedule::new(Duration::from_secs(300), t0);
        assert!(s.due(t0));
        s.failed("refused".into(), t0);
        s.failed("refused".into(), t0);
        assert_eq!(s.next(), t0 + Duration::from_secs(2));
        assert!(s.is_failing() && s.next_retry.is_some());
        s.succeeded(t0);
        assert!(!s.is_failing() && s.last_error.is_none());
        assert_eq!(s.next(), t0 + Duration::from_secs(300));
    }
}
