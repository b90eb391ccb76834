//! Per-broker rate limiting: a token bucket per broker, in this process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Token buckets by broker name.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// `per_second` on average, `burst` at once. A zero rate disables the limit.
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_second: f64::from(per_second),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `broker` at `now`; `Err(seconds)` to wait when empty.
    pub fn check(&self, broker: &str, now: Instant) -> Result<(), u32> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = buckets
            .entry(broker.to_owned())
            .or_insert((self.burst, now));
        let elapsed = now.saturating_duration_since(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * self.per_second).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - *tokens) / self.per_second).ceil();
            Err(if wait >= 1.0 { wait as u32 } else { 1 })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn buckets_refill_per_broker() {
        let r = RateLimiter::new(1, 2);
        let t = Instant::now();
        assert!(r.check("a", t).is_ok());
        assert!(r.check("a", t).is_ok());
        assert_eq!(r.check("a", t), Err(1));
        assert!(r.check("b", t).is_ok());
        assert!(r.check("a", t + Duration::from_secs(1)).is_ok());
        assert!(RateLimiter::new(0, 0).check("a", t).is_ok());
    }
}
