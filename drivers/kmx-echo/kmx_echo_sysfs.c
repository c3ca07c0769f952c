// SPDX-License-Identifier: GPL-2.0
/* sysfs attributes on the misc device: /sys/class/misc/kmx_echo/{buffered,capacity,clear}. */
#include <linux/device.h>
#include <linux/sysfs.h>
#include <linux/kstrtox.h>
#include "kmx_echo.h"

static ssize_t buffered_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	size_t len;

	mutex_lock(&kmx_echo_state.lock);
	len = kmx_echo_state.len;
	mutex_unlock(&kmx_echo_state.lock);
	return sysfs_emit(buf, "%zu\n", len);
}
static DEVICE_ATTR_RO(buffered);

static ssize_t capacity_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", KMX_ECHO_CAPACITY);
}
static DEVICE_ATTR_RO(capacity);

static ssize_t clear_store(struct device *dev, struct device_attribute *attr,
			   const char *buf, size_t count)
{
	bool clear;
	int err = kstrtobool(buf, &clear);

	if (err)
		return err;
	if (clear) {
		mutex_lock(&kmx_echo_state.lock);
		kmx_echo_state.len = 0;
		kmx_echo_state.stats.buffered = 0;
		mutex_unlock(&kmx_echo_state.lock);
	}
	return count;
}
static DEVICE_ATTR_WO(clear);

static struct attribute *kmx_echo_attrs[] = {
	&dev_attr_buffered.attr,
	&dev_attr_capacity.attr,
	&dev_attr_clear.attr,
	NULL,
};

static const struct attribute_group kmx_echo_group = {
	.attrs = kmx_echo_attrs,
};

const struct attribute_group *kmx_echo_groups[] = {
	&kmx_echo_group,
	NULL,
};
