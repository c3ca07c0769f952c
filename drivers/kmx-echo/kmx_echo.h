/* SPDX-License-Identifier: GPL-2.0 */
#ifndef KMX_ECHO_H
#define KMX_ECHO_H

#include <linux/miscdevice.h>
#include <linux/mutex.h>
#include <linux/types.h>
#include "kmx_echo_ioctl.h"

#define KMX_ECHO_NAME "kmx_echo"
#define KMX_ECHO_CAPACITY 4096

struct kmx_echo {
	struct mutex lock;	/* guards buf, len and stats */
	char buf[KMX_ECHO_CAPACITY];
	size_t len;
	struct kmx_echo_stats stats;
};

extern struct kmx_echo kmx_echo_state;
extern const struct file_operations kmx_echo_fops;
extern const struct attribute_group *kmx_echo_groups[];

#endif
