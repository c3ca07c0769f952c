/**
 * `kmatrix verify` and the provenance it reads, against someone who can change the files a node
 * downloads: a module with other bytes and a provenance file beside it rewritten to match is not
 * verified; a stripped signature is caught when the store signs; the provenance is a DSSE envelope
 * signed with the publisher's key, checked by kmatrix and by securesystemslib (an implementation
 * that is not ours); it names who built the module, and no credentials from any URL.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { createWorkspace, expectOk, prepareOneTarget } from '../support/workspace.ts';
import { provenanceKey, signingKey } from '../support/keys.ts';

const SECRET = 's3cr3t-token-in-the-origin-url';

/** securesystemslib checks the envelope's signature over DSSE's PAE (built here from the spec). */
const INDEPENDENT_CHECK = `
import base64, json, sys
from securesystemslib.signer import Signature, SSlibKey
envelope = json.load(open(sys.argv[1]))
public = open(sys.argv[2], 'rb').read()[-32:].hex()  # raw Ed25519 key: the SPKI DER's last 32 bytes
payload = base64.b64decode(envelope['payload'])
ptype = envelope['payloadType'].encode()
pae = b'DSSEv1 %d %s %d %s' % (len(ptype), ptype, len(payload), payload)
sig = envelope['signatures'][0]
key = SSlibKey(sig['keyid'], 'ed25519', 'ed25519', {'public': public})
key.verify_signature(Signature(sig['keyid'], base64.b64decode(sig['sig']).hex()), pae)
print('securesystemslib: valid')
`;

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('verify trusts only the store, catches a stripped signature, and checks DSSE-signed provenance', {
  timeout: 15 * 60_000,
}, async (t) => {
  const ws = await createWorkspace('kmatrix-sec-verify-');
  t.after(() => ws.remove());
  const scratch = await mkdtemp(join(tmpdir(), 'kmatrix-sec-verify-keys-'));
  t.after(() => rm(scratch, { recursive: true, force: true }));
  const project = await prepareOneTarget(ws);
  await ws.git(['remote', 'add', 'origin', `https://ci-bot:${SECRET}@git.example.com/org/drivers.git`]);
  expectOk(
    await ws.kmatrix(['build', project], { KMATRIX_BUILDER_ID: 'https://ci.example/build-runner' }),
    'kmatrix build',
  );

  const store = join(scratch, 'store');
  const moduleKey = await signingKey(scratch, 'module-signing');
  const { key, pub } = await provenanceKey(scratch, 'publisher');
  const stranger = await provenanceKey(scratch, 'stranger');
  const env = { ...moduleKey, KMATRIX_PROVENANCE_KEY_FILE: key, KMATRIX_BUILDER_ID: 'https://ci.example/publisher' };
  expectOk(await ws.kmatrix(['publish', '--store', store], env), 'kmatrix publish');
  const index = JSON.parse(await readFile(join(store, 'index.json'), 'utf8'));
  const entry = index.targets[project];
  const unsigned = join(store, entry.modules[0].key);
  const signed = join(store, entry.modules[0].signed.key);
  const verify = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
    ws.kmatrix(['verify', ...args], { KMATRIX_PUBLISH_STORE: store, ...extra });

  // The signed module, the publisher's key and the module certificate: verified.
  const good = await verify([signed, '--provenance-key', pub, '--cert', moduleKey.KMATRIX_SIGN_CERT_FILE]);
  assert.equal(good.exitCode, 0, good.all);
  assert.match(good.stdout, /✓ signed by {2}key [0-9a-f]{16}… \(DSSE\)/);
  assert.match(good.stdout, /builder https:\/\/ci\.example\/build-runner/);

  // Other bytes, with a statement beside them rewritten to name those bytes: the store does not list them.
  const forged = join(scratch, 'kmx_echo.ko');
  const bytes = await readFile(unsigned);
  bytes[bytes.length >> 1]! ^= 0xff;
  await writeFile(forged, bytes);
  const envelope = JSON.parse(await readFile(join(store, entry.provenance.key), 'utf8'));
  const statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8'));
  statement.subject[0].digest.sha256 = sha256(bytes);
  await writeFile(join(scratch, 'provenance.intoto.json'), JSON.stringify(statement));
  const fooled = await verify([forged]);
  assert.equal(fooled.exitCode, 1, fooled.all);
  assert.match(fooled.stdout, /✗ published +no target in .* has a module with these bytes/);
  const unpinned = await verify([forged, '--provenance', join(scratch, 'provenance.intoto.json')]);
  assert.equal(unpinned.exitCode, 2);
  assert.match(unpinned.all, /trusted only with its SHA256 pinned/);

  // The signature stripped off: the store publishes this module signed, so the bare one fails.
  const stripped = await verify([unsigned, '--provenance-key', pub]);
  assert.equal(stripped.exitCode, 1, stripped.all);
  assert.match(stripped.stdout, /✗ signature +.* publishes this module signed: verify .*\.signed\.ko/);

  // Signed provenance, and no key or another key to check it with: not verified.
  const noKey = await verify([signed, '--cert', moduleKey.KMATRIX_SIGN_CERT_FILE]);
  assert.equal(noKey.exitCode, 1);
  assert.match(noKey.stdout, /✗ signed by {2}key [0-9a-f]{16}…, which was not given/);
  const otherKey = await verify([signed, '--provenance-key', stranger.pub, '--cert', moduleKey.KMATRIX_SIGN_CERT_FILE]);
  assert.equal(otherKey.exitCode, 1);
  assert.match(otherKey.stdout, /✗ signed by {2}no valid signature by key/);

  // The envelope, checked by securesystemslib with the public key alone.
  const der = join(scratch, 'publisher.pub.der');
  await execa('openssl', ['pkey', '-pubin', '-in', pub, '-outform', 'DER', '-out', der]);
  const independent = await execa(
    '/usr/bin/python3',
    ['-c', INDEPENDENT_CHECK, join(store, entry.provenance.key), der],
    {
      reject: false,
      all: true,
    },
  );
  assert.equal(independent.exitCode, 0, independent.all);
  assert.match(independent.stdout, /securesystemslib: valid/);
  const tamperedEnvelope = join(scratch, 'tampered.dsse.json');
  await writeFile(
    tamperedEnvelope,
    JSON.stringify({ ...envelope, payload: Buffer.from(JSON.stringify(statement)).toString('base64') }),
  );
  const rejected = await execa('/usr/bin/python3', ['-c', INDEPENDENT_CHECK, tamperedEnvelope, der], { reject: false });
  assert.notEqual(rejected.exitCode, 0, 'securesystemslib rejects a rewritten payload');

  // What the statement records: the build's runner (not the publisher), no credentials.
  const published = Buffer.from(envelope.payload, 'base64').toString('utf8');
  assert.doesNotMatch(published, new RegExp(SECRET));
  assert.match(published, /"git\+https:\/\/git\.example\.com\/org\/drivers\.git"/);
  assert.equal(JSON.parse(published).predicate.runDetails.builder.id, 'https://ci.example/build-runner');

  // A bare statement in the envelope's place, its SHA256 put into the index: a key was given, so no.
  const bareStore = join(scratch, 'bare-store');
  await execa('cp', ['-a', store, bareStore]);
  const bare = Buffer.from(JSON.stringify(statement).replace(sha256(bytes), entry.modules[0].sha256));
  await writeFile(join(bareStore, entry.provenance.key), bare);
  const forgedIndex = JSON.parse(await readFile(join(bareStore, 'index.json'), 'utf8'));
  forgedIndex.targets[project].provenance = { ...entry.provenance, sha256: sha256(bare), size: bare.length };
  delete forgedIndex.targets[project].provenance.keyId;
  await writeFile(join(bareStore, 'index.json'), JSON.stringify(forgedIndex));
  const bareOne = join(bareStore, entry.modules[0].signed.key);
  const downgraded = await ws.kmatrix([
    'verify',
    bareOne,
    '--store',
    bareStore,
    '--provenance-key',
    pub,
    '--cert',
    moduleKey.KMATRIX_SIGN_CERT_FILE,
  ]);
  assert.equal(downgraded.exitCode, 1, downgraded.all);
  assert.match(downgraded.stdout, /✗ signed by {2}nobody \(a bare statement, not an envelope\)/);

  // The envelope in the store rewritten: it no longer has the SHA256 the index records.
  await copyFile(tamperedEnvelope, join(store, entry.provenance.key));
  const swapped = await verify([signed, '--provenance-key', pub, '--cert', moduleKey.KMATRIX_SIGN_CERT_FILE]);
  assert.equal(swapped.exitCode, 1);
  assert.match(swapped.stdout, /✗ provenance .* does not match the SHA256 the index records/);
});
