import { access, constants, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { StateDirError } from '../../errors.ts';
import { claimHome } from '../../local/home.ts';

/** The local backend's state directory (`BAKERY_HOME`, default `./.bakery`). */
export class LocalHome {
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  static fromEnv(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): LocalHome {
    return new LocalHome(env.BAKERY_HOME && env.BAKERY_HOME.length > 0 ? env.BAKERY_HOME : path.join(cwd, '.bakery'));
  }

  path(...parts: string[]): string {
    return path.join(this.root, ...parts);
  }

  /**
   * Make sure the directory is usable and bakery's own (src/local/home.ts); a named error
   * otherwise. With `create: false` a missing directory is fine (nothing has happened
   * yet), nothing is written, and a read-only home is accepted.
   */
  async ensure(options: { create?: boolean } = {}): Promise<void> {
    const create = options.create ?? true;
    const info = await stat(this.root).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw new StateDirError(`cannot read state directory ${this.root}: ${error.message}`, { cause: error });
    });
    if (info && !info.isDirectory()) {
      throw new StateDirError(`state directory ${this.root} is not a directory`, { hint: 'Point BAKERY_HOME at a directory.' });
    }
    if (!info && !create) return;
    try {
      if (!info) await mkdir(this.root, { recursive: true });
      // A home opened without `create` may be read-only: read commands still work there.
      await access(this.root, constants.R_OK | constants.X_OK | (create ? constants.W_OK : 0));
    } catch (cause) {
      throw new StateDirError(`state directory ${this.root} is not readable${create ? ' and writable' : ''}: ${(cause as Error).message}`, {
        cause,
        hint: 'Fix its permissions, or set BAKERY_HOME to another directory.',
      });
    }
    await claimHome(this.root, { write: create });
  }
}
