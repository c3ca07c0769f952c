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

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Mounts, the say/finish helpers and the first line the host waits for: every guest's start. */
const SHEBANG = '#!/bin/busybox sh\n';
const PROLOGUE = `${SHEBANG}/bin/busybox --install -s /bin
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
`;

/** Loads each module with `load` (given the name), reporting each; the first failure ends the test. */
function loadLoop(modules: string[], load: string): string {
  return `for m in ${modules.map(q).join(' ')}; do
  say step insmod "$m"
  if out=$(${load} 2>&1); then
    say insmod-ok "$m"
    loaded="$m $loaded"
  else
    say insmod-failed "$m" "$(echo "$out" | tr '\\n' ' ')"
    finish
  fi
done
`;
}

/** The smoke test (or that there is none), the unloads in reverse with `unload`, the end. */
function epilogue(modules: string[], hasSmokeTest: boolean, unload: string): string {
  const reversed = [...modules].reverse().map(q).join(' ');
  return `${
    hasSmokeTest
      ? `say step smoke
{ cd /tmp && sh /${GUEST_SMOKE} 2>&1; echo $? > /tmp/.smoke-rc; } | while IFS= read -r l; do echo "KMX-SMOKE $l"; done
rc=$(cat /tmp/.smoke-rc)
if [ "$rc" = 0 ]; then say smoke-ok; else say smoke-failed "$rc"; fi`
      : 'say smoke-none'
  }
for m in ${reversed}; do
  say step rmmod "$m"
  if out=$(${unload} 2>&1); then say rmmod-ok "$m"; else say rmmod-failed "$m" "$(echo "$out" | tr '\\n' ' ')"; fi
done
finish
`;
}

export function initScript(modules: string[], hasSmokeTest: boolean): string {
  return (
    PROLOGUE + loadLoop(modules, `insmod "/${GUEST_MODULES}/$m.ko"`) + epilogue(modules, hasSmokeTest, 'rmmod "$m"')
  );
}

/**
 * The guest's /init for a KMM kmod image whose files are the guest's root: what KMM does on a
 * node. Its image-extractor step runs the image's own `/bin/sh -c "mkdir -p /tmp/opt/lib/modules;
 * cp -R /opt/lib/modules/<kernel> /tmp/opt/lib/modules;"`; its worker then runs `modprobe -vd
 * /tmp/opt <module>` (each module of modulesLoadingOrder in turn). The guest's busybox modprobe
 * has no -d, so /tmp/opt/lib/modules is bind-mounted where modprobe looks: the same lookup of
 * <dir>/lib/modules/$(uname -r)/modules.dep that -d /tmp/opt makes.
 */
export function kmmInitScript(kernel: string, modules: string[], hasSmokeTest: boolean): string {
  const extract = `mkdir -p /tmp/opt/lib/modules; cp -R /opt/lib/modules/${kernel} /tmp/opt/lib/modules;`;
  // Before busybox installs its own links: the image must bring sh, mkdir and cp itself.
  const own = `lacks=""; for p in sh mkdir cp; do [ -e /bin/$p ] || lacks="$lacks /bin/$p"; done\n`;
  return (
    SHEBANG +
    own +
    PROLOGUE.slice(SHEBANG.length) +
    `say step kmm-extract
if [ -n "$lacks" ]; then say insmod-failed ${q(modules[0] ?? '')} "image-extractor: the image has no$lacks"; finish; fi
if ! out=$(/bin/sh -c ${q(extract)} 2>&1); then say insmod-failed ${q(modules[0] ?? '')} "image-extractor: $out"; finish; fi
mkdir -p /lib/modules && mount --bind /tmp/opt/lib/modules /lib/modules
` +
    loadLoop(modules, 'modprobe -v "$m"') +
    epilogue(modules, hasSmokeTest, 'modprobe -r "$m"')
  );
}
