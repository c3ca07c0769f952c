/**
 * Version ordering for kernel ABIs and Debian versions (6.1.0-9 < 6.1.0-47 < 6.12.57+deb12):
 * digit runs compare as numbers, other runs as text, and `~` sorts before anything (Debian's rule).
 */
function chunks(v: string): string[] {
  return v.match(/\d+|[^\d]+/g) ?? [];
}

function compareText(a: string, b: string): number {
  const weight = (c: string) => (c === '~' ? -1 : c.charCodeAt(0));
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (i >= a.length) return b[i] === '~' ? 1 : -1;
    if (i >= b.length) return a[i] === '~' ? -1 : 1;
    const d = weight(a[i]!) - weight(b[i]!);
    if (d !== 0) return d;
  }
  return 0;
}

export function compareVersions(a: string, b: string): number {
  const x = chunks(a);
  const y = chunks(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const p = x[i];
    const q = y[i];
    if (p === undefined) return q!.startsWith('~') ? 1 : -1;
    if (q === undefined) return p.startsWith('~') ? -1 : 1;
    const pd = /^\d/.test(p);
    const qd = /^\d/.test(q);
    const d = pd && qd ? Number(p) - Number(q) : pd !== qd ? (pd ? 1 : -1) : compareText(p, q);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}
