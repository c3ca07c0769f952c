/** Reads `key=value` strings from a .ko's .modinfo section without needing modinfo(8). */
export function modinfoField(ko: Buffer, key: string): string | undefined {
  const needle = Buffer.from(`${key}=`);
  let at = ko.indexOf(needle);
  while (at !== -1) {
    // A real field starts right after a NUL (or at the section start) and ends at the next NUL.
    if (at === 0 || ko[at - 1] === 0) {
      const end = ko.indexOf(0, at);
      return ko.subarray(at + needle.length, end === -1 ? undefined : end).toString('utf8');
    }
    at = ko.indexOf(needle, at + 1);
  }
  return undefined;
}
