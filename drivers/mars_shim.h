/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C shims of mars.ko: kernel helpers that are static inline, macros, or not reachable through
 * the Rust bindings. Each one is a thin wrapper; the Rust side (drivers/kx/) documents the
 * contract and wraps them in safe types.
 */
#ifndef MARS_SHIM_H
#define MARS_SHIM_H

#include <linux/types.h>

struct proc_dir_entry;
struct seq_file;

/* Creates the directory /proc/NAME. Returns NULL on failure. */
struct proc_dir_entry *mars_proc_mkdir(const char *name);

/*
 * Creates a read-only single_open() file NAME in PARENT whose contents SHOW prints;
 * seq_file->private is DATA. Returns NULL on failure.
 */
struct proc_dir_entry *mars_proc_create_single(const char *name, struct proc_dir_entry *parent,
					       int (*show)(struct seq_file *, void *), void *data);

/* Removes ENTRY and everything below it; waits until no reader is inside any of them. */
void mars_proc_remove(struct proc_dir_entry *entry);

/*
 * Copies the host name (nodename of the initial UTS namespace) into BUF of SIZE bytes,
 * NUL-terminated. Returns its length, or -E2BIG if it was truncated.
 */
ssize_t mars_host_name(char *buf, size_t size);

/* CRC-32C (Castagnoli, initial value and final XOR 0xFFFFFFFF) of LEN bytes at P, computed by the
 * kernel's crc32c(), which uses the CPU's CRC instructions where there are some. */
u32 mars_crc32c(const void *p, size_t len);

/* SHA-256 of LEN bytes at P into OUT (32 bytes), computed by the kernel's sha256() library
 * function, which uses the CPU's SHA or vector instructions where there are some. */
void mars_sha256(const void *p, size_t len, u8 *out);

/*
 * Marks the calling task so that none of its allocations recurse into I/O, until
 * mars_noio_end(returned value): for the threads that MARS's own I/O waits on.
 */
unsigned int mars_noio_begin(void);
void mars_noio_end(unsigned int flags);

/*
 * Nanoseconds of CPU time (user + system) the calling thread has used, as the scheduler tick
 * samples it: precise over many ticks, not over one call.
 */
u64 mars_thread_cpu_ns(void);

/* Fills BUF with LEN bytes from the kernel's cryptographically secure generator. */
void mars_random_bytes(void *buf, size_t len);

#endif /* MARS_SHIM_H */
