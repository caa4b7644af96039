import yauzl from 'yauzl';

/**
 * The total uncompressed size of a zip's entries, read from its central directory
 * (no entry is inflated): what the archive takes once extracted, the number Lambda's
 * 250 MB limit is about.
 */
export function unzippedSizeOf(zipFile: string): Promise<number> {
  return new Promise((resolve, reject) => {
    yauzl.open(zipFile, { lazyEntries: true, autoClose: true }, (error, zip) => {
      if (error) {
        reject(error);
        return;
      }
      let total = 0;
      zip.on('error', reject);
      zip.on('entry', (entry: yauzl.Entry) => {
        total += entry.uncompressedSize;
        zip.readEntry();
      });
      zip.on('end', () => resolve(total));
      zip.readEntry();
    });
  });
}
