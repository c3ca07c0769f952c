/**
 * A real S3 implementation that honours conditional writes, on 127.0.0.1: Ceph's RADOS Gateway
 * from Debian (radosgw 16.2) over a throw-away one-node cluster (a monitor and one OSD keeping its
 * data in memory), started by hand as Ceph's own daemons, about 13 s. s3rver, the light
 * S3 stand-in of the other tests, ignores If-Match and If-None-Match on PUT; this one does not.
 *
 * RGW needs cephx-less clients to speak `crc secure` to the monitor (it insists on a secure
 * monitor connection), and listens with its beast frontend.
 */
import { execa } from 'execa';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { TestS3 } from './s3.ts';
import { freePort } from './http.ts';

const ACCESS = 'KMATRIXTESTACCESS';
const SECRET = 'KMATRIXTESTSECRET';

function cephConf(dir: string, fsid: string, ports: { v2: number; v1: number; rgw: number }): string {
  return `[global]
fsid = ${fsid}
mon initial members = a
mon host = [v2:127.0.0.1:${ports.v2},v1:127.0.0.1:${ports.v1}]
public network = 127.0.0.0/8
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
run dir = ${dir}/run
admin socket = ${dir}/run/$name.asok
log file = ${dir}/log/$name.log
pid file = ${dir}/run/$name.pid
keyring = ${dir}/keyring
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
mon data avail warn = 1
mon data avail crit = 1
osd objectstore = memstore
memstore device bytes = 536870912

[mon.a]
mon data = ${dir}/mon.a

[osd.0]
osd data = ${dir}/osd.0

[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:${ports.rgw}
rgw data = ${dir}/rgw
rgw dns name = 127.0.0.1
ms mon client mode = crc secure
`;
}

async function until(what: string, check: () => Promise<boolean>, seconds: number): Promise<void> {
  for (const deadline = Date.now() + seconds * 1000; Date.now() < deadline; ) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`radosgw test cluster: ${what} did not come up within ${seconds} s`);
}

/** Starts the cluster and the gateway, creates `bucket`; everything is stopped and removed when the test ends. */
export async function startRadosgw(t: TestContext, bucket: string): Promise<TestS3> {
  const dir = await mkdtemp(join(tmpdir(), 'kmatrix-radosgw-'));
  const stop = async () => {
    for (const f of await readdir(join(dir, 'run')).catch(() => [] as string[])) {
      if (!f.endsWith('.pid')) continue;
      const pid = Number(await readFile(join(dir, 'run', f), 'utf8').catch(() => '0'));
      if (pid) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    await rm(dir, { recursive: true, force: true });
  };
  t.after(stop);
  for (const sub of ['mon.a', 'osd.0', 'rgw', 'run', 'log']) await mkdir(join(dir, sub), { recursive: true });
  const ports = { v2: await freePort(), v1: await freePort(), rgw: await freePort() };
  const conf = join(dir, 'ceph.conf');
  const fsid = (await execa('uuidgen')).stdout.trim();
  await writeFile(conf, cephConf(dir, fsid, ports));
  const keyring = join(dir, 'keyring');
  await execa('ceph-authtool', ['--create-keyring', keyring, '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *']);
  await execa('monmaptool', [
    '--create',
    '--fsid',
    fsid,
    '--addv',
    'a',
    `[v2:127.0.0.1:${ports.v2},v1:127.0.0.1:${ports.v1}]`,
    join(dir, 'monmap'),
  ]);
  await execa('ceph-mon', ['-c', conf, '--mkfs', '-i', 'a', '--monmap', join(dir, 'monmap'), '--keyring', keyring]);
  await execa('ceph-mon', ['-c', conf, '-i', 'a']);
  const ceph = (args: string[]) => execa('ceph', ['-c', conf, '--connect-timeout', '30', ...args]);
  await until('the monitor', async () => (await ceph(['mon', 'stat'])).exitCode === 0, 60);
  const osdUuid = (await execa('uuidgen')).stdout.trim();
  const osd = (await ceph(['osd', 'new', osdUuid])).stdout.trim();
  await execa('ceph-osd', ['-c', conf, '-i', osd, '--mkfs', '--osd-uuid', osdUuid]);
  await execa('ceph-osd', ['-c', conf, '-i', osd]);
  await until('the OSD', async () => (await ceph(['osd', 'stat'])).stdout.includes('1 up'), 60);
  await execa('radosgw', ['-c', conf, '-n', 'client.rgw.a']);
  const endpoint = `http://127.0.0.1:${ports.rgw}`;
  await until('the gateway', async () => (await fetch(endpoint)).status < 500, 120);
  await execa('radosgw-admin', [
    '-c',
    conf,
    'user',
    'create',
    '--uid=kmatrix',
    '--display-name=kmatrix tests',
    `--access-key=${ACCESS}`,
    `--secret-key=${SECRET}`,
  ]);
  const client = new S3Client({
    endpoint,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: { accessKeyId: ACCESS, secretAccessKey: SECRET },
  });
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  return {
    env: {
      KMATRIX_S3_ENDPOINT: endpoint,
      AWS_ACCESS_KEY_ID: ACCESS,
      AWS_SECRET_ACCESS_KEY: SECRET,
      AWS_REGION: 'us-east-1',
    },
    client,
    dir,
  };
}
