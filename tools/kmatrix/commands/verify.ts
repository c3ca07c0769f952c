import { resolve } from 'node:path';
import { openArtifactStore } from '../publish/open-artifact-store.ts';
import { verifyArtifact } from '../publish/verify.ts';
import { defineCommand } from './command.ts';
import { KmatrixError } from '../core/errors.ts';

const about = `Checks a published module, each check on its own line (✓ or ✗):

  digest       the SHA256 of the module (of its unsigned bytes, when it carries a signature)
  published    with --store: the store's index lists a module with exactly these bytes (and,
               for a signed module, this very signature)
  provenance   the in-toto / SLSA v1 statement names these bytes as a subject; shows the target,
               toolchain image digest, header packages, source commit and builder. Read from
               --provenance, else provenance.intoto.json beside the file, else the store (whose
               index pins the statement's SHA256)
  vermagic     the module's vermagic starts with the kernelrelease the provenance names
  signature    an appended module signature is a valid PKCS#7 signature over the module by the
               certificate given (--cert, else KMATRIX_SIGN_CERT_FILE); unsigned passes unless
               --require-signature

Exit code: 0 all checks pass, 1 a check failed.
`;

export const verifyCommand = defineCommand({
  name: 'verify',
  summary: 'check a module against its published digest, provenance and signature',
  args: 'ARTIFACT.ko',
  about,
  options: {
    store: { type: 'string', value: 'LOC', help: 'directory or s3://bucket/prefix it was published to' },
    provenance: { type: 'string', value: 'FILE', help: 'the provenance statement to check against' },
    cert: { type: 'string', value: 'FILE', help: 'X.509 certificate (PEM) of the signing key' },
    'require-signature': { type: 'boolean', default: false, help: 'an unsigned module fails' },
  },
  async run({ values, positionals }) {
    if (positionals.length !== 1)
      throw new KmatrixError('verify takes one module file', {
        stage: 'usage',
        remedy: 'npx kmatrix verify path/to/module.ko [--store LOC]',
      });
    const cert = values.cert ?? process.env.KMATRIX_SIGN_CERT_FILE;
    const checks = await verifyArtifact({
      file: resolve(positionals[0]!),
      ...(values.store ? { store: await openArtifactStore(values.store) } : {}),
      ...(values.provenance ? { provenance: resolve(values.provenance) } : {}),
      ...(cert ? { cert } : {}),
      requireSignature: values['require-signature'],
    });
    for (const c of checks) process.stdout.write(`${c.ok ? '✓' : '✗'} ${c.what.padEnd(10)} ${c.detail}\n`);
    const failed = checks.filter((c) => !c.ok).length;
    process.stdout.write(
      failed === 0 ? 'verified\n' : `NOT verified: ${failed} check${failed === 1 ? '' : 's'} failed\n`,
    );
    return failed === 0 ? 0 : 1;
  },
});
