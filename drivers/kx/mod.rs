// SPDX-License-Identifier: GPL-2.0

//! Kernel extras: the only place in mars.ko with `bindings::`, `extern "C"` and `unsafe`.
//!
//! Small RAII types in the style of `rust/kernel`, each with its safety argument, so that the
//! rest of the module is safe Rust.

pub(crate) mod bdev;
pub(crate) mod crc;
pub(crate) mod disk;
pub(crate) mod errno;
pub(crate) mod file;
pub(crate) mod host;
pub(crate) mod iobuf;
pub(crate) mod kthread;
pub(crate) mod net;
pub(crate) mod proc;
pub(crate) mod random;
pub(crate) mod sha;
mod shim;
pub(crate) mod time;
pub(crate) mod vfs;
pub(crate) mod wipe;
