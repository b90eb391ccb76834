//! The one retry schedule every loop in the pipeline uses (connecting,
//! declaring the topology, consuming, holding a delivery through a transient
//! failure, waiting for a publish confirm, recording a dead-lettering).
//!
//! A few lines rather than a crate such as `backon`: every caller interleaves
//! its own checks between attempts (shutdown requested, the delivery's
//! channel gone, a fatal error elsewhere), which a retry combinator would
//! have to be told about through callbacks anyway.

use std::time::Duration;

/// Exponential backoff with full jitter between `first` and `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
    first: Duration,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            next: first,
            max,
            first,
        }
    }

    /// 100 ms doubling to 5 s: outages of the store, the broker or the HSM.
    pub fn outage() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(5))
    }

    /// 20 ms doubling to 2 s: a publish the broker did not confirm.
    pub fn publish() -> Self {
        Self::new(Duration::from_millis(20), Duration::from_secs(2))
    }

    /// The next wait: between half and all of the current step (jitter
    /// spreads the retries of many workers after a shared outage), then
    /// doubles the step up to `max`.
    pub fn next_wait(&mut self) -> Duration {
        let step = self.next;
        self.next = (self.next * 2).min(self.max);
        let half = step / 2;
        half + half.mul_f64(jitter())
    }

    /// The step the next wait is drawn from (for logs).
    pub fn current(&self) -> Duration {
        self.next
    }

    /// Back to the first step (after a success).
    pub fn reset(&mut self) {
        self.next = self.first;
    }

    /// Sleeps for [`Self::next_wait`].
    pub async fn wait(&mut self) {
        tokio::time::sleep(self.next_wait()).await;
    }
}

/// A number in [0, 1) that differs between calls and processes; jitter needs
/// no cryptographic quality.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_jitter_below_the_step() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));
        let steps: Vec<Duration> = (0..5)
            .map(|_| {
                let step = b.current();
                let w = b.next_wait();
                assert!(
                    w >= step / 2 && w <= step,
                    "{w:?} outside [{:?}, {step:?}]",
                    step / 2
                );
                step
            })
            .collect();
        assert_eq!(
            steps,
            [100, 200, 400, 400, 400]
                .map(Duration::from_millis)
                .to_vec()
        );
        b.reset();
        assert_eq!(b.current(), Duration::from_millis(100));
    }
}
