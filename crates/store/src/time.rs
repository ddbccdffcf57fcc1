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

    /// The earliest and latest times tapvault stores: years 1 to 9999
    /// (PostgreSQL holds more, but nothing outside these is a real time, and
    /// the arithmetic on them stays far from its limits).
    pub const MIN: Timestamp = Timestamp(-62_135_596_800 * 1_000_000);
    pub const MAX: Timestamp = Timestamp(253_402_300_799 * 1_000_000 + 999_999);

    /// Whole seconds as a time, or `None` outside [`Self::MIN`]..=[`Self::MAX`].
    pub fn checked_from_secs(s: i64) -> Option<Self> {
        s.checked_mul(1_000_000)
            .map(Timestamp)
            .filter(Timestamp::in_range)
    }

    /// Whether the time is one tapvault stores.
    pub fn in_range(&self) -> bool {
        (Self::MIN..=Self::MAX).contains(self)
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
    fn the_storable_range_is_years_1_to_9999() {
        assert!(Timestamp::checked_from_secs(0).is_some());
        assert!(Timestamp::checked_from_secs(253_402_300_799).is_some());
        assert!(Timestamp::checked_from_secs(253_402_300_800).is_none());
        assert!(Timestamp::checked_from_secs(-62_135_596_800).is_some());
        assert!(Timestamp::checked_from_secs(-62_135_596_801).is_none());
        assert!(Timestamp::checked_from_secs(i64::MAX).is_none());
        assert!(Timestamp::checked_from_secs(i64::MIN).is_none());
        assert!(!Timestamp::from_micros(i64::MAX).in_range());
    }

    #[test]
    fn seconds_round_down_also_before_the_epoch() {
        assert_eq!(Timestamp::from_micros(1_999_999).secs(), 1);
        assert_eq!(Timestamp::from_micros(-1).secs(), -1);
        assert_eq!(Timestamp::from_secs(7).micros(), 7_000_000);
    }
}
