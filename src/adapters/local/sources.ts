import path from 'node:path';
import type { SourceReader } from '../../ports/sources.ts';
import type { BakeSource } from '../../state.ts';

/** Sources on this machine: the spec file is read where it is. */
export class LocalSourceReader implements SourceReader {
  async open(source: BakeSource): Promise<{ specFile: string; where: string }> {
    if (source.type !== 'file') throw new Error('the local backend reads bakes from files; S3 sources need the AWS backend');
    return { specFile: path.resolve(source.path), where: source.path };
  }
}
