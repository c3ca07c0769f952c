#!/bin/sh
# Runs inside the booted guest (busybox sh) with kmx_echo loaded: what a user of the driver does.
set -e
dev=/dev/kmx_echo
sys=/sys/class/misc/kmx_echo
[ -c "$dev" ] || { echo "no character device $dev"; exit 1; }
echo "capacity: $(cat $sys/capacity)"
printf 'hello from the guest' > "$dev"
[ "$(cat $sys/buffered)" = 20 ] || { echo "buffered is $(cat $sys/buffered), expected 20"; exit 1; }
got=$(cat "$dev")
[ "$got" = 'hello from the guest' ] || { echo "read back '$got'"; exit 1; }
echo 1 > $sys/clear
[ "$(cat $sys/buffered)" = 0 ] || { echo "clear left $(cat $sys/buffered) bytes"; exit 1; }
echo "echo device ok: wrote, read back, cleared"
