/**
 * `npm run bench [-- --json] [-- --runs N]`: every figure of issue #16, as ratios measured in
 * one run on this machine. Prints figures only: timing on a shared machine is noisy, so
 * nothing here (and no test anywhere) asserts a time.
 *
 * - zip time and size of zipTree against `zip -X -r` on the ~125 MB runtime tree (bench/zip.ts);
 * - a cold local bake of the example, against `zip -X -r`;
 * - a no-op rebake (up to date) and a code-only change, against the cold bake;
 * - `bakery status` against `node -e 0` on the same Node.js, and its absolute median of 5;
 * - the per-function cost of one bake to N = 50 functions against one to N = 1;
 * - state transitions per path, counted from the events of real runs of the state machine
 *   (released at once, gradual with n steps, up to date, failed in Validate).
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { run as runIn } from './child.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const EXAMPLE = path.join(ROOT, 'examples', 'hello');
const BIN = path.join(ROOT, 'bin', 'bakery.mjs');

const { values: args } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    runs: { type: 'string', default: '3' },
    functions: { type: 'string', default: '50' },
  },
});
const RUNS = Math.max(1, Number.parseInt(args.runs, 10) || 3);
const MANY = Math.max(2, Number.parseInt(args.functions, 10) || 50);

const log = (line: string): void => {
  if (!args.json) process.stderr.write(`${line}\n`);
};

/** A command run from the project root. */
const run = (command: string, argv: string[], env: NodeJS.ProcessEnv = process.env) => runIn(command, argv, { cwd: ROOT, env });

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
};
const round = (value: number, digits = 3): number => Number(value.toFixed(digits));

type SpecJson = {
  name: string;
  functions: Array<Record<string, unknown> & { name: string; code: string }>;
  release?: unknown;
};

/** A copy of the example project under `dir` whose spec `edit` may change; returns the spec file. */
async function project(dir: string, edit: (spec: SpecJson) => void = () => {}): Promise<string> {
  await cp(EXAMPLE, dir, { recursive: true });
  const specFile = path.join(dir, 'bake.json');
  const spec = JSON.parse(await readFile(specFile, 'utf8')) as SpecJson;
  edit(spec);
  await writeFile(specFile, JSON.stringify(spec, null, 2));
  return specFile;
}

const changeCode = async (specFile: string, marker: string): Promise<void> => {
  const code = path.join(path.dirname(specFile), 'src', 'index.mjs');
  await writeFile(code, `${await readFile(code, 'utf8')}\n// ${marker}\n`);
};

async function bake(home: string, specFile: string, extra: string[] = []): Promise<{ ms: number; ok: boolean; upToDate: boolean }> {
  const result = await run(process.execPath, [BIN, 'bake', specFile, '--approve', ...extra], { ...process.env, BAKERY_HOME: home });
  if (result.code !== 0) {
    // Said even with --json (on stderr): a failed bake makes its figures meaningless.
    process.stderr.write(`bake of ${specFile} exited with ${result.code}:\n${result.output.split('\n').slice(-12).join('\n')}\n`);
  }
  return { ms: result.ms, ok: result.code === 0, upToDate: result.output.includes('up to date: ') };
}

/** State transitions (states entered) of one in-process run of the real ASL. */
async function transitions(home: string, specFile: string, bakeId: string): Promise<{ status: string; states: string[] }> {
  const [{ LocalHome }, { createLocalDeps }, { runBake }] = await Promise.all([
    import('../src/adapters/local/home.ts'),
    import('../src/compose/local.ts'),
    import('../src/local/runner.ts'),
  ]);
  const localHome = new LocalHome(home);
  await localHome.ensure({ create: true });
  const states: string[] = [];
  const outcome = await runBake(
    { bakeId, source: { type: 'file', path: specFile }, trigger: { type: 'cli', user: 'bench' } },
    {
      deps: createLocalDeps({ home: localHome, projectRoot: ROOT, waitingHint: false, write: () => {} }),
      approve: 'auto',
      approver: 'bench',
      onEvent: (event) => {
        if (event.type === 'entered') states.push(event.state);
      },
    },
  );
  return { status: outcome.status === 'failed' ? `failed in ${outcome.state}` : outcome.status, states };
}

