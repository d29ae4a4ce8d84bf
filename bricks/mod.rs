// SPDX-License-Identifier: GPL-2.0

//! The bricks of a resource's I/O graph (docs/architecture.md draws it), named as MARS names
//! them: each a small state machine over `kx` types, joined through the one [`brick::Brick`]
//! interface (and the if brick's [`r#if::BioInput`]).

pub(crate) mod apply;
pub(crate) mod block_source;
pub(crate) mod bio;
pub(crate) mod brick;
pub(crate) mod client;
pub(crate) mod copy;
pub(crate) mod fetch;
pub(crate) mod r#if;
pub(crate) mod log_source;
pub(crate) mod log_writer;
pub(crate) mod ranges;
pub(crate) mod replay;
pub(crate) mod server;
pub(crate) mod sio;
pub(crate) mod trans_logger;
pub(crate) mod tree_pull;
pub(crate) mod write_back;
