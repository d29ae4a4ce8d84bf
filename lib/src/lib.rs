//! The pure core of MARS.
//!
//! `no_std`, no allocation, no I/O: everything here works on plain values and byte slices, so
//! the kernel module compiles these very files and userspace tests them at full speed.
//!
//! `mars.ko` includes this file as a module with `#[path]` and builds with `--cfg mars_kernel`.
//! There the crate-level `no_std` comes from the kernel build itself, and items that only
//! userspace uses are allowed to stay unused.

#![cfg_attr(not(any(mars_kernel, test)), no_std)]
#![cfg_attr(mars_kernel, allow(unreachable_pub, dead_code))]

pub mod addr;
pub mod bytes;
pub mod crc32c;
pub mod errno;
pub mod fetch;
pub mod gossip;
pub mod lamport;
pub mod logrec;
pub mod names;
pub mod params;
pub mod peer_link;
pub mod pipeline;
pub mod proto;
pub mod proto_msg;
pub mod ratelimit;
pub mod reconcile;
pub mod resource_keys;
pub mod session;
pub mod sha256;
pub mod sync;
pub mod token_bucket;
pub mod tree;
pub mod tree_codec;

/// Version of MARS: of mars.ko, of marsadm, and of the formats they share.
pub const VERSION: &str = "0.1.0";

#[cfg(test)]
mod tests {
    #[test]
    fn version_matches_the_cargo_package() {
        assert_eq!(super::VERSION, env!("CARGO_PKG_VERSION"));
    }
}
