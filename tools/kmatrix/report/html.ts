/**
 * The matrix report as one self-contained HTML page (inline CSS and JS, nothing fetched at view
 * time): per driver a grid of kernels × (distro, arch), each cell's status, module sha256 and a
 * link to its log; filters by distro, arch and status; counts on top.
 */
import type { BreakageWindow } from './breakage.ts';
import { relative, dirname, join } from 'node:path';
import type { Cell, ReportData, Status } from './data.ts';
import { bootLabel } from '../boot/result.ts';

const esc = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const STATUSES: Status[] = ['built', 'cached', 'failed', 'skipped', 'excluded', 'not built'];
/** The boot column: loads ✓, not loading ✗, untested (no verdict for these bytes, no image, infrastructure). */
export type BootColumn = 'loads' | 'not loading' | 'untested';
export function bootColumn(c: Cell): BootColumn {
  if (!c.boot) return 'untested';
  if (c.boot.status === 'loads') return 'loads';
  return c.boot.status === 'gap' || c.boot.status === 'error' ? 'untested' : 'not loading';
}
const BOOT_COLUMNS: BootColumn[] = ['loads', 'not loading', 'untested'];

function bootHtml(c: Cell, root: string, reportDir: string): string {
  if (c.modules.length === 0 && !c.boot) return '';
  const column = bootColumn(c);
  const label = c.boot ? bootLabel(c.boot.status) : 'not boot-tested';
  const link = c.boot?.console
    ? ` <a class="console" href="${esc(relative(reportDir, join(root, c.boot.console)))}">console</a>`
    : '';
  return `<div class="boot b-${column.replace(' ', '-')}" title="${esc(c.boot?.message ?? `run: npx nx run ${c.target}:test-driver`)}">${esc(label)}${link}</div>`;
}

function cellHtml(c: Cell, root: string, reportDir: string): string {
  const link = c.log ? ` <a class="log" href="${esc(relative(reportDir, join(root, c.log)))}">log</a>` : '';
  const mods = c.modules
    .map((m) => `<code title="${esc(`${m.file} sha256 ${m.sha256}`)}">${esc(m.sha256.slice(0, 12))}</code>`)
    .join(' ');
  const why =
    c.status === 'failed' && c.detail
      ? `<div class="why">${esc(c.detail.length > 90 ? `${c.detail.slice(0, 90)}…` : c.detail)}</div>`
      : '';
  return `<td class="cell s-${c.status.replace(' ', '-')}" data-distro="${esc(c.distro)}" data-arch="${esc(c.arch)}" data-status="${esc(c.status)}" data-boot="${bootColumn(c)}" data-target="${esc(c.target)}" title="${esc(c.detail ?? c.target)}"><span class="st">${esc(c.status)}</span> ${mods}${link}${why}${bootHtml(c, root, reportDir)}</td>`;
}

/** One breakage window as text cells: what works, the first failure, newly failing. */
function windowText(w: BreakageWindow): [string, string, string] {
  const works = w.works
    ? `${w.works.from === w.works.to ? w.works.from : `${w.works.from} … ${w.works.to}`} (${w.works.kernels} kernel${w.works.kernels === 1 ? '' : 's'}, ${w.works.bootTested} boot-tested)`
    : 'none';
  const first = w.firstFailure
    ? `${w.firstFailure.kernelrelease} (${w.firstFailure.stage}): ${w.firstFailure.error}`
    : 'none';
  return [works, first, w.newlyFailing.length ? w.newlyFailing.join(', ') : 'none'];
}

