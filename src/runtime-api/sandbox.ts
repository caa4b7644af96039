import { type ChildProcess, execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

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

/**
 * Start a runtime's bootstrap. With `network: 'host'` it talks to the Runtime API at
 * `tcpAddress`; with `network: 'none'` it runs in a new network namespace whose only
 * way out is a relay to the Runtime API's Unix socket.
 */
export function spawnBootstrap(options: {
  bootstrap: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  network: NetworkMode;
  tcpAddress: string;
  socketPath: string;
}): ChildProcess {
  const stdio: ['ignore', 'pipe', 'pipe'] = ['ignore', 'pipe', 'pipe'];
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
