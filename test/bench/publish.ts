/**
 * Bench figure "publish": `kmatrix publish` of N built targets into a directory store (each
 * module checked against its build record and the current driver sources, uploaded once, an
 * in-toto statement per target, the index written by compare-and-swap) against the least any
 * publishing does — copy each module into the store and record its SHA256 in one index file,
 * in-process. The N targets are the synthetic matrix with build outputs written the way a build
 * writes them (build.json whose inputs match target.json and the driver's files, a module of
 * `moduleBytes` random bytes); nothing is compiled.
 */
import { createHash, randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashTree } from '../../tools/kmatrix/core/hash.ts';
import { existingTargetFiles } from '../../tools/kmatrix/gen/sync.ts';
import { loadTarget } from '../../tools/kmatrix/model/target.ts';
import { outputDir, targetDir } from '../../tools/kmatrix/model/target-place.ts';
import { syntheticWorkspace } from './synthetic.ts';
import { measure } from './peak-memory.ts';

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

export interface PublishFigure {
  targets: number;
  bytes: number;
  oursSeconds: number;
  peakBytes: number;
  againSeconds: number;
  baselineSeconds: number;
  indexBytes: number;
}

export async function publishBench(n: number, runs: number, moduleBytes = 128 * 1024): Promise<PublishFigure> {
  const { ws } = await syntheticWorkspace(n);
  const scratch = await mkdtemp(join(tmpdir(), 'kmatrix-bench-publish-'));
  try {
    const files = await existingTargetFiles(ws.dir);
    const sources = await hashTree(join(ws.dir, 'drivers/kmx-echo'));
    const modules: { dir: string; ko: string }[] = [];
    for (const f of files) {
      const text = await readFile(join(ws.dir, f));
      const t = await loadTarget(join(ws.dir, f));
      const out = outputDir(ws.dir, t);
      await mkdir(out, { recursive: true });
      const ko = randomBytes(moduleBytes);
      await writeFile(join(out, 'kmx_echo.ko'), ko);
      const record = {
        target: t.name,
        inputs: {
          targetJsonSha256: sha256(text),
          toolchain: {
            name: t.toolchain.name,
            image: `127.0.0.1:5000/kmatrix/${t.toolchain.name}@${t.toolchain.digest}`,
          },
          headers: t.headers.map((h) => ({ name: h.name, version: h.version, sha256: h.sha256 })),
          driverSources: sources,
          make: ['make', '-C', t.kernelDir, 'M=/build/src', ...t.build.makeArgs, 'modules'],
          env: t.build.env,
        },
        outputs: [
          {
            file: 'kmx_echo.ko',
            sha256: sha256(ko),
            size: ko.length,
            vermagic: `${t.kernelrelease} SMP mod_unload modversions `,
          },
        ],
      };
      await writeFile(join(out, 'build.json'), `${JSON.stringify(record, null, 2)}\n`);
      modules.push({ dir: targetDir(t), ko: join(out, 'kmx_echo.ko') });
    }

    const cli = join(ws.dir, 'tools/kmatrix/cli.ts');
    const oursRuns: { seconds: number; peakBytes: number; again: number; indexBytes: number }[] = [];
    const baseRuns: number[] = [];
    for (let run = 0; run < runs; run++) {
      const store = join(scratch, `store-${run}`);
      const ours = await measure(process.execPath, [cli, 'publish', '--store', store], { cwd: ws.dir, env: ws.env });
      if (ours.exitCode !== 0 || !new RegExp(`^${files.length} published`, 'm').test(ours.output))
        throw new Error(`publish failed:\n${ours.output.slice(-2000)}`);
      const again = await measure(process.execPath, [cli, 'publish', '--store', store], { cwd: ws.dir, env: ws.env });
      if (again.exitCode !== 0 || !new RegExp(`^0 published, ${files.length} unchanged`, 'm').test(again.output))
        throw new Error(`publish again did something:\n${again.output.slice(-2000)}`);
      oursRuns.push({
        seconds: ours.seconds,
        peakBytes: ours.peakBytes,
        again: again.seconds,
        indexBytes: (await readFile(join(store, 'index.json'))).length,
      });

      // Baseline: copy each module into a store and record its digest, one index at the end.
      const plain = join(scratch, `plain-${run}`);
      const start = process.hrtime.bigint();
      const index: Record<string, string> = {};
      for (const m of modules) {
        await mkdir(join(plain, m.dir), { recursive: true });
        await copyFile(m.ko, join(plain, m.dir, 'kmx_echo.ko'));
        index[m.dir] = sha256(await readFile(m.ko));
      }
      await writeFile(join(plain, 'index.json'), JSON.stringify(index));
      baseRuns.push(Number(process.hrtime.bigint() - start) / 1e9);
    }
    const mid = <T>(xs: T[], key: (x: T) => number) =>
      [...xs].sort((a, b) => key(a) - key(b))[Math.floor(xs.length / 2)]!;
    const ours = mid(oursRuns, (r) => r.seconds);
    const againSeconds = mid(oursRuns, (r) => r.again).again;
    const baselineSeconds = mid(baseRuns, (x) => x);
    const { indexBytes } = ours;
    return {
      targets: files.length,
      bytes: files.length * moduleBytes,
      oursSeconds: ours.seconds,
      peakBytes: Math.max(...oursRuns.map((r) => r.peakBytes)),
      againSeconds,
      baselineSeconds,
      indexBytes,
    };
  } finally {
    await rm(scratch, { recursive: true, force: true });
    await ws.remove();
  }
}
