/**
 * One build's header fetching in a process of its own, as Nx's one process per task does it:
 * the packages (JSON on stdin) into the store at argv[2].
 */
import { text } from 'node:stream/consumers';
import { HeaderStore } from '../../tools/kmatrix/packages/store.ts';
import type { HeaderPackage } from '../../tools/kmatrix/model/kernel-list.ts';

const packages = JSON.parse(await text(process.stdin)) as HeaderPackage[];
const store = new HeaderStore(process.argv[2]!, (line) => process.stderr.write(`${line}\n`));
await Promise.all(packages.map((p) => store.tree(p)));
