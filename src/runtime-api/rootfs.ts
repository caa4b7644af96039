import { execFile } from 'node:child_process';
import { access, chmod, constants, copyFile, mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

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

interface BaseFiles {
  /** host file → path inside the root */
  files: Array<{ from: string; to: string }>;
}

let base: Promise<BaseFiles> | undefined;

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

/** Work out (once) which host files make up the minimal base. */
function baseFiles(): Promise<BaseFiles> {
  base ??= (async () => {
    const files: BaseFiles['files'] = [];
    const libraries = new Set<string>();
    for (const tool of BASE_TOOLS) {
      const found = await which(tool);
      if (!found) continue;
      files.push({ from: found, to: path.posix.join('/usr/bin', tool) });
      for (const lib of await linked(found)) libraries.add(lib);
    }
    // The C++ runtime and friends, found where the host's libc lives.
    const libc = [...libraries].find((l) => path.basename(l) === 'libc.so.6');
    if (libc) for (const name of BASE_LIBRARIES) libraries.add(path.join(path.dirname(libc), name));
    for (const lib of libraries) {
      const exists = await access(lib).then(
        () => true,
        () => false,
      );
      if (!exists) continue;
      // Everything goes where AL2023 keeps it (/usr/lib64, which /lib64 links to): the ELF
      // interpreter /lib64/ld-linux-x86-64.so.2 and the libraries on Lambda's LD_LIBRARY_PATH.
      files.push({ from: lib, to: path.posix.join('/usr/lib64', path.basename(lib)) });
    }
    return { files };
  })();
  return base;
}

/**
 * Lay out a private root in `dir` the way `provided.al2023` shows itself to a function:
 * `/opt` for the layers, `/var/task` for the code, a writable `/tmp`, `/var/runtime`,
 * `/var/lang`, and the minimal base ({@link BASE_TOOLS}) under `/usr` with `/bin` and
 * `/lib64` linking into it as on AL2023. Returns where the layers and the code go.
 */
export async function buildRoot(dir: string): Promise<{ root: string; opt: string; task: string }> {
  const { files } = await baseFiles();
  for (const sub of ['usr/bin', 'usr/lib64', 'usr/local/bin', 'opt', 'var/task', 'var/runtime', 'var/lang/bin', 'etc', 'dev', 'proc']) {
    await mkdir(path.join(dir, sub), { recursive: true });
  }
  await mkdir(path.join(dir, 'tmp'), { recursive: true });
  await chmod(path.join(dir, 'tmp'), 0o1777);
  await symlink('usr/bin', path.join(dir, 'bin'));
  await symlink('usr/bin', path.join(dir, 'sbin'));
  await symlink('usr/lib64', path.join(dir, 'lib64'));
  // Debian-built base tools look for their libraries under the multiarch directory too.
  await mkdir(path.join(dir, 'usr/lib'), { recursive: true });
  await symlink('usr/lib', path.join(dir, 'lib'));
  await symlink('../lib64', path.join(dir, 'usr/lib/x86_64-linux-gnu'));
  for (const file of files) {
    const target = path.join(dir, file.to);
    await copyFile(file.from, target);
    await chmod(target, 0o755);
  }
  for (const device of DEVICES) await writeFile(path.join(dir, 'dev', device), '');
  await writeFile(
    path.join(dir, 'etc/passwd'),
    `root:x:0:0:root:/root:/bin/sh\n${LAMBDA_USER.name}:x:${LAMBDA_USER.uid}:${LAMBDA_USER.gid}::/home/${LAMBDA_USER.name}:/sbin/nologin\n`,
  );
  await writeFile(path.join(dir, 'etc/group'), `root:x:0:\n${LAMBDA_USER.name}:x:${LAMBDA_USER.gid}:\n`);
  return { root: dir, opt: path.join(dir, 'opt'), task: path.join(dir, 'var/task') };
}

export { which as hostTool };
