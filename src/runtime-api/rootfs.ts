import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  access,
  chmod,
  constants,
  copyFile,
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { sha256Hex, writeFileAtomic } from '../util/fsx.ts';

const run = promisify(execFile);

/**
 * Lambda's own values for a `provided.al2023` function (as the execution environment
 * sets them; see "Defined runtime environment variables" in the Lambda developer guide).
 * Inside a private root they resolve into that root, never into the host.
 */
export const LAMBDA_PATH = '/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin';
export const LAMBDA_LD_LIBRARY_PATH = '/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib';
export const LAMBDA_TASK_ROOT = '/var/task';
export const LAMBDA_RUNTIME_DIR = '/var/runtime';
/** The user Lambda runs functions as (`sbx_user1051`). */
export const LAMBDA_USER = { uid: 993, gid: 990, name: 'sbx_user1051' };

/**
 * The minimal base a private root gets: a shell and the few tools a bootstrap script
 * typically calls (`dirname`, `cat`, ...), copied from the host with the libraries they
 * link, plus the C and C++ runtime libraries Amazon Linux 2023 ships (a runtime binary
 * such as Node.js links libstdc++ and libgcc_s). No language runtime (node, python3,
 * perl, ...) is part of it, as none is part of `provided.al2023`. The host's tools stand
 * in for AL2023's: `sh` here is the host's (dash on Debian) where AL2023 has bash.
 */
export const BASE_TOOLS = [
  'sh',
  'cat',
  'dirname',
  'basename',
  'env',
  'ls',
  'mkdir',
  'rm',
  'cp',
  'mv',
  'ln',
  'chmod',
  'echo',
  'printf',
  'sleep',
  'head',
  'tail',
  'tr',
  'cut',
  'wc',
  'sort',
  'uname',
  'id',
  'date',
  'true',
  'false',
  'test',
  'pwd',
  'readlink',
  'grep',
  'sed',
  // AL2023 ships curl-minimal; a shell bootstrap talks to the Runtime API with it.
  'curl',
] as const;
const BASE_LIBRARIES = ['libstdc++.so.6', 'libgcc_s.so.1', 'libm.so.6', 'libdl.so.2', 'libpthread.so.0', 'librt.so.1'];
/** Device nodes bind-mounted from the host into the root's /dev (empty files until then). */
export const DEVICES = ['null', 'zero', 'random', 'urandom', 'full'] as const;

async function which(name: string): Promise<string | null> {
  for (const dir of ['/usr/bin', '/bin', '/usr/sbin', '/sbin']) {
    const candidate = path.join(dir, name);
    if (
      await access(candidate, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return candidate;
  }
  return null;
}

/** The shared libraries a host binary links, as `ldd` resolves them (absolute paths). */
async function linked(binary: string): Promise<string[]> {
  const { stdout } = await run('ldd', [binary]).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }));
  const libraries: string[] = [];
  for (const line of stdout.split('\n')) {
    const match = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)/.exec(line);
    if (match?.[1]) libraries.push(match[1]);
  }
  return libraries;
}

interface BaseFile {
  /** the host file */
  from: string;
  /** where it goes, relative to the base tree's `usr` */
  to: string;
}

/** Identity of a host file as the cache compares it: changed bytes change one of these. */
async function fingerprint(file: string): Promise<string | null> {
  const info = await stat(file).catch(() => null);
  return info ? `${file}:${info.dev}:${info.ino}:${info.size}:${info.mtimeMs}` : null;
}

/** The base tools found on this host, by absolute path. */
async function hostTools(): Promise<BaseFile[]> {
  const files: BaseFile[] = [];
  for (const tool of BASE_TOOLS) {
    const found = await which(tool);
    if (found) files.push({ from: found, to: path.posix.join('bin', tool) });
  }
  return files;
}

/** The libraries the tools link (ldd), with the C++ runtime and friends found where the host's libc lives. */
async function hostLibraries(tools: BaseFile[]): Promise<string[]> {
  const libraries = new Set<string>();
  for (const tool of tools) for (const lib of await linked(tool.from)) libraries.add(lib);
  const libc = [...libraries].find((l) => path.basename(l) === 'libc.so.6');
  if (libc) for (const name of BASE_LIBRARIES) libraries.add(path.join(path.dirname(libc), name));
  return [...libraries];
}

/**
 * The directory of this user's base trees: `<tmpdir>/bakery-base-<uid>`, 0700. Anything there
 * that is not this user's private directory (another user made it first, a symlink) is not
 * trusted: the caller gets null and builds a base of its own.
 */
async function cacheDir(): Promise<string | null> {
  const uid = typeof process.getuid === 'function' ? process.getuid() : null;
  if (uid === null) return null;
  const dir = path.join(os.tmpdir(), `bakery-base-${uid}`);
  await mkdir(dir, { mode: 0o700 }).catch(() => undefined);
  const info = await lstat(dir).catch(() => null);
  if (!info?.isDirectory() || info.uid !== uid || (info.mode & 0o077) !== 0) return null;
  return dir;
}

