//! The one type and unit for a stored time: unix microseconds. Columns are
//! `TIMESTAMPTZ`; SQL converts with `tapvault_micros(col)` on the way out and
//! `tapvault_time($n)` on the way in (migration 0007), so no query does its
//! own epoch arithmetic and no caller guesses whether a number is seconds.

use serde::{Deserialize, Serialize};

#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    sqlx::Type,
)]
#[sqlx(transparent)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_micros(us: i64) -> Self {
        Timestamp(us)
    }

    pub const fn from_secs(s: i64) -> Self {
        Timestamp(s.saturating_mul(1_000_000))
    }

    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
    }

    pub const fn micros(self) -> i64 {
        self.0
    }

    /// Whole seconds, rounded down (the wire's unit).
    pub const fn secs(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_down_also_before_the_epoch() {
        assert_eq!(Timestamp::from_micros(1_999_999).secs(), 1);
        assert_eq!(Timestamp::from_micros(-1).secs(), -1);
        assert_eq!(Timestamp::from_secs(7).micros(), 7_000_000);
    }
}
