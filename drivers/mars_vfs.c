// SPDX-License-Identifier: GPL-2.0
/* VFS sequences for the /mars tree; see mars_vfs.h. */

#include <linux/dcache.h>
#include <linux/delayed_call.h>
#include <linux/fcntl.h>
#include <linux/fs.h>
#include <linux/mount.h>
#include <linux/namei.h>
#include <linux/string.h>

#include "mars_vfs.h"

int mars_vfs_symlink(const char *path, const char *target)
{
	struct path parent;
	struct dentry *dentry;
	int err;

	dentry = start_creating_path(AT_FDCWD, path, &parent, 0);
	if (IS_ERR(dentry))
		return PTR_ERR(dentry);
	err = vfs_symlink(mnt_idmap(parent.mnt), d_inode(parent.dentry), dentry, target, NULL);
	end_creating_path(&parent, dentry);
	return err;
}

/* Looks up the directory DIR and gets write access to its mount; undone by dir_write_end(). */
static int dir_write_begin(const char *dir, struct path *dir_path)
{
	int err = kern_path(dir, LOOKUP_DIRECTORY, dir_path);

	if (err)
		return err;
	err = mnt_want_write(dir_path->mnt);
	if (err)
		path_put(dir_path);
	return err;
}

static void dir_write_end(struct path *dir_path)
{
	mnt_drop_write(dir_path->mnt);
	path_put(dir_path);
}

int mars_vfs_rename(const char *dir, const char *old_name, const char *new_name)
{
	struct qstr old_last = QSTR(old_name);
	struct qstr new_last = QSTR(new_name);
	struct renamedata rd = {};
	struct path dir_path;
	int err;

	err = dir_write_begin(dir, &dir_path);
	if (err)
		return err;
	rd.mnt_idmap = mnt_idmap(dir_path.mnt);
	rd.old_parent = dir_path.dentry;
	rd.new_parent = dir_path.dentry;
	err = start_renaming(&rd, 0, &old_last, &new_last);
	if (!err) {
		err = vfs_rename(&rd);
		end_renaming(&rd);
	}
	dir_write_end(&dir_path);
	return err;
}

ssize_t mars_vfs_readlink(const char *path, char *buf, size_t size)
{
	DEFINE_DELAYED_CALL(done);
	struct path link_path;
	const char *target;
	ssize_t ret;

	ret = kern_path(path, 0, &link_path);
	if (ret)
		return ret;
	if (!d_is_symlink(link_path.dentry)) {
		ret = -EINVAL;
		goto out_put;
	}
	target = vfs_get_link(link_path.dentry, &done);
	if (IS_ERR(target)) {
		ret = PTR_ERR(target);
		goto out_put;
	}
	ret = strscpy(buf, target, size);
	do_delayed_call(&done);
out_put:
	path_put(&link_path);
	return ret;
}

int mars_vfs_dir_ctime(const char *path, u64 *ctime_ns)
{
	struct path dir_path;
	struct timespec64 ts;
	int err = kern_path(path, LOOKUP_DIRECTORY, &dir_path);

	if (err)
		return err;
	ts = inode_get_ctime(d_inode(dir_path.dentry));
	*ctime_ns = ts.tv_sec < 0 ? 0 : (u64)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
	path_put(&dir_path);
	return 0;
}


/* Removes DIR/NAME: a directory (which must be empty) if IS_DIR, else any other entry. */
static int mars_vfs_remove(const char *dir, const char *name, bool is_dir)
{
	struct qstr last = QSTR(name);
	struct path dir_path;
	struct dentry *dentry;
	int err;

	err = dir_write_begin(dir, &dir_path);
	if (err)
		return err;
	dentry = start_removing(mnt_idmap(dir_path.mnt), dir_path.dentry, &last);
	if (IS_ERR(dentry)) {
		err = PTR_ERR(dentry);
	} else {
		if (is_dir)
			err = vfs_rmdir(mnt_idmap(dir_path.mnt), d_inode(dir_path.dentry), dentry, NULL);
		else
			err = vfs_unlink(mnt_idmap(dir_path.mnt), d_inode(dir_path.dentry), dentry, NULL);
		end_removing(dentry);
	}
	dir_write_end(&dir_path);
	return err;
}

int mars_vfs_unlink(const char *dir, const char *name)
{
	return mars_vfs_remove(dir, name, false);
}

int mars_vfs_rmdir(const char *dir, const char *name)
{
	return mars_vfs_remove(dir, name, true);
}

int mars_vfs_mkdir(const char *path, umode_t mode)
{
	struct path parent;
	struct dentry *dentry;

	dentry = start_creating_path(AT_FDCWD, path, &parent, LOOKUP_DIRECTORY);
	if (IS_ERR(dentry))
		return PTR_ERR(dentry);
	dentry = vfs_mkdir(mnt_idmap(parent.mnt), d_inode(parent.dentry), dentry, mode, NULL);
	end_creating_path(&parent, dentry);
	return PTR_ERR_OR_ZERO(dentry);
}

/* A dir_context that forwards each entry to the caller's actor. */
struct mars_list_ctx {
	struct dir_context ctx;
	int (*actor)(void *priv, const char *name, int len, unsigned int type, u64 ino);
	void *priv;
	int err;
};

static bool mars_list_fill(struct dir_context *ctx, const char *name, int len, loff_t pos,
			   u64 ino, unsigned int type)
{
	struct mars_list_ctx *lc = container_of(ctx, struct mars_list_ctx, ctx);

	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return true;
	lc->err = lc->actor(lc->priv, name, len, type, ino);
	return lc->err == 0;
}

int mars_vfs_list(const char *path, int (*actor)(void *priv, const char *name, int len,
						  unsigned int type, u64 ino),
		  void *priv)
{
	struct mars_list_ctx lc = {
		.ctx.actor = mars_list_fill,
		.actor = actor,
		.priv = priv,
	};
	struct file *dir;
	int err;

	dir = filp_open(path, O_RDONLY | O_DIRECTORY, 0);
	if (IS_ERR(dir))
		return PTR_ERR(dir);
	err = iterate_dir(dir, &lc.ctx);
	filp_close(dir, NULL);
	return err ? err : lc.err;
}

int mars_vfs_truncate(struct file *file, loff_t length)
{
	return vfs_truncate(&file->f_path, length);
}

loff_t mars_vfs_size(struct file *file)
{
	return i_size_read(file_inode(file));
}
