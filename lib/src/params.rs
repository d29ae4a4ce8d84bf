//! Load-time parameters of mars.ko and their allowed ranges.
//!
//! The kernel rejects an out-of-range value at `insmod` time with the message of
//! [`OutOfRange`]; marsadm and the docs quote the same limits.

use core::fmt;

/// The allowed range of one integer parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// Parameter name, as given to `insmod`/`modprobe`.
    pub name: &'static str,
    /// Smallest allowed value.
    pub min: u64,
    /// Largest allowed value.
    pub max: u64,
}

/// Interval of the strategy loop in milliseconds.
pub const INTERVAL_MS: Limit = Limit { name: "interval_ms", min: 100, max: 60_000 };

/// First of the four TCP ports MARS listens on (tree exchange, replication, sync, spare).
pub const PORT: Limit = Limit { name: "port", min: 1024, max: 65_532 };

/// Size in MiB at which the primary starts a new logfile on its own (0: only on request).
pub const LOG_ROTATE_MB: Limit = Limit { name: "log_rotate_mb", min: 0, max: 1 << 20 };

/// A parameter value outside its [`Limit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfRange {
    /// The violated limit.
    pub limit: Limit,
    /// The value that was given.
    pub value: u64,
}

impl Limit {
    /// Returns `value` if it lies within the limit.
    pub fn check(&self, value: u64) -> Result<u64, OutOfRange> {
        if (self.min..=self.max).contains(&value) {
            Ok(value)
        } else {
            Err(OutOfRange { limit: *self, value })
        }
    }
}

impl fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid parameter {}={}: must be between {} and {}",
            self.limit.name, self.value, self.limit.min, self.limit.max
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_bounds_and_rejects_beyond() {
        assert_eq!(INTERVAL_MS.check(100), Ok(100));
        assert_eq!(INTERVAL_MS.check(60_000), Ok(60_000));
        assert!(INTERVAL_MS.check(99).is_err());
        assert!(PORT.check(65_533).is_err());
        assert!(PORT.check(0).is_err());
        assert_eq!(LOG_ROTATE_MB.check(0), Ok(0));
        assert!(LOG_ROTATE_MB.check((1 << 20) + 1).is_err());
    }

    #[test]
    fn message_names_parameter_value_and_range() {
        let e = INTERVAL_MS.check(5).unwrap_err();
        assert_eq!(std::format!("{e}"), "invalid parameter interval_ms=5: must be between 100 and 60000");
    }
}
