//! When to start a daemon again after it died (`--respawn`, defect D10).
//!
//! Exponential backoff: the first restart waits `backoff` (1s), each
//! quick death after that doubles the wait up to `backoff_max` (60s). A
//! program that ran longer than `healthy_after` (60s) before dying was
//! healthy: its wait goes back to `backoff`. Crash-loop limit: when
//! `limit` (5) starts fell within the last `interval` and the program
//! died again, the monitor gives up.
//!
//! Pure bookkeeping on instants handed in by the caller, so it is tested
//! without waiting.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The knobs of `--respawn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Respawn {
    /// First wait before a restart (`--respawn-backoff`, default 1s).
    pub backoff: Duration,
    /// Longest wait (`--respawn-max`, default 60s).
    pub backoff_max: Duration,
    /// Starts within `interval` that make a crash loop (`--respawn-limit`, default 5).
    pub limit: u32,
    /// The crash-loop window (`--respawn-interval`, default 60s).
    pub interval: Duration,
    /// A run this long was healthy: the next wait starts over from
    /// `backoff` (the daemon: the crash-loop window; the supervisor:
    /// ten times `backoff_initial`).
    pub healthy_after: Duration,
}

impl Default for Respawn {
    fn default() -> Self {
        Respawn {
            backoff: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            limit: 5,
            interval: Duration::from_secs(60),
            healthy_after: Duration::from_secs(60),
        }
    }
}

/// What to do after the program died.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Start it again after this wait.
    RestartIn(Duration),
    /// `starts` starts within the window died: stop trying.
    GiveUp { starts: usize },
}

/// The start history of one daemon.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: Respawn,
    starts: VecDeque<Instant>,
    next: Duration,
}

impl Backoff {
    pub fn new(policy: Respawn) -> Backoff {
        Backoff {
            policy,
            starts: VecDeque::new(),
            next: policy.backoff,
        }
    }

    /// Records a start at `at`.
    pub fn started(&mut self, at: Instant) {
        self.starts.push_back(at);
    }

    /// The program that started last died at `at`: restart or give up.
    pub fn died(&mut self, at: Instant) -> Verdict {
        let window = self.policy.interval;
        while self
            .starts
            .front()
            .is_some_and(|&s| at.saturating_duration_since(s) > window)
        {
            self.starts.pop_front();
        }
        let recent = self.starts.len();
        if recent >= self.policy.limit as usize {
            return Verdict::GiveUp { starts: recent };
        }
        let ran = self
            .starts
            .back()
            .map_or(Duration::ZERO, |&s| at.saturating_duration_since(s));
        if recent == 0 || ran > self.policy.healthy_after {
            // Healthy for a whole window: start over from the first wait.
            self.next = self.policy.backoff;
        }
        let wait = self.next;
        self.next = self.next.saturating_mul(2).min(self.policy.backoff_max);
        Verdict::RestartIn(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn doubles_then_gives_up_at_the_limit() {
        let mut b = Backoff::new(Respawn::default());
        let t0 = Instant::now();
        let mut t = t0;
        let mut waits = Vec::new();
        let verdict = loop {
            b.started(t);
            t += secs(0.1);
            match b.died(t) {
                Verdict::RestartIn(w) => {
                    waits.push(w);
                    t += w;
                }
                v => break v,
            }
        };
        assert_eq!(waits, [secs(1.0), secs(2.0), secs(4.0), secs(8.0)]);
        assert_eq!(verdict, Verdict::GiveUp { starts: 5 });
    }

    #[test]
    fn caps_at_the_maximum_and_resets_after_a_healthy_run() {
        let policy = Respawn {
            limit: 100,
            ..Respawn::default()
        };
        let mut b = Backoff::new(policy);
        let mut t = Instant::now();
        let mut last = Duration::ZERO;
        for _ in 0..10 {
            b.started(t);
            t += secs(0.1);
            let Verdict::RestartIn(w) = b.died(t) else {
                panic!("limit not reached yet")
            };
            last = w;
            t += w;
        }
        assert_eq!(last, secs(60.0));
        b.started(t);
        t += secs(61.0);
        assert_eq!(b.died(t), Verdict::RestartIn(secs(1.0)));
    }

    #[test]
    fn slow_deaths_never_hit_the_limit() {
        let mut b = Backoff::new(Respawn::default());
        let mut t = Instant::now();
        for _ in 0..20 {
            b.started(t);
            t += secs(30.0);
            let v = b.died(t);
            assert!(matches!(v, Verdict::RestartIn(_)), "{v:?}");
            if let Verdict::RestartIn(w) = v {
                t += w;
            }
        }
    }
}
