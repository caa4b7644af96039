import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BLOCK_SIZE } from '../../src/zip/deflate.ts';
import { unzipTo, zipTree } from '../../src/zip/deterministic.ts';
import { listTree } from '../../src/zip/tree.ts';
import { defaultConcurrency, writeZip } from '../../src/zip/writer.ts';

const run = promisify(execFile);
const MAX_BUFFER = 64 * 1024 * 1024;

/** A deterministic xorshift32 sequence. */
function xorshift(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
}

/** Incompressible bytes. */
function noise(size: number, seed: number): Buffer {
  const next = xorshift(seed);
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i++) out[i] = next() & 0xff;
  return out;
}

/** Runs of text-like (compressible) bytes alternating with incompressible ones. */
function mixedData(size: number, seed: number): Buffer {
  const out = Buffer.alloc(size);
  const nextRandom = xorshift(seed);
  const text = Buffer.from('function handler(event) { return { statusCode: 200, body: JSON.stringify(event) }; }\n');
  for (let at = 0; at < size; ) {
    const run = Math.min(size - at, 4096 + (nextRandom() % 200_000));
    if (nextRandom() % 2 === 0) {
      for (let i = 0; i < run; i++) out[at + i] = text[(at + i) % text.length] ?? 0;
    } else {
      for (let i = 0; i < run; i++) out[at + i] = nextRandom() & 0xff;
    }
    at += run;
  }
  return out;
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

interface PyEntry {
  name: string;
  method: number;
  dateTime: number[];
  createSystem: number;
  mode: number;
  extra: number;
  size: number;
  sha256: string;
}

/** What Python's zipfile (an independent reader) sees in the archive, contents included. */
async function pythonRead(zip: string): Promise<PyEntry[]> {
  const script = `
import hashlib, json, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    out = []
    for i in z.infolist():
        data = z.read(i)
        out.append({"name": i.filename, "method": i.compress_type, "dateTime": list(i.date_time),
                    "createSystem": i.create_system, "mode": i.external_attr >> 16, "extra": len(i.extra),
                    "size": i.file_size, "sha256": hashlib.sha256(data).hexdigest()})
    print(json.dumps(out))
`;
  const { stdout } = await run('python3', ['-c', script, zip], { maxBuffer: MAX_BUFFER });
  return JSON.parse(stdout) as PyEntry[];
}

describe('writeZip with multi-block files', () => {
  let dir: string;
  let tree: string;
  const files: Record<string, Buffer> = {
    'bin/big': mixedData(3 * 1024 * 1024 + 123_457, 7),
    'exact-one-block': mixedData(BLOCK_SIZE, 11),
    'exact-two-blocks': mixedData(2 * BLOCK_SIZE, 13),
    'one-block-plus-one-byte': mixedData(BLOCK_SIZE + 1, 17),
    empty: Buffer.alloc(0),
    'small.txt': Buffer.from('hello, layer\n'.repeat(50)),
    'random.bin': noise(3000, 19),
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'bakery-zipw-'));
    tree = path.join(dir, 'tree');
    for (const [name, data] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(tree, name)), { recursive: true });
      await writeFile(path.join(tree, name), data, { mode: name.startsWith('bin/') ? 0o755 : 0o644 });
    }
    await mkdir(path.join(tree, 'empty-dir'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('round-trips byte-exact through unzip -t, unzip -p, Python zipfile and unzipTo', async () => {
    // Prepare
    const zip = path.join(dir, 'mixed.zip');
    // Act
    const result = await zipTree(tree, zip);
    // Assess
    const { stdout: test } = await run('unzip', ['-t', zip]);
    expect(test).toContain('No errors detected');
    for (const [name, data] of Object.entries(files)) {
      const { stdout } = await run('unzip', ['-p', zip, name], { encoding: 'buffer', maxBuffer: MAX_BUFFER });
      expect(sha256(stdout), name).toBe(sha256(data));
    }
    const py = await pythonRead(zip);
    expect(py.map((e) => e.name)).toEqual([
      'bin/big',
      'empty',
      'empty-dir/',
      'exact-one-block',
      'exact-two-blocks',
      'one-block-plus-one-byte',
      'random.bin',
      'small.txt',
    ]);
    for (const entry of py) {
      expect(entry.dateTime).toEqual([1980, 1, 1, 0, 0, 0]);
      expect(entry.createSystem).toBe(3);
      expect(entry.extra).toBe(0);
      const data = files[entry.name];
      if (data) expect(entry.sha256, entry.name).toBe(sha256(data));
    }
    const byName = new Map(py.map((e) => [e.name, e]));
    expect(byName.get('bin/big')?.mode).toBe(0o100755);
    expect(byName.get('small.txt')?.mode).toBe(0o100644);
    expect(byName.get('empty-dir/')?.mode).toBe(0o040755);
    expect(byName.get('empty')?.method).toBe(0);
    expect(byName.get('random.bin')?.method).toBe(0); // does not compress: stored, as zip does
    expect(byName.get('small.txt')?.method).toBe(8);
    expect(byName.get('bin/big')?.method).toBe(8);

    const out = path.join(dir, 'out');
    await unzipTo(zip, out);
    for (const [name, data] of Object.entries(files)) {
      expect(sha256(await readFile(path.join(out, name))), name).toBe(sha256(data));
    }
    expect((await stat(path.join(out, 'bin', 'big'))).mode & 0o777).toBe(0o755);
    expect((await stat(path.join(out, 'empty-dir'))).isDirectory()).toBe(true);

    const total = Object.values(files).reduce((sum, data) => sum + data.length, 0);
    expect(result.unzippedSize).toBe(total);
    expect(result.entries).toBe(8);
    expect(result.size).toBe((await stat(zip)).size);
    expect(result.sha256Hex).toBe(sha256(await readFile(zip)));
  });

  it('gives the same bytes on every run and with any number of blocks in flight', async () => {
    // Prepare
    const entries = await listTree(tree);
    // Act
    const runs = [
      await zipTree(tree, path.join(dir, 'a.zip')),
      await zipTree(tree, path.join(dir, 'b.zip')),
      await writeZip(entries, path.join(dir, 'c1.zip'), { concurrency: 1 }),
      await writeZip(entries, path.join(dir, 'c2.zip'), { concurrency: 2 }),
      await writeZip(entries, path.join(dir, 'c16.zip'), { concurrency: 16 }),
    ];
    // Assess
    expect(new Set(runs.map((r) => r.sha256Hex)).size).toBe(1);
  });

  it("keeps, by default, blocks queued beyond libuv's thread pool and beyond the CPUs", () => {
    const cpus = os.availableParallelism();
    vi.stubEnv('UV_THREADPOOL_SIZE', '');
    expect(defaultConcurrency()).toBe(Math.max(cpus + 1, 6));
    vi.stubEnv('UV_THREADPOOL_SIZE', '16');
    expect(defaultConcurrency()).toBe(Math.max(cpus + 1, 18));
    vi.stubEnv('UV_THREADPOOL_SIZE', 'many');
    expect(defaultConcurrency()).toBe(Math.max(cpus + 1, 6));
  });

  it('writes readable ZIP64 records when they are forced (real >4 GiB archives are not tested)', async () => {
    // Prepare
    const zip = path.join(dir, 'zip64.zip');
    // Act
    const result = await writeZip(await listTree(tree), zip, { forceZip64: true });
    // Assess
    const bytes = await readFile(zip);
    expect(bytes.indexOf(Buffer.from([0x50, 0x4b, 0x06, 0x06]))).toBeGreaterThan(0); // ZIP64 end record
    expect(bytes.indexOf(Buffer.from([0x50, 0x4b, 0x06, 0x07]))).toBeGreaterThan(0); // ZIP64 locator
    expect(bytes.readUInt16LE(bytes.length - 22 + 10)).toBe(0xffff); // the plain end record defers to them
    const { stdout: test } = await run('unzip', ['-t', zip]);
    expect(test).toContain('No errors detected');
    const py = await pythonRead(zip);
    for (const [name, data] of Object.entries(files)) {
      expect(py.find((e) => e.name === name)?.sha256, name).toBe(sha256(data));
    }
    const out = path.join(dir, 'out64');
    await unzipTo(zip, out);
    expect(sha256(await readFile(path.join(out, 'bin', 'big')))).toBe(sha256(files['bin/big'] ?? Buffer.alloc(0)));
    expect(result.sha256Hex).not.toBe((await zipTree(tree, path.join(dir, 'plain.zip'))).sha256Hex);
  });

  it('leaves no archive behind when a file cannot be read', async () => {
    // Prepare: an entry whose source is gone by the time it is zipped
    const entries = await listTree(tree);
    const broken = entries.map((e) => (e.name === 'exact-two-blocks' ? { ...e, source: path.join(dir, 'missing') } : e));
    const zip = path.join(dir, 'broken.zip');
    // Act / Assess
    await expect(writeZip(broken, zip)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(stat(zip)).rejects.toMatchObject({ code: 'ENOENT' });
    const leftovers = (await run('ls', [dir])).stdout.split('\n').filter((n) => n.startsWith('broken.zip'));
    expect(leftovers).toEqual([]);
  });
});
