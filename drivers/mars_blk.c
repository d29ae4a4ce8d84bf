// SPDX-License-Identifier: GPL-2.0
/* Block-layer glue of mars.ko; see mars_blk.h. */

#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/sched/mm.h>
#include <linux/vmalloc.h>

#include "mars_blk.h"

/* A clone sent on to the data device, with what its completion needs in front of it. */
struct mars_clone {
	struct bio *parent;
	void *private;
	struct bio bio; /* must be last: the bio_set's front pad covers the fields above */
};

static struct bio_set mars_bio_set;

const int mars_blk_codes[MARS_BLK_CODES] = {
	MARS_IO_WRITE,	  MARS_IO_DISCARD, MARS_BIO_OTHER,   MARS_BIO_READ,
	MARS_BIO_WRITE,	  MARS_BIO_FLUSH,  MARS_BIO_DISCARD, MARS_BIO_WRITE_ZEROES,
	MARS_IO_READ,
};

int mars_blk_init(void)
{
	return bioset_init(&mars_bio_set, BIO_POOL_SIZE, offsetof(struct mars_clone, bio),
			   BIOSET_NEED_BVECS);
}

void mars_blk_exit(void)
{
	bioset_exit(&mars_bio_set);
}

struct file *mars_bdev_open(const char *path, void *holder)
{
	return bdev_file_open_by_path(path, BLK_OPEN_READ | BLK_OPEN_WRITE, holder, NULL);
}

void mars_bdev_close(struct file *bdev_file)
{
	bdev_fput(bdev_file);
}

sector_t mars_bdev_sectors(struct file *bdev_file)
{
	return bdev_nr_sectors(file_bdev(bdev_file));
}

int mars_bdev_flush(struct file *bdev_file)
{
	return blkdev_issue_flush(file_bdev(bdev_file));
}

static void mars_io_end(struct bio *bio)
{
	void *private = bio->bi_private;
	int error = blk_status_to_errno(bio->bi_status);

	bio_put(bio);
	mars_rust_io_done(private, error);
}

int mars_bdev_submit(struct file *bdev_file, int op, sector_t sector, void *buf, size_t len,
		     void *private)
{
	struct block_device *bdev = file_bdev(bdev_file);
	unsigned int nr_vecs = 0;
	blk_opf_t opf;
	struct bio *bio;

	switch (op) {
	case MARS_IO_WRITE:
		opf = REQ_OP_WRITE;
		break;
	case MARS_IO_DISCARD:
		opf = REQ_OP_DISCARD;
		break;
	case MARS_IO_READ:
		opf = REQ_OP_READ;
		break;
	default:
		return -EINVAL;
	}
	if (op != MARS_IO_DISCARD) {
		nr_vecs = DIV_ROUND_UP(offset_in_page(buf) + len, PAGE_SIZE);
		if (nr_vecs > BIO_MAX_VECS || !len)
			return -EINVAL;
	}
	if (len > UINT_MAX)
		return -EINVAL;
	bio = bio_alloc_bioset(bdev, nr_vecs, opf, GFP_NOIO, &mars_bio_set);
	bio->bi_iter.bi_sector = sector;
	if (op == MARS_IO_DISCARD) {
		bio->bi_iter.bi_size = len;
	} else {
		while (len) {
			size_t off = offset_in_page(buf);
			size_t n = min_t(size_t, len, PAGE_SIZE - off);
			struct page *page = is_vmalloc_addr(buf) ? vmalloc_to_page(buf) : virt_to_page(buf);

			if (bio_add_page(bio, page, n, off) != n) {
				bio_put(bio);
				return -EIO;
			}
			buf += n;
			len -= n;
		}
	}
	bio->bi_end_io = mars_io_end;
	bio->bi_private = private;
	submit_bio(bio);
	return 0;
}