function windowsHtml(data: ReportData): string {
  if (data.windows.length === 0) return '';
  const rows = data.windows.map((w) => {
    const [works, first, newly] = windowText(w);
    return `<tr data-driver="${esc(w.driver)}"><td>${esc(w.driver)}</td><td>${esc(w.family)}</td><td>${esc(w.arch)}</td><td class="works">${esc(works)}</td><td class="first${w.firstFailure ? ' why' : ''}">${esc(first)}</td><td class="newly${w.newlyFailing.length ? ' why' : ''}">${esc(newly)}</td></tr>`;
  });
  const against = data.publishedState ? ` (against ${esc(data.publishedState)})` : ' (no published state given)';
  return `<h2>Breakage windows</h2><table class="windows"><thead><tr><th>driver</th><th>family</th><th>arch</th><th>builds and loads</th><th>first failing kernel</th><th>newly failing since published${against}</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

export function renderHtml(data: ReportData, root: string, outFile: string): string {
  const reportDir = dirname(outFile);
  const drivers = [...new Set(data.cells.map((c) => c.driver))];
  const distros = [...new Set(data.cells.map((c) => c.distro))].sort();
  const archs = [...new Set(data.cells.map((c) => c.arch))].sort();
  const option = (v: string) => `<option value="${esc(v)}">${esc(v)}</option>`;
  const grids = drivers.map((driver) => {
    const cells = data.cells.filter((c) => c.driver === driver);
    const columns = [...new Set(cells.map((c) => `${c.distro} ${c.arch}`))].sort();
    const rows = [...new Set(cells.map((c) => c.row))];
    const body = rows.map((row) => {
      const tds = columns.map((col) => {
        const here = cells.filter((c) => c.row === row && `${c.distro} ${c.arch}` === col);
        return here.length === 0 ? '<td class="empty"></td>' : here.map((c) => cellHtml(c, root, reportDir)).join('');
      });
      return `<tr><th scope="row">${esc(row)}</th>${tds.join('')}</tr>`;
    });
    return `<h2>${esc(driver)}</h2><table class="grid"><thead><tr><th>kernel</th>${columns.map((c) => `<th>${esc(c)}</th>`).join('')}</tr></thead><tbody>${body.join('')}</tbody></table>`;
  });
  const bootCounts = BOOT_COLUMNS.map(
    (b) =>
      `<span class="count b-${b.replace(' ', '-')}" data-boot-count="${esc(b)}">${esc(b === 'loads' ? 'loads ✓' : b === 'not loading' ? 'loads ✗' : 'not boot-tested')}: <b>${data.cells.filter((c) => c.status !== 'excluded' && bootColumn(c) === b).length}</b></span>`,
  ).join(' ');
  const counts = `${STATUSES.map((s) => `<span class="count s-${s.replace(' ', '-')}" data-count="${esc(s)}">${esc(s)}: <b>${data.counts[s]}</b></span>`).join(' ')} · ${bootCounts}`;
  const skipped = data.skipped.length
    ? `<h2>Kernels not in the matrix</h2><ul class="skipped">${data.skipped.map((s) => `<li><b>${esc(s.what)}</b>: ${esc(s.why)}</li>`).join('')}</ul>`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>kmatrix report</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
table.grid,table.windows{border-collapse:collapse;margin-bottom:2em}
th,td{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top}
td.cell code{font-size:12px}
.s-built{background:#d9f2d9}.s-cached{background:#e3ecfa}.s-failed{background:#f8d4d4}
.s-skipped{background:#f3ecd2}.s-excluded{background:#e6e6e6}.s-not-built{background:#fff}
.why{font-size:12px;color:#700;max-width:28em}
.boot{font-size:12px;margin-top:.2em}.b-loads{color:#075e07}.b-not-loading{color:#900;font-weight:bold}.b-untested{color:#666}
.count{padding:.2em .6em;margin-right:.4em;border-radius:3px}
.hidden{visibility:hidden}
tr.hidden{display:none}
</style></head><body>
<h1>kmatrix report</h1>
<p>Generated ${esc(data.generatedAt)}${data.lastRunAt ? `; last build run finished ${esc(data.lastRunAt)}` : '; no build run recorded yet'}. ${data.cells.length} targets.</p>
<p id="counts">${counts} <span id="shown"></span></p>
${windowsHtml(data)}
<form id="filters">
<label>distro <select name="distro"><option value="">all</option>${distros.map(option).join('')}</select></label>
<label>arch <select name="arch"><option value="">all</option>${archs.map(option).join('')}</select></label>
<label>status <select name="status"><option value="">all</option>${STATUSES.map(option).join('')}</select></label>
<label>boot <select name="boot"><option value="">all</option>${BOOT_COLUMNS.map(option).join('')}</select></label>
</form>
${grids.join('\n')}
${skipped}
<script>
const form = document.getElementById('filters');
function apply() {
  const f = Object.fromEntries(new FormData(form));
  let shown = 0;
  for (const td of document.querySelectorAll('td.cell')) {
    const ok = (!f.distro || td.dataset.distro === f.distro) && (!f.arch || td.dataset.arch === f.arch) && (!f.status || td.dataset.status === f.status) && (!f.boot || td.dataset.boot === f.boot);
    td.classList.toggle('hidden', !ok);
    if (ok) shown++;
  }
  for (const tr of document.querySelectorAll('table.grid tbody tr')) {
    tr.classList.toggle('hidden', !tr.querySelector('td.cell:not(.hidden)'));
  }
  document.getElementById('shown').textContent = shown + ' shown';
}
form.addEventListener('change', apply);
apply();
</script>
</body></html>
`;
}

