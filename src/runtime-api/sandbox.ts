import { type ChildProcess, execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEVICES, hostTool, LAMBDA_TASK_ROOT, LAMBDA_USER } from './rootfs.ts';

const RELAY = path.join(path.dirname(fileURLToPath(import.meta.url)), 'netns-relay.mjs');
/** Inside its own namespace nothing else listens, so a fixed port is safe. */
const NETNS_RUNTIME_PORT = 9001;

export type NetworkMode = 'host' | 'none';

// Sandboxes run in their own process group so that stopping one stops everything the
// bootstrap started (a relay, a shell loop, the runtime), as Lambda discards a whole
// execution environment. Any still running when bakery exits are stopped too.
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Stop a sandbox and every process in it. */
export function killSandbox(child: ChildProcess): void {
  live.delete(child);
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    child.kill('SIGKILL');
  }
}

function track(child: ChildProcess): ChildProcess {
  live.add(child);
  child.on('exit', () => live.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const c of live) killSandbox(c);
    });
  }
  return child;
}

let isolation: Promise<{ available: boolean; reason: string | null }> | undefined;

/**
 * Whether this machine lets us start a process with no network at all: it needs
 * `unshare --net` (root or user namespaces) and `ip` to bring up the namespace's
 * loopback. Checked once, by trying.
 */
export function networkIsolation(): Promise<{ available: boolean; reason: string | null }> {
  isolation ??= new Promise((resolve) => {
    execFile('unshare', ['--net', '--', 'ip', 'link', 'set', 'lo', 'up'], { timeout: 5000 }, (error, _stdout, stderr) => {
      if (!error) resolve({ available: true, reason: null });
      else resolve({ available: false, reason: `unshare --net is not usable here: ${(stderr || error.message).trim()}` });
    });
  });
  return isolation;
}

let confinementCheck: Promise<{ available: boolean; reason: string | null }> | undefined;

/**
 * Whether this machine lets us give a bootstrap a private root (see rootfs.ts): it
 * needs `unshare --mount --pid` (root, or user namespaces with the capabilities a mount
 * and a chroot need), `chroot` and `ldd`. Checked once, by trying.
 */
export function rootConfinement(): Promise<{ available: boolean; reason: string | null }> {
  confinementCheck ??= (async (): Promise<{ available: boolean; reason: string | null }> => {
    const chroot = await hostTool('chroot');
    const mount = await hostTool('mount');
    const ldd = await hostTool('ldd');
    const missing = [!chroot && 'chroot', !mount && 'mount', !ldd && 'ldd'].filter(Boolean);
    if (missing.length > 0 || !chroot) return { available: false, reason: `${missing.join(', ')} not found on this machine` };
    return new Promise<{ available: boolean; reason: string | null }>((resolve) => {
      execFile(
        'unshare',
        ['--mount', '--pid', '--fork', '--', chroot, `--userspec=${LAMBDA_USER.uid}:${LAMBDA_USER.gid}`, '/', '/bin/true'],
        { timeout: 5000 },
        (error, _stdout, stderr) => {
          if (!error) resolve({ available: true, reason: null });
          else
            resolve({
              available: false,
              reason: `unshare --mount --pid with chroot is not usable here: ${(stderr || error.message).trim()}`,
            });
        },
      );
    });
  })();
  return confinementCheck;
}

// Runs on the host's side of the new namespaces, before the bootstrap sees its root:
// the devices a shell script expects, a /proc of the sandbox's own processes, the
// loopback when there is no network, then the command (the bootstrap under chroot, or
// the relay that starts it). Tools come by absolute path as the environment's PATH is
// Lambda's, which means nothing on the host.
const PREPARE_ROOT = [
  'set -e',
  'root=$1; mount=$2; ip=$3; binds=$4; shift 4',
  'while [ "$binds" -gt 0 ]; do "$mount" --bind -o ro "$1" "$2"; shift 2; binds=$((binds - 1)); done',
  `for device in ${DEVICES.join(' ')}; do "$mount" --bind "/dev/$device" "$root/dev/$device"; done`,
  '"$mount" -t proc proc "$root/proc"',
  'if [ -n "$ip" ]; then "$ip" link set lo up; fi',
  'exec "$@"',
].join('\n');

/**
 * Start a runtime's bootstrap. With `network: 'host'` it talks to the Runtime API at
 * `tcpAddress`; with `network: 'none'` it runs in a new network namespace whose only
 * way out is a relay to the Runtime API's Unix socket. With `root`, the bootstrap (a
 * path inside that root) runs chrooted into it, as Lambda's user, in private mount and
 * PID namespaces: it sees the root built by {@link buildRoot} and nothing of the host.
 */
export async function spawnBootstrap(options: {
  bootstrap: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  network: NetworkMode;
  tcpAddress: string;
  socketPath: string;
  root: string | null;
  /** Host files bind-mounted read-only over files of the root (absolute paths on both sides). */
  binds?: Array<{ from: string; to: string }>;
}): Promise<ChildProcess> {
  const stdio: ['ignore', 'pipe', 'pipe'] = ['ignore', 'pipe', 'pipe'];
  if (options.root !== null) {
    const chroot = (await hostTool('chroot')) ?? 'chroot';
    const mount = (await hostTool('mount')) ?? 'mount';
    const ip = options.network === 'none' ? ((await hostTool('ip')) ?? 'ip') : '';
    const unshare = (await hostTool('unshare')) ?? 'unshare';
    const binds = options.binds ?? [];
    // chroot starts in the root's /; Lambda starts the bootstrap in the task root.
    const inRoot = [
      chroot,
      `--userspec=${LAMBDA_USER.uid}:${LAMBDA_USER.gid}`,
      options.root,
      '/bin/sh',
      '-c',
      `cd ${LAMBDA_TASK_ROOT} && exec "$0"`,
      options.bootstrap,
    ];
    const command =
      options.network === 'none' ? [process.execPath, RELAY, options.socketPath, String(NETNS_RUNTIME_PORT), ...inRoot] : inRoot;
    const env = options.network === 'none' ? options.env : { ...options.env, AWS_LAMBDA_RUNTIME_API: options.tcpAddress };
    const namespaces = ['--mount', '--pid', '--fork', '--kill-child', ...(options.network === 'none' ? ['--net'] : [])];
    return track(
      spawn(
        unshare,
        [
          ...namespaces,
          '--',
          '/bin/sh',
          '-c',
          PREPARE_ROOT,
          'sh',
          options.root,
          mount,
          ip,
          String(binds.length),
          ...binds.flatMap((b) => [b.from, b.to]),
          ...command,
        ],
        {
          cwd: options.cwd,
          env,
          stdio,
          detached: true,
        },
      ),
    );
  }
  if (options.network === 'host') {
    return track(
      spawn(options.bootstrap, [], {
        cwd: options.cwd,
        env: { ...options.env, AWS_LAMBDA_RUNTIME_API: options.tcpAddress },
        stdio,
        detached: true,
      }),
    );
  }
  const script = 'ip link set lo up && exec "$@"';
  return track(
    spawn(
      'unshare',
      [
        '--net',
        '--',
        '/bin/sh',
        '-c',
        script,
        'sh',
        process.execPath,
        RELAY,
        options.socketPath,
        String(NETNS_RUNTIME_PORT),
        options.bootstrap,
      ],
      { cwd: options.cwd, env: options.env, stdio, detached: true },
    ),
  );
}
