// SPDX-License-Identifier: GPL-2.0
/* Module entry: registers the misc device /dev/kmx_echo. */
#include <linux/module.h>
#include <linux/init.h>
#include "kmx_echo.h"

struct kmx_echo kmx_echo_state;

static struct miscdevice kmx_echo_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = KMX_ECHO_NAME,
	.fops = &kmx_echo_fops,
	.groups = kmx_echo_groups,
	.mode = 0666,
};

static int __init kmx_echo_init(void)
{
	int err;

	mutex_init(&kmx_echo_state.lock);
	kmx_echo_state.stats.capacity = KMX_ECHO_CAPACITY;
	err = misc_register(&kmx_echo_misc);
	if (err) {
		pr_err(KMX_ECHO_NAME ": misc_register failed: %d\n", err);
		return err;
	}
	pr_info(KMX_ECHO_NAME ": ready on /dev/%s\n", KMX_ECHO_NAME);
	return 0;
}

static void __exit kmx_echo_exit(void)
{
	misc_deregister(&kmx_echo_misc);
	pr_info(KMX_ECHO_NAME ": unloaded\n");
}

module_init(kmx_echo_init);
module_exit(kmx_echo_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kmatrix");
MODULE_DESCRIPTION("Echo character device: read back what was written");
MODULE_VERSION("1.0.0");
