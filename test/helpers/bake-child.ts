/**
 * A local bake in a process of its own, on a workspace made by `makeWorkspace` (fake
 * image build, small runtime tree), for tests that SIGKILL it:
 * `node test/helpers/bake-child.ts <workspace dir> <bakeId> <pauseAt|-> <approve: auto|wait>`.
 * It prints every progress line and exits with 0 (released) or 1.
 */
import path from 'node:path';
import { LocalHome } from '../../src/adapters/local/home.ts';
import { renderTo } from '../../src/cli/render.ts';
import { createLocalDeps } from '../../src/compose/local.ts';
import { PROJECT_ROOT } from '../../src/local/asl.ts';
import { runBake } from '../../src/local/runner.ts';
import { FakeImageBuilder, withStandInNode } from './local-bake.ts';

const [dir, bakeId, pauseAt, approve] = process.argv.slice(2) as [string, string, string, string];
const home = new LocalHome(path.join(dir, 'home'));
const write = (line: string) => process.stdout.write(`${line}\n`);
const deps = withStandInNode(createLocalDeps({ home, projectRoot: PROJECT_ROOT, write, waitingHint: false }));
deps.imageBuilder = new FakeImageBuilder(deps.callbacks, path.join(dir, 'runtime-tree'));
const specFile = path.join(dir, 'project', 'bake.json');
const outcome = await runBake(
  { bakeId, source: { type: 'file', path: specFile }, trigger: { type: 'cli', user: 'tester' } },
  {
    deps,
    approve: approve === 'auto' ? 'auto' : 'wait',
    approver: 'tester',
    retryIntervalMs: 0,
    onEvent: renderTo(write),
    ...(pauseAt === '-' ? {} : { pauseAt }),
  },
);
write(`outcome ${outcome.status}`);
process.exit(outcome.status === 'succeeded' ? 0 : 1);
