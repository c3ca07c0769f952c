// SPDX-License-Identifier: GPL-2.0
/* File operations of /dev/kmx_echo: write stores, read echoes, ioctl reports. */
#include <linux/fs.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#include "kmx_echo.h"

static ssize_t kmx_echo_write(struct file *file, const char __user *ubuf,
			      size_t count, loff_t *ppos)
{
	struct kmx_echo *e = &kmx_echo_state;
	size_t n = min_t(size_t, count, KMX_ECHO_CAPACITY);

	if (mutex_lock_interruptible(&e->lock))
		return -ERESTARTSYS;
	if (copy_from_user(e->buf, ubuf, n)) {
		mutex_unlock(&e->lock);
		return -EFAULT;
	}
	e->len = n;
	e->stats.bytes_written += n;
	e->stats.writes++;
	e->stats.buffered = n;
	mutex_unlock(&e->lock);
	return n;
}

static ssize_t kmx_echo_read(struct file *file, char __user *ubuf,
			     size_t count, loff_t *ppos)
{
	struct kmx_echo *e = &kmx_echo_state;
	ssize_t ret;

	if (mutex_lock_interruptible(&e->lock))
		return -ERESTARTSYS;
	ret = simple_read_from_buffer(ubuf, count, ppos, e->buf, e->len);
	if (ret > 0) {
		e->stats.bytes_read += ret;
		e->stats.reads++;
	}
	mutex_unlock(&e->lock);
	return ret;
}

static long kmx_echo_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct kmx_echo *e = &kmx_echo_state;
	struct kmx_echo_stats snapshot;

	switch (cmd) {
	case KMX_ECHO_IOC_GET_STATS:
		mutex_lock(&e->lock);
		snapshot = e->stats;
		mutex_unlock(&e->lock);
		if (copy_to_user((void __user *)arg, &snapshot, sizeof(snapshot)))
			return -EFAULT;
		return 0;
	case KMX_ECHO_IOC_CLEAR:
		mutex_lock(&e->lock);
		e->len = 0;
		e->stats.buffered = 0;
		mutex_unlock(&e->lock);
		return 0;
	default:
		return -ENOTTY;
	}
}

const struct file_operations kmx_echo_fops = {
	.owner = THIS_MODULE,
	.read = kmx_echo_read,
	.write = kmx_echo_write,
	.unlocked_ioctl = kmx_echo_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 12, 0)
	/* no_llseek was removed in 6.12, where a NULL llseek means the same. */
	.llseek = no_llseek,
#endif
};
