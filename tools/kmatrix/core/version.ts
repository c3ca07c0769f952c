/**
 * kmatrix's own version. Written here, not read from package.json: a workspace made by
 * `kmatrix init` carries this code beside its own package.json. test/unit/nx-plugin.test.ts checks
 * it equals the version in kmatrix's package.json.
 */
export const KMATRIX_VERSION = '0.1.0';