/** Copy the base files into `usr` under `dir`, laid out as AL2023 keeps them. */
async function layOut(dir: string, tools: BaseFile[], libraries: string[]): Promise<void> {
  const usr = path.join(dir, 'usr');
  for (const sub of ['bin', 'lib64', 'local/bin', 'lib']) await mkdir(path.join(usr, sub), { recursive: true });
  // Debian-built base tools look for their libraries under the multiarch directory too.
  await symlink('../lib64', path.join(usr, 'lib/x86_64-linux-gnu'));
  // Everything goes where AL2023 keeps it (/usr/lib64, which /lib64 links to): the ELF
  // interpreter /lib64/ld-linux-x86-64.so.2 and the libraries on Lambda's LD_LIBRARY_PATH.
  const files = [...tools, ...libraries.map((lib) => ({ from: lib, to: path.posix.join('lib64', path.basename(lib)) }))];
  for (const file of files) {
    const target = path.join(usr, file.to);
    const copied = await copyFile(file.from, target).then(
      () => true,
      () => false,
    );
    if (copied) await chmod(target, 0o755);
  }
}

let base: Promise<string> | undefined;

/**
 * The minimal base as a `usr` tree, made once per host and reused by every private root of
 * every process: `ldd` over the base tools and copying their 25 MB cost about 0.5 s, which
 * each Validate paid twice (once with a network, once without) before. Cached under
 * {@link cacheDir} by the identity (device, inode, size, mtime) of every file in it, so an
 * upgraded tool or library makes a new tree; a tree appears only whole (built aside, then
 * renamed into place), so a process killed mid-way leaves at worst a `.build-*` leftover.
 * Deleting the cache directory is always safe while no bake runs. Returns the tree's root (its
 * `usr` is bind-mounted read-only at the private root's /usr, as Lambda's is read-only).
 */
export function baseTree(): Promise<string> {
  base ??= (async () => {
    const tools = await hostTools();
    const toolsKey = sha256Hex((await Promise.all(tools.map((t) => fingerprint(t.from)))).join('\n'));
    const cache = await cacheDir();
    // Which libraries the tools link only changes with the tools: ldd once per set of tools.
    const librariesFile = cache ? path.join(cache, `libraries-${toolsKey}.json`) : null;
    let libraries = librariesFile
      ? await readFile(librariesFile, 'utf8').then(
          (text) => JSON.parse(text) as string[],
          () => null,
        )
      : null;
    if (!libraries) {
      libraries = await hostLibraries(tools);
      // A failure to write it only means ldd runs again next time.
      if (librariesFile) await writeFileAtomic(librariesFile, JSON.stringify(libraries)).catch(() => undefined);
    }
    const present: string[] = [];
    const prints: string[] = [];
    for (const lib of libraries) {
      const print = await fingerprint(lib);
      if (print) {
        present.push(lib);
        prints.push(print);
      }
    }
    const key = sha256Hex(`${toolsKey}\n${prints.join('\n')}`);
    const home = cache ?? (await mkdtemp(path.join(os.tmpdir(), 'bakery-base-')));
    const tree = path.join(home, key);
    if (await isDirectory(path.join(tree, 'usr'))) return tree;
    const building = path.join(home, `.build-${randomBytes(6).toString('hex')}`);
    await mkdir(building, { mode: 0o700 });
    await layOut(building, tools, present);
    await rename(building, tree).catch(async (error: NodeJS.ErrnoException) => {
      // Another process put the same tree in place first: use it.
      await rm(building, { recursive: true, force: true });
      if (!(await isDirectory(path.join(tree, 'usr')))) throw error;
    });
    return tree;
  })();
  base.catch(() => {
    base = undefined;
  });
  return base;
}

const isDirectory = (dir: string): Promise<boolean> =>
  lstat(dir).then(
    (info) => info.isDirectory(),
    () => false,
  );

/**
 * Lay out a private root in `dir` the way `provided.al2023` shows itself to a function:
 * `/opt` for the layers, `/var/task` for the code, a writable `/tmp`, `/var/runtime`,
 * `/var/lang`, and the minimal base ({@link BASE_TOOLS}) under a read-only `/usr` with
 * `/bin` and `/lib64` linking into it as on AL2023. Returns where the layers and the code
 * go, and the bind mount that shows the base at `/usr` (the sandbox makes it, see sandbox.ts).
 */
export async function buildRoot(
  dir: string,
): Promise<{ root: string; opt: string; task: string; binds: Array<{ from: string; to: string }> }> {
  const tree = await baseTree();
  for (const sub of ['usr', 'opt', 'var/task', 'var/runtime', 'var/lang/bin', 'etc', 'dev', 'proc']) {
    await mkdir(path.join(dir, sub), { recursive: true });
  }
  await mkdir(path.join(dir, 'tmp'), { recursive: true });
  await chmod(path.join(dir, 'tmp'), 0o1777);
  await symlink('usr/bin', path.join(dir, 'bin'));
  await symlink('usr/bin', path.join(dir, 'sbin'));
  await symlink('usr/lib64', path.join(dir, 'lib64'));
  await symlink('usr/lib', path.join(dir, 'lib'));
  for (const device of DEVICES) await writeFile(path.join(dir, 'dev', device), '');
  await writeFile(
    path.join(dir, 'etc/passwd'),
    `root:x:0:0:root:/root:/bin/sh\n${LAMBDA_USER.name}:x:${LAMBDA_USER.uid}:${LAMBDA_USER.gid}::/home/${LAMBDA_USER.name}:/sbin/nologin\n`,
  );
  await writeFile(path.join(dir, 'etc/group'), `root:x:0:\n${LAMBDA_USER.name}:x:${LAMBDA_USER.gid}:\n`);
  return {
    root: dir,
    opt: path.join(dir, 'opt'),
    task: path.join(dir, 'var/task'),
    binds: [{ from: path.join(tree, 'usr'), to: path.join(dir, 'usr') }],
  };
}

export { which as hostTool };
