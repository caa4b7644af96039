/**
 * `bakery serve` in a process of its own, on a workspace made by `makeWorkspace` (fake
 * image build, small runtime tree), for tests that SIGKILL it:
 * `node test/helpers/serve-child.ts <workspace dir> [pauseAt]`. Prints `ready` once serve.json is written;
 * with `pauseAt` (RunBakeOptions.pauseAt) every bake stops there until the process is killed.
 */
import path from 'node:path';
import { LocalHome } from '../../src/adapters/local/home.ts';
import { createLocalDeps } from '../../src/compose/local.ts';
import { PROJECT_ROOT } from '../../src/local/asl.ts';
import { startServe } from '../../src/serve/serve.ts';
import { FakeImageBuilder, withStandInNode } from './local-bake.ts';

const [dir, pauseAt] = process.argv.slice(2) as [string, string | undefined];
const home = new LocalHome(path.join(dir, 'home'));
const write = (line: string) => process.stdout.write(`${line}\n`);
const deps = withStandInNode(createLocalDeps({ home, projectRoot: PROJECT_ROOT, write, waitingHint: false }));
deps.imageBuilder = new FakeImageBuilder(deps.callbacks, path.join(dir, 'runtime-tree'));
await startServe({ home, deps, user: 'tester', runOptions: { retryIntervalMs: 0, waitMs: 0, ...(pauseAt ? { pauseAt } : {}) }, write });
write('ready');