void mars_bio_get_info(struct bio *bio, struct mars_bio_info *info)
{
	info->sector = bio->bi_iter.bi_sector;
	info->size = bio->bi_iter.bi_size;
	info->durable = !!(bio->bi_opf & (REQ_PREFLUSH | REQ_FUA)) || bio_op(bio) == REQ_OP_FLUSH;
	switch (bio_op(bio)) {
	case REQ_OP_READ:
		info->op = MARS_BIO_READ;
		break;
	case REQ_OP_WRITE:
		info->op = bio->bi_iter.bi_size ? MARS_BIO_WRITE : MARS_BIO_FLUSH;
		break;
	case REQ_OP_FLUSH:
		info->op = MARS_BIO_FLUSH;
		break;
	case REQ_OP_DISCARD:
		info->op = MARS_BIO_DISCARD;
		break;
	case REQ_OP_WRITE_ZEROES:
		info->op = MARS_BIO_WRITE_ZEROES;
		break;
	default:
		info->op = MARS_BIO_OTHER;
	}
}

size_t mars_bio_copy_out(struct bio *bio, void *buf)
{
	struct bvec_iter iter;
	struct bio_vec bv;
	size_t done = 0;

	bio_for_each_segment(bv, bio, iter) {
		memcpy_from_bvec(buf + done, &bv);
		done += bv.bv_len;
	}
	return done;
}

void mars_bio_end(struct bio *bio, int error)
{
	bio->bi_status = errno_to_blk_status(error);
	bio_endio(bio);
}

static void mars_remap_end(struct bio *bio)
{
	struct mars_clone *clone = container_of(bio, struct mars_clone, bio);
	struct bio *parent = clone->parent;
	void *private = clone->private;

	parent->bi_status = bio->bi_status;
	bio_put(bio);
	bio_endio(parent);
	mars_rust_remap_done(private);
}

void mars_bio_remap(struct bio *bio, struct file *bdev_file, void *private)
{
	struct bio *cloned = bio_alloc_clone(file_bdev(bdev_file), bio, GFP_NOIO, &mars_bio_set);
	struct mars_clone *clone;

	if (!cloned) {
		bio_io_error(bio);
		mars_rust_remap_done(private);
		return;
	}
	clone = container_of(cloned, struct mars_clone, bio);
	clone->parent = bio;
	clone->private = private;
	cloned->bi_end_io = mars_remap_end;
	submit_bio_noacct(cloned);
}

static void mars_submit_bio(struct bio *bio)
{
	unsigned int noio;

	bio = bio_split_to_limits(bio);
	if (!bio)
		return;
	/* Allocations on the way to the log must not recurse into I/O (on this very device). */
	noio = memalloc_noio_save();
	mars_rust_submit_bio(bio->bi_bdev->bd_disk->private_data, bio);
	memalloc_noio_restore(noio);
}

static const struct block_device_operations mars_fops = {
	.owner = THIS_MODULE,
	.submit_bio = mars_submit_bio,
};

struct gendisk *mars_disk_create(const char *name, sector_t sectors, void *private)
{
	struct queue_limits lim = {
		.logical_block_size = 512,
		.physical_block_size = 4096,
		.io_min = 4096,
		/* One incoming bio fits one log record (MAX_DATA, 1 MiB). */
		.max_hw_sectors = 2048,
		.max_segments = BIO_MAX_VECS,
		.max_hw_discard_sectors = 2048,
		.discard_granularity = 4096,
		.features = BLK_FEAT_WRITE_CACHE | BLK_FEAT_FUA,
	};
	struct gendisk *disk;
	int err;

	disk = blk_alloc_disk(&lim, NUMA_NO_NODE);
	if (IS_ERR(disk))
		return disk;
	disk->fops = &mars_fops;
	disk->private_data = private;
	snprintf(disk->disk_name, DISK_NAME_LEN, "mars/%s", name);
	set_capacity(disk, sectors);
	err = add_disk(disk);
	if (err) {
		put_disk(disk);
		return ERR_PTR(err);
	}
	return disk;
}

void mars_disk_remove(struct gendisk *disk)
{
	del_gendisk(disk);
}

void mars_disk_put(struct gendisk *disk)
{
	put_disk(disk);
}

int mars_disk_openers(struct gendisk *disk)
{
	return atomic_read(&disk->part0->bd_openers);
}
