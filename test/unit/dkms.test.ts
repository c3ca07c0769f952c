/**
 * What a dkms.conf evaluation says, read the way the build reads it: values arrive base64-encoded
 * from dkms-build.sh, module records follow DKMS's rules, bad values are named with their variable,
 * and nothing the driver's own build prints after the evaluation is believed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DkmsConfError, dkmsModules, dkmsPackage, dkmsSkip, readEvaluation } from '../../tools/kmatrix/compile/dkms.ts';

const line = (name: string, index: string, value: string) =>
  `kmatrix-dkms-var ${name} ${index} ${Buffer.from(value).toString('base64')}`;

test('module records: locations, renames, a lone nameless record is the package, names and folders are checked', () => {
  const ev = readEvaluation([
    line('PACKAGE_NAME', '-', 'kmx'),
    line('PACKAGE_VERSION', '-', '1.0'),
    line('BUILT_MODULE_NAME', '0', 'kmx_base'),
    line('BUILT_MODULE_LOCATION', '0', 'base/'),
    line('DEST_MODULE_NAME', '0', 'kmx_renamed'),
    line('BUILT_MODULE_NAME', '1', 'kmx_x86'),
    line('BUILT_MODULE_LOCATION', '1', 'arch'),
  ]);
  assert.deepEqual(dkmsPackage(ev), { name: 'kmx', version: '1.0' });
  assert.deepEqual(dkmsModules(ev), [
    { index: 0, built: 'kmx_base', location: 'base', dest: 'kmx_renamed' },
    { index: 1, built: 'kmx_x86', location: 'arch', dest: 'kmx_x86' },
  ]);
  const lone = readEvaluation([
    line('PACKAGE_NAME', '-', 'solo'),
    line('PACKAGE_VERSION', '-', '2'),
    line('DEST_MODULE_LOCATION', '0', '/updates'),
  ]);
  assert.deepEqual(
    dkmsModules(lone).map((m) => m.dest),
    ['solo'],
  );

  const bad = (lines: string[], variable: string, message: RegExp) => {
    const error = (() => {
      try {
        dkmsModules(readEvaluation([line('PACKAGE_NAME', '-', 'p'), line('PACKAGE_VERSION', '-', '1'), ...lines]));
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    assert.ok(error instanceof DkmsConfError, `${variable}: a typed error`);
    assert.equal(error.variable, variable);
    assert.match(error.message, message);
  };
  bad(
    [line('BUILT_MODULE_NAME', '0', 'a'), line('BUILT_MODULE_NAME', '1', '../../etc/passwd')],
    'BUILT_MODULE_NAME[1]',
    /"\.\.\/\.\.\/etc\/passwd" is not a module name/,
  );
  bad([line('BUILT_MODULE_NAME', '0', 'a.ko')], 'BUILT_MODULE_NAME[0]', /ends in \.o or \.ko/);
  bad(
    [line('BUILT_MODULE_NAME', '0', 'a'), line('BUILT_MODULE_LOCATION', '0', '/etc')],
    'BUILT_MODULE_LOCATION[0]',
    /must be a folder inside the source tree/,
  );
  bad(
    [line('BUILT_MODULE_NAME', '0', 'a'), line('BUILT_MODULE_LOCATION', '0', 'src/../..')],
    'BUILT_MODULE_LOCATION[0]',
    /inside the source tree/,
  );
  bad(
    [line('BUILT_MODULE_NAME', '0', 'a'), line('BUILT_MODULE_NAME', '1', 'b'), line('DEST_MODULE_NAME', '1', 'a')],
    'DEST_MODULE_NAME[1]',
    /an earlier record already installs/,
  );
  // A record the kernel's configuration would name: an error for a kernel, passed over without one.
  const kernelDependent = readEvaluation([
    line('PACKAGE_NAME', '-', 'p'),
    line('PACKAGE_VERSION', '-', '1'),
    line('BUILT_MODULE_NAME', '0', 'a'),
    line('BUILT_MODULE_LOCATION', '0', 'base'),
    line('BUILT_MODULE_LOCATION', '1', 'arch'),
  ]);
  assert.throws(() => dkmsModules(kernelDependent), /BUILT_MODULE_NAME\[1\]="" is not a module name/);
  assert.deepEqual(
    dkmsModules(kernelDependent, undefined, { withoutKernel: true }).map((m) => m.dest),
    ['a'],
  );
  assert.throws(() => dkmsPackage(readEvaluation([line('PACKAGE_VERSION', '-', '1')])), /PACKAGE_NAME="" is empty/);
});

test("only what is printed before the driver's own build is believed", () => {
  const lines = [
    line('PACKAGE_NAME', '-', 'p'),
    line('PACKAGE_VERSION', '-', '1'),
    line('BUILT_MODULE_NAME', '0', 'real'),
    'kmatrix-dkms-build',
    // A Makefile or a PRE_BUILD script trying to pass for the evaluation or for a skip:
    line('BUILT_MODULE_NAME', '0', 'forged'),
    'kmatrix-dkms-skip: nothing to see here',
  ];
  assert.deepEqual(
    dkmsModules(readEvaluation(lines)).map((m) => m.dest),
    ['real'],
  );
  assert.equal(dkmsSkip(lines), undefined);
  assert.equal(
    dkmsSkip([line('PACKAGE_NAME', '-', 'p'), 'kmatrix-dkms-skip: BUILD_EXCLUSIVE_ARCH="^arm" does not match x86_64']),
    'BUILD_EXCLUSIVE_ARCH="^arm" does not match x86_64',
  );
  // Values with spaces and newlines survive the trip.
  assert.equal(
    readEvaluation([line('MAKE', '0', 'make -C "$dir"\nKVER=1')])
      .arrays.get('MAKE')
      ?.get(0),
    'make -C "$dir"\nKVER=1',
  );
});
