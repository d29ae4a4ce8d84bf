/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Block-layer glue of mars.ko: backing devices opened by path, bios from kernel buffers, and the
 * bio-based gendisk /dev/mars/NAME. These wrap static inlines and macros (bio_for_each_segment,
 * blk_alloc_disk, add_disk, bdev_nr_sectors, ...) that the Rust bindings cannot reach; the Rust
 * side (drivers/kx/) documents each contract and wraps it in safe types.
 * All sizes are bytes unless named _sectors; errors are negative errnos.
 */
#ifndef MARS_BLK_H
#define MARS_BLK_H

#include <linux/types.h>

struct bio;
struct file;
struct gendisk;

/* Operations mars_bdev_submit() carries out. */
enum mars_io_op {
	MARS_IO_WRITE = 1,
	MARS_IO_DISCARD = 2,
	MARS_IO_READ = 3,
};

/* What an incoming bio asks for (struct mars_bio_info.op). */
enum mars_bio_op {
	MARS_BIO_OTHER = -1,
	MARS_BIO_READ = 0,
	MARS_BIO_WRITE = 1,
	MARS_BIO_FLUSH = 2,
	MARS_BIO_DISCARD = 3,
	MARS_BIO_WRITE_ZEROES = 4,
};

/*
 * Every code above, in this order: IO_WRITE, IO_DISCARD, BIO_OTHER, BIO_READ, BIO_WRITE,
 * BIO_FLUSH, BIO_DISCARD, BIO_WRITE_ZEROES, IO_READ. The Rust side (drivers/kx/shim.rs, `codes`) holds
 * the same values and compares them with this table when the module loads, refusing to load if
 * the two disagree.
 */
#define MARS_BLK_CODES 9
extern const int mars_blk_codes[MARS_BLK_CODES];

/* Sets up / tears down the bio_set all of mars.ko's own bios come from. */
int mars_blk_init(void);
void mars_blk_exit(void);

/* Opens the block device PATH for reading and writing, exclusively for HOLDER. ERR_PTR on error. */
struct file *mars_bdev_open(const char *path, void *holder);
void mars_bdev_close(struct file *bdev_file);
sector_t mars_bdev_sectors(struct file *bdev_file);
/* Waits until everything written to the device so far is durable. */
int mars_bdev_flush(struct file *bdev_file);

/*
 * Submits one bio of OP (enum mars_io_op) at SECTOR covering LEN bytes of BUF (kmalloc or
 * vmalloc memory that stays valid until completion: the data of a write, where a read puts its
 * data; none for a discard, which covers LEN bytes).
 * On completion, from any context, calls mars_rust_io_done(PRIVATE, errno).
 */
int mars_bdev_submit(struct file *bdev_file, int op, sector_t sector, void *buf, size_t len,
		     void *private);
/* Implemented in Rust (drivers/kx/bio.rs). */
void mars_rust_io_done(void *private, int error);

/* What an incoming bio asks for. */
struct mars_bio_info {
	u64 sector;
	u32 size;
	/* enum mars_bio_op: a write without data is MARS_BIO_FLUSH. */
	int op;
	/* 1 if REQ_PREFLUSH or REQ_FUA is set (or it is a flush): complete only once durable. */
	int durable;
};
void mars_bio_get_info(struct bio *bio, struct mars_bio_info *info);
/* Copies a write bio's data to BUF; returns bytes copied. */
size_t mars_bio_copy_out(struct bio *bio, void *buf);
/* Completes an incoming bio with ERROR (0 or a negative errno). */
void mars_bio_end(struct bio *bio, int error);
/*
 * Sends a clone of the incoming bio BIO to the block device BDEV_FILE (same sectors); when the
 * clone completes, BIO completes with its status and mars_rust_remap_done(PRIVATE) is called.
 * Safe to call from submit_bio context: it does not wait.
 */
void mars_bio_remap(struct bio *bio, struct file *bdev_file, void *private);
/* Implemented in Rust (drivers/kx/disk.rs). */
void mars_rust_remap_done(void *private);

/*
 * Creates and adds the disk /dev/mars/NAME of SECTORS sectors; its bios go to
 * mars_rust_submit_bio(PRIVATE, bio). ERR_PTR on error.
 */
struct gendisk *mars_disk_create(const char *name, sector_t sectors, void *private);
/*
 * Removes the disk: no new bios arrive after this returns (those the driver holds are still its
 * to complete).
 */
void mars_disk_remove(struct gendisk *disk);
/* Frees a removed disk; every bio it received must have been completed. */
void mars_disk_put(struct gendisk *disk);
/* Number of current openers of the whole disk. */
int mars_disk_openers(struct gendisk *disk);
/* Implemented in Rust (drivers/kx/disk.rs). */
void mars_rust_submit_bio(void *private, struct bio *bio);

#endif /* MARS_BLK_H */
