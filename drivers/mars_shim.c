// SPDX-License-Identifier: GPL-2.0
/* C shims of mars.ko; see mars_shim.h. */

#include <crypto/sha2.h>
#include <linux/crc32.h>
#include <linux/proc_fs.h>
#include <linux/random.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/seq_file.h>
#include <linux/string.h>
#include <linux/utsname.h>

#include "mars_shim.h"

struct proc_dir_entry *mars_proc_mkdir(const char *name)
{
	return proc_mkdir(name, NULL);
}

struct proc_dir_entry *mars_proc_create_single(const char *name, struct proc_dir_entry *parent,
					       int (*show)(struct seq_file *, void *), void *data)
{
	return proc_create_single_data(name, 0444, parent, show, data);
}

void mars_proc_remove(struct proc_dir_entry *entry)
{
	proc_remove(entry);
}

ssize_t mars_host_name(char *buf, size_t size)
{
	return strscpy(buf, init_utsname()->nodename, size);
}

u32 mars_crc32c(const void *p, size_t len)
{
	return ~crc32c(~0U, p, len);
}

void mars_sha256(const void *p, size_t len, u8 *out)
{
	sha256(p, len, out);
}

void mars_random_bytes(void *buf, size_t len)
{
	get_random_bytes(buf, len);
}

unsigned int mars_noio_begin(void)
{
	return memalloc_noio_save();
}

void mars_noio_end(unsigned int flags)
{
	memalloc_noio_restore(flags);
}

u64 mars_thread_cpu_ns(void)
{
	return current->utime + current->stime;
}
