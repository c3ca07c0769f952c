import { resolve } from 'node:path';
import { defaultPublishStore, openArtifactStore } from '../publish/open-artifact-store.ts';
import { readPublicKey } from '../publish/dsse.ts';
import { verifyArtifact } from '../publish/verify.ts';
import { sha256Hex } from '../model/names.ts';
import { defineCommand } from './command.ts';
import { KmatrixError } from '../core/errors.ts';

const about = `Checks a module a node downloaded, each check on its own line (✓ or ✗). Trust comes only from
the store's index (--store, default $KMATRIX_PUBLISH_STORE, else dist/published), or from a
provenance file whose SHA256 you pin (--provenance FILE --provenance-sha256 HEX): never from a
file found beside the module, which whoever changed the module could change too.

  digest       the SHA256 of the module (of its unsigned bytes, when it carries a signature)
  published    the store's index lists a module with exactly these bytes (and, for a signed
               module, this very signature)
  pinned       (instead of published) the provenance file has the pinned SHA256
  signed by    the provenance envelope (DSSE) carries a valid signature by --provenance-key
               (or KMATRIX_PROVENANCE_PUBLIC_KEY_FILE); a signed envelope with no key given fails,
               an unsigned one passes unless --require-signature
  provenance   the in-toto / SLSA v1 statement in it names these bytes as a subject; shows the
               target, toolchain image digest, header packages, source commit and builder
  vermagic     the module's vermagic starts with the kernelrelease the provenance names
  signature    an appended module signature is a valid PKCS#7 signature over the module by the
               certificate given (--cert, else KMATRIX_SIGN_CERT_FILE). An unsigned module fails
               when the store publishes it signed (load the .signed.ko), or with --require-signature

Exit code: 0 all checks pass, 1 a check failed.
`;

export const verifyCommand = defineCommand({
  name: 'verify',
  summary: 'check a module against its published digest, provenance and signature',
  args: 'ARTIFACT.ko',
  about,
  json: true,
  pathPositional: () => true,
  options: {
    store: {
      type: 'string',
      path: true,
      value: 'LOC',
      help: 'directory or s3://bucket/prefix it was published to (default: $KMATRIX_PUBLISH_STORE, else dist/published)',
    },
    provenance: {
      type: 'string',
      path: true,
      value: 'FILE',
      help: 'a provenance envelope or statement, with --provenance-sha256',
    },
    'provenance-sha256': { type: 'string', value: 'HEX', help: 'the SHA256 that --provenance FILE must have' },
    'provenance-key': {
      type: 'string',
      path: true,
      value: 'FILE',
      help: 'PEM public key the provenance is signed with',
    },
    cert: { type: 'string', path: true, value: 'FILE', help: 'X.509 certificate (PEM) of the module signing key' },
    'require-signature': { type: 'boolean', default: false, help: 'an unsigned module or provenance fails' },
  },
  async run({ values, positionals }, _, out) {
    const usage = (why: string) =>
      new KmatrixError(why, { stage: 'usage', remedy: 'npx kmatrix verify path/to/module.ko [--store LOC]' });
    if (positionals.length !== 1) throw usage('verify takes one module file');
    const pin = values['provenance-sha256'];
    if (!!values.provenance !== !!pin)
      throw usage(
        'a provenance file is trusted only with its SHA256 pinned: pass --provenance and --provenance-sha256 together',
      );
    if (pin && !sha256Hex.safeParse(pin).success) throw usage(`--provenance-sha256: "${pin}" is not a SHA256`);
    if (pin && values.store) throw usage('--store or a pinned --provenance, not both');
    const cert = values.cert ?? process.env.KMATRIX_SIGN_CERT_FILE;
    const keyFile = values['provenance-key'] ?? process.env.KMATRIX_PROVENANCE_PUBLIC_KEY_FILE;
    const checks = await verifyArtifact({
      file: resolve(positionals[0]!),
      ...(pin
        ? { pinned: { file: resolve(values.provenance!), sha256: pin } }
        : { store: await openArtifactStore(values.store ?? defaultPublishStore()) }),
      ...(keyFile
        ? {
            provenanceKey: await readPublicKey(
              keyFile,
              values['provenance-key'] ? '--provenance-key' : 'KMATRIX_PROVENANCE_PUBLIC_KEY_FILE',
            ),
          }
        : {}),
      ...(cert ? { cert } : {}),
      requireSignature: values['require-signature'],
    });
    for (const c of checks) out.print(`${c.ok ? '✓' : '✗'} ${c.what.padEnd(10)} ${c.detail}`);
    const failed = checks.filter((c) => !c.ok).length;
    out.print(failed === 0 ? 'verified' : `NOT verified: ${failed} check${failed === 1 ? '' : 's'} failed`);
    out.result({ file: positionals[0], verified: failed === 0, checks });
    return failed === 0 ? 0 : 1;
  },
});
