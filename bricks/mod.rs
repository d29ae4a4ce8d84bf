// SPDX-License-Identifier: GPL-2.0

//! The bricks of a resource's I/O graph: each a small state machine over `kx` types.

pub(crate) mod apply;
pub(crate) mod log_writer;
pub(crate) mod replay;
pub(crate) mod trans_logger;
pub(crate) mod write_back;

