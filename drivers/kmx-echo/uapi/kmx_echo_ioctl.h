/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/* User-space interface of /dev/kmx_echo. */
#ifndef KMX_ECHO_IOCTL_H
#define KMX_ECHO_IOCTL_H

#include <linux/ioctl.h>
#include <linux/types.h>

struct kmx_echo_stats {
	__u64 bytes_written;
	__u64 bytes_read;
	__u32 writes;
	__u32 reads;
	__u32 buffered;
	__u32 capacity;
};

#define KMX_ECHO_IOC_MAGIC 'k'
#define KMX_ECHO_IOC_GET_STATS _IOR(KMX_ECHO_IOC_MAGIC, 1, struct kmx_echo_stats)
#define KMX_ECHO_IOC_CLEAR _IO(KMX_ECHO_IOC_MAGIC, 2)

#endif