const work = await mkdtemp(path.join(os.tmpdir(), 'bakery-bench-run-'));
try {
  log(
    `cpus: ${os.availableParallelism()}, load average: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );

  // 1. Zip: zipTree against zip -X -r in the same run (bench/zip.ts, without its demo bakes).
  log(`zip: ${RUNS} run(s) of zipTree and zip -X -r on the runtime tree…`);
  const zipRun = await run(process.execPath, [path.join(ROOT, 'bench', 'zip.ts'), '--json', '--no-demo', '--runs', String(RUNS)]);
  if (zipRun.code !== 0) throw new Error(`bench/zip.ts failed:\n${zipRun.output}`);
  const zip = JSON.parse(zipRun.output.trim().split('\n').at(-1) ?? '{}') as {
    zipTree: { medianMs: number; size: number };
    zip: { medianMs: number; size: number; command: string };
    timeRatio: { median: number };
    sizeRatio: number;
    identical: boolean;
    tree: { files: number; bytes: number };
  };

  // 2. Bakes of the example: cold, unchanged (up to date), code only.
  const home = path.join(work, 'home');
  const spec = await project(path.join(work, 'hello'));
  log('bake: cold (fresh BAKERY_HOME)…');
  const cold = await bake(home, spec);
  log('bake: unchanged inputs (up to date)…');
  const noop = await bake(home, spec);
  log('bake: a code-only change…');
  await changeCode(spec, 'bench: a code-only change');
  const codeOnly = await bake(home, spec);

  // 3. bakery status against node -e 0, medians of 5 (same Node.js, same home).
  log('status: 5 runs each of `bakery status` and `node -e 0`…');
  const statusMs: number[] = [];
  const nodeMs: number[] = [];
  for (let i = 0; i < 5; i++) {
    statusMs.push((await run(process.execPath, [BIN, 'status'], { ...process.env, BAKERY_HOME: home })).ms);
    nodeMs.push((await run(process.execPath, ['-e', '0'])).ms);
  }

  // 4. Per-function cost: one bake to N functions against one to 1 (same home: build cached, layer reused).
  const fns = (n: number) => (s: SpecJson) => {
    const [first] = s.functions;
    if (!first) throw new Error('the example has no function');
    // One short case each, so 50 functions stay within the spec's 32 KB (it travels in every state).
    const validation = first.validation as { cases: unknown[] };
    s.name = `fleet${n}`;
    s.functions = Array.from({ length: n }, (_, i) => ({
      ...first,
      name: `f${String(i).padStart(3, '0')}`,
      environment: {},
      validation: { ...validation, cases: validation.cases.slice(1, 2) },
    }));
  };
  log('bake: N = 1…');
  const one = await bake(home, await project(path.join(work, 'n1'), fns(1)), ['--force']);
  log(`bake: N = ${MANY}…`);
  const many = await bake(home, await project(path.join(work, `n${MANY}`), fns(MANY)), ['--force']);

  // 5. State transitions per path, from the events of real runs of the state machine.
  log('transitions: released at once, gradual, up to date, failed in Validate…');
  const tHome = path.join(work, 'transitions');
  const tSpec = await project(path.join(work, 'paths'));
  const atOnce = await transitions(tHome, tSpec, 'bench-at-once');
  const upToDate = await transitions(tHome, tSpec, 'bench-up-to-date');
  const steps = [
    { weight: 10, minutes: 0 },
    { weight: 50, minutes: 0 },
  ];
  const gradualSpec = await project(path.join(work, 'gradual'), (s) => {
    s.release = { steps, alarms: [] };
  });
  await changeCode(gradualSpec, 'bench: gradual');
  const gradual = await transitions(tHome, gradualSpec, 'bench-gradual');
  const failingSpec = await project(path.join(work, 'failing'));
  await writeFile(path.join(path.dirname(failingSpec), 'src', 'index.mjs'), 'export const handler = async () => ({ message: "wrong" });\n');
  const failed = await transitions(tHome, failingSpec, 'bench-failed');

  const perFunction = one.ms > 0 ? many.ms / MANY / one.ms : 0;
  const report = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.availableParallelism(),
    loadAverage: os.loadavg().map((l) => round(l, 2)),
    zip: {
      tree: zip.tree,
      command: zip.zip.command,
      zipTreeMs: zip.zipTree.medianMs,
      zipMs: zip.zip.medianMs,
      timeVsZip: zip.timeRatio.median,
      sizeVsZip: zip.sizeRatio,
      identical: zip.identical,
      goals: { timeVsZip: 0.35, sizeVsZip: 1.03 },
    },
    bake: {
      ok: cold.ok && noop.ok && codeOnly.ok,
      coldMs: round(cold.ms, 0),
      coldVsZip: round(cold.ms / zip.zip.medianMs),
      noopMs: round(noop.ms, 0),
      noopUpToDate: noop.upToDate,
      noopVsCold: round(noop.ms / cold.ms),
      codeOnlyMs: round(codeOnly.ms, 0),
      codeOnlyVsCold: round(codeOnly.ms / cold.ms),
      goals: { noopVsCold: 0.05 },
    },
    status: {
      medianMs: round(median(statusMs), 0),
      nodeMedianMs: round(median(nodeMs), 0),
      vsNode: round(median(statusMs) / median(nodeMs), 2),
      goals: { medianMs: 300 },
    },
    functions: {
      ok: one.ok && many.ok,
      n: MANY,
      oneMs: round(one.ms, 0),
      manyMs: round(many.ms, 0),
      perFunctionVsOne: round(perFunction),
      marginalVsOne: round((many.ms - one.ms) / (MANY - 1) / one.ms),
      goals: { perFunctionVsOne: 1.5 },
    },
    transitions: {
      releasedAtOnce: { status: atOnce.status, count: atOnce.states.length, states: atOnce.states },
      gradual: { steps: steps.length, status: gradual.status, count: gradual.states.length, states: gradual.states },
      upToDate: { status: upToDate.status, count: upToDate.states.length, states: upToDate.states },
      failedInValidate: { status: failed.status, count: failed.states.length, states: failed.states },
    },
  };

  if (args.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } else {
    const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
    const goal = (ok: boolean) => (ok ? 'meets goal' : 'MISSES goal');
    const t = report.transitions;
    process.stdout.write(
      `${[
        '',
        `zip            zipTree ${s(report.zip.zipTreeMs)} vs ${report.zip.command} ${s(report.zip.zipMs)}: time ${report.zip.timeVsZip}× (goal ≤ 0.35, ${goal(report.zip.timeVsZip <= 0.35)}), size ${report.zip.sizeVsZip}× (goal ≤ 1.03, ${goal(report.zip.sizeVsZip <= 1.03)}), identical across runs: ${report.zip.identical ? 'yes' : 'NO'}`,
        `cold bake      ${s(report.bake.coldMs)}, ${report.bake.coldVsZip}× zip -X -r`,
        `no-op rebake   ${s(report.bake.noopMs)}, ${report.bake.noopVsCold}× cold (goal ≤ 0.05, ${goal(report.bake.noopVsCold <= 0.05)})${report.bake.noopUpToDate ? ', up to date' : ', NOT up to date'}`,
        `code change    ${s(report.bake.codeOnlyMs)}, ${report.bake.codeOnlyVsCold}× cold`,
        `bakery status  median ${report.status.medianMs} ms (goal ≤ 300, ${goal(report.status.medianMs <= 300)}), ${report.status.vsNode}× node -e 0 (${report.status.nodeMedianMs} ms)`,
        `N = ${MANY} bake     ${s(report.functions.manyMs)} vs N = 1 ${s(report.functions.oneMs)}: per function ${report.functions.perFunctionVsOne}× (goal ≤ 1.5, ${goal(report.functions.perFunctionVsOne <= 1.5)}), each further function ${report.functions.marginalVsOne}× one bake`,
        `transitions    released at once ${t.releasedAtOnce.count}, gradual with ${t.gradual.steps} steps ${t.gradual.count}, up to date ${t.upToDate.count}, failed in Validate ${t.failedInValidate.count}`,
        `load average   ${report.loadAverage.join(' ')} on ${report.cpus} CPUs (figures are noisy when this is high)`,
        ...(report.bake.ok && report.functions.ok ? [] : ['some bake FAILED, see above']),
      ].join('\n')}\n`,
    );
  }
} finally {
  await rm(work, { recursive: true, force: true });
}
