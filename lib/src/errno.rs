//! The errnos MARS reports in status texts, in words: people read `marsadm view`, not errno
//! tables.

use core::fmt;

/// An errno shown as its name and meaning, e.g. `EBUSY (device or resource busy)`; one MARS
/// does not expect is shown as `error N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Described(pub i32);

/// Describes `errno` (negative, as the kernel returns it, or positive).
pub const fn describe(errno: i32) -> Described {
    Described(errno)
}

impl Described {
    /// Name and meaning, if this is an errno MARS knows.
    pub const fn words(self) -> Option<(&'static str, &'static str)> {
        let n = if self.0 < 0 { self.0.wrapping_neg() } else { self.0 };
        Some(match n {
            1 => ("EPERM", "operation not permitted"),
            2 => ("ENOENT", "no such file or directory"),
            4 => ("EINTR", "interrupted"),
            5 => ("EIO", "input/output error"),
            6 => ("ENXIO", "no such device or address"),
            11 => ("EAGAIN", "no answer in time"),
            12 => ("ENOMEM", "out of memory"),
            13 => ("EACCES", "permission denied"),
            15 => ("ENOTBLK", "not a block device"),
            16 => ("EBUSY", "device or resource busy"),
            17 => ("EEXIST", "file exists"),
            19 => ("ENODEV", "no such device"),
            20 => ("ENOTDIR", "not a directory"),
            22 => ("EINVAL", "invalid argument"),
            27 => ("EFBIG", "file too large"),
            28 => ("ENOSPC", "no space left on device"),
            30 => ("EROFS", "read-only file system"),
            32 => ("EPIPE", "connection closed by the peer"),
            36 => ("ENAMETOOLONG", "file name too long"),
            61 => ("ENODATA", "no data available"),
            98 => ("EADDRINUSE", "address already in use"),
            99 => ("EADDRNOTAVAIL", "address not available on this host"),
            101 => ("ENETUNREACH", "network unreachable"),
            103 => ("ECONNABORTED", "connection aborted"),
            104 => ("ECONNRESET", "connection reset by the peer"),
            107 => ("ENOTCONN", "not connected"),
            110 => ("ETIMEDOUT", "timed out"),
            111 => ("ECONNREFUSED", "connection refused"),
            113 => ("EHOSTUNREACH", "no route to host"),
            117 => ("EUCLEAN", "structure needs cleaning"),
            _ => return None,
        })
    }
}

impl fmt::Display for Described {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.words() {
            Some((name, meaning)) => write!(f, "{name} ({meaning})"),
            None => write!(f, "error {}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_errnos_have_names_either_sign() {
        assert_eq!(describe(-16).to_string(), "EBUSY (device or resource busy)");
        assert_eq!(describe(28).to_string(), "ENOSPC (no space left on device)");
    }

    #[test]
    fn unknown_errnos_keep_their_number() {
        assert_eq!(describe(-4095).to_string(), "error -4095");
        assert_eq!(describe(i32::MIN).to_string(), format!("error {}", i32::MIN));
    }
}