export function renderMarkdown(data: ReportData): string {
  const rows = new Map<string, Record<Status, number>>();
  for (const c of data.cells) {
    const key = `${c.distro} | ${c.arch}`;
    const r = rows.get(key) ?? (Object.fromEntries(STATUSES.map((s) => [s, 0])) as Record<Status, number>);
    r[c.status]++;
    rows.set(key, r);
  }
  const lines = [
    '## kmatrix',
    '',
    `${data.cells.length} targets: ${STATUSES.filter((s) => data.counts[s])
      .map((s) => `${data.counts[s]} ${s}`)
      .join(', ')}`,
    '',
    `| distro | arch | ${STATUSES.join(' | ')} | loads ✓ | loads ✗ |`,
    `|---|---|${STATUSES.map(() => '---:').join('|')}|---:|---:|`,
    ...[...rows].sort().map(([key, r]) => {
      const cells = data.cells.filter((c) => `${c.distro} | ${c.arch}` === key);
      const boots = (b: BootColumn) => cells.filter((c) => bootColumn(c) === b).length;
      return `| ${key} | ${STATUSES.map((s) => r[s]).join(' | ')} | ${boots('loads')} | ${boots('not loading')} |`;
    }),
  ];
  if (data.windows.length) {
    lines.push(
      '',
      '### Breakage windows',
      '',
      '| driver | family | arch | builds and loads | first failing kernel | newly failing since published |',
      '|---|---|---|---|---|---|',
    );
    for (const w of data.windows) {
      const [works, first, newly] = windowText(w).map((t) => t.replace(/\|/g, '\\|').replace(/\n/g, ' '));
      lines.push(`| ${w.driver} | ${w.family} | ${w.arch} | ${works} | ${first} | ${newly} |`);
    }
  }
  const failed = data.cells.filter((c) => c.status === 'failed');
  if (failed.length) {
    lines.push('', '### Failed', '');
    for (const c of failed)
      lines.push(`- \`${c.target}\`: ${c.detail ?? 'failed'}${c.log ? ` (log: \`${c.log}\`)` : ''}`);
  }
  const notLoading = data.cells.filter((c) => bootColumn(c) === 'not loading');
  if (notLoading.length) {
    lines.push('', '### Not loading', '');
    for (const c of notLoading) lines.push(`- \`${c.target}\`: ${bootLabel(c.boot!.status)} — ${c.boot!.message}`);
  }
  return `${lines.join('\n')}\n`;
}
