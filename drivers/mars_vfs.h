/* SPDX-License-Identifier: GPL-2.0 */
/*
 * VFS sequences for the /mars tree: symlinks as keys (created, atomically replaced, read,
 * removed), directories, and directory listing. Each is a multi-step sequence of namei.c
 * helpers (lookup, lock, act, unlock) that the Rust bindings cannot express safely.
 * Paths are absolute kernel strings; errors are negative errnos.
 */
#ifndef MARS_VFS_H
#define MARS_VFS_H

#include <linux/types.h>

/* Creates the symlink PATH -> TARGET; -EEXIST if PATH exists. */
int mars_vfs_symlink(const char *path, const char *target);

/* Renames DIR/OLD_NAME to DIR/NEW_NAME, atomically replacing NEW_NAME if it exists. */
int mars_vfs_rename(const char *dir, const char *old_name, const char *new_name);

/*
 * Copies the target of the symlink PATH (not followed) into BUF of SIZE bytes, NUL-terminated.
 * Returns the target's length, -EINVAL if PATH is no symlink, -E2BIG if BUF is too small.
 */
ssize_t mars_vfs_readlink(const char *path, char *buf, size_t size);

/*
 * Stores the change time of the directory PATH in *CTIME_NS (nanoseconds since the epoch): it
 * moves whenever an entry is created, renamed or removed in it (the tree index lists again only
 * the directories that changed).
 */
int mars_vfs_dir_ctime(const char *path, u64 *ctime_ns);

/* Removes the non-directory DIR/NAME. */
int mars_vfs_unlink(const char *dir, const char *name);

/* Removes the empty directory DIR/NAME. */
int mars_vfs_rmdir(const char *dir, const char *name);

/* Creates the directory PATH with MODE; -EEXIST if PATH exists. */
int mars_vfs_mkdir(const char *path, umode_t mode);

/* Cuts the open regular file FILE to LENGTH bytes. */
int mars_vfs_truncate(struct file *file, loff_t length);

/* Size in bytes of the open file FILE. */
loff_t mars_vfs_size(struct file *file);

/*
 * Calls ACTOR(PRIV, NAME, LEN, DT_TYPE, INO) for each entry of the directory PATH except "."
 * and "..". ACTOR returns 0 to go on, or a negative errno to stop; mars_vfs_list returns that
 * errno, or 0 when every entry was seen.
 */
int mars_vfs_list(const char *path, int (*actor)(void *priv, const char *name, int len,
						  unsigned int type, u64 ino),
		  void *priv);

#endif /* MARS_VFS_H */
