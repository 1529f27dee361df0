//! What every reconnecting or retrying worker shares: ±25% jitter on a delay, and a sleep that a
//! cancellation cuts short.

use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// `d` scaled by a random factor in [0.75, 1.25], so that many workers retrying together spread
/// out.
pub(crate) fn jitter(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    let frac = f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX);
    d.mul_f64(0.75 + frac * 0.5)
}

/// Sleeps for `d`; false if `cancel` fired first.
pub(crate) async fn sleep_or_cancel(cancel: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_a_quarter() {
        for _ in 0..100 {
            let j = jitter(Duration::from_secs(4));
            assert!(
                j >= Duration::from_secs(3) && j <= Duration::from_secs(5),
                "{j:?}"
            );
        }
    }
}
