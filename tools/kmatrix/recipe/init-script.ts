/**
 * The guest's /init: load the modules, run the driver's smoke test, unload, print the kernel log,
 * power off. Everything it says goes to the serial console as `KMX-…` lines (boot/console.ts
 * reads them); the kernel's own console output is turned down to emergencies right after boot so
 * it cannot split those lines. Of the kernel log it prints what the test caused (every line from
 * the first insmod on) and any error line of the boot before it: a few lines instead of the
 * hundreds an emulated UART would have to carry. After `KMX-RESULT done` the host stops QEMU
 * itself; the guest waits before powering off so the console drains first (a power-off does not
 * wait for the UART, and under load the last lines were lost).
 */

/** Where the init script finds things inside the initramfs. */
export const GUEST_MODULES = 'kmatrix/modules';
export const GUEST_SMOKE = 'kmatrix/smoke.sh';

export function initScript(modules: string[], hasSmokeTest: boolean): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const list = modules.map(q).join(' ');
  const reversed = [...modules].reverse().map(q).join(' ');
  return `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /tmp && mount -t tmpfs tmp /tmp
dmesg -n 1
say() { echo "KMX-RESULT $*"; }
finish() {
  { dmesg | head -n "$before" | grep -E 'BUG:|Oops|WARNING:|Kernel panic|Call Trace'; dmesg | tail -n +"$((before + 1))"; } |
    while IFS= read -r l; do echo "KMX-DMESG $l"; done
  say done
  sleep 5
  poweroff -f
}
say booted "$(uname -r)"
before=$(dmesg | wc -l)
loaded=""
for m in ${list}; do
  say step insmod "$m"
  if out=$(insmod "/${GUEST_MODULES}/$m.ko" 2>&1); then
    say insmod-ok "$m"
    loaded="$m $loaded"
  else
    say insmod-failed "$m" "$(echo "$out" | tr '\\n' ' ')"
    finish
  fi
done
${
  hasSmokeTest
    ? `say step smoke
{ cd /tmp && sh /${GUEST_SMOKE} 2>&1; echo $? > /tmp/.smoke-rc; } | while IFS= read -r l; do echo "KMX-SMOKE $l"; done
rc=$(cat /tmp/.smoke-rc)
if [ "$rc" = 0 ]; then say smoke-ok; else say smoke-failed "$rc"; fi`
    : 'say smoke-none'
}
for m in ${reversed}; do
  say step rmmod "$m"
  if out=$(rmmod "$m" 2>&1); then say rmmod-ok "$m"; else say rmmod-failed "$m" "$(echo "$out" | tr '\\n' ' ')"; fi
done
finish
`;
}
