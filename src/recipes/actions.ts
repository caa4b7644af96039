import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, copyFile, mkdir, readdir, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ActionFailure, ActionInputError } from '../errors.ts';

/**
 * The AWSTOE action modules the local executor supports, with AWSTOE's documented
 * input shapes (Image Builder user guide, "Action modules supported by AWSTOE").
 * Each module validates its inputs with a schema (also used to check a document before
 * anything runs) and returns its outputs, which later steps can chain to.
 */

export interface ActionContext {
  /** Working directory: relative paths resolve against it. */
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Aborted when the step's timeoutSeconds is up. */
  signal: AbortSignal;
  /** The step's timeout in milliseconds (undefined: none). */
  timeoutMs: number | undefined;
  /**
   * The build's root (the local staging directory, standing in for the build instance):
   * when set, the file actions write only inside it (absolute paths are mapped into it,
   * relative ones that climb out are refused) and read only from it or `readable`.
   */
  root?: string | undefined;
  /** Besides the root, where sources may be read from: the recipe's directory and its declared sources. */
  readable?: readonly string[] | undefined;
}

export interface ActionResult {
  outputs: Record<string, string>;
  /** What the step did or printed, for the build log and failure messages. */
  log: string;
}

export interface ActionModule<S extends z.ZodType = z.ZodType> {
  /** AWSTOE's input shape, checked before the document runs and again after substitution. */
  inputs: S;
  /** Names of the outputs later steps may chain to (`{{ phase.step.outputs.<name> }}`). */
  outputs: readonly string[];
  run(inputs: z.output<S>, context: ActionContext): Promise<ActionResult>;
}

function defineAction<S extends z.ZodType>(module: ActionModule<S>): ActionModule<S> {
  return module;
}

// ---------------------------------------------------------------- shared input types

/** AWSTOE booleans; the strings "true"/"false" too, as a substituted parameter gives. */
const flag = z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')]);

/** `permissions: 755`, `'0755'`: octal, a string in AWSTOE (YAML may read an unquoted one as a number). */
const permissions = z.union([z.string().min(1), z.number().int().nonnegative()]);

function parseMode(value: string | number): number {
  const text = String(value).trim();
  if (!/^0?[0-7]{3}$|^[0-7]{4}$/.test(text)) {
    throw new ActionInputError(`permissions "${text}" is not an octal mode such as 755 or 0644`);
  }
  return Number.parseInt(text, 8);
}

const entries = <T extends z.ZodRawShape>(shape: T) => z.array(z.object(shape).strict()).min(1, 'give at least one entry');

const isFolderPath = (p: string) => p.endsWith('/');

const within = (dir: string, p: string) => p === dir || p.startsWith(dir.endsWith(path.sep) ? dir : `${dir}${path.sep}`);

/** `p` with symlinks resolved as far as it exists (the rest appended), so a link cannot lead out. */
async function realish(p: string): Promise<string> {
  const rest: string[] = [];
  let at = p;
  for (;;) {
    try {
      return path.join(await realpath(at), ...rest.reverse());
    } catch {
      const parent = path.dirname(at);
      if (parent === at) return p;
      rest.push(path.basename(at));
      at = parent;
    }
  }
}

/**
 * Where a step may write `p`. Unconfined (no root): against the working directory.
 * Confined: an absolute path is the build instance's, so it lands under the root
 * (`/tmp/x` → `<root>/tmp/x`) unless it already names a place in the root; a relative
 * path that climbs out, or a path that leads out through a symlink, is refused.
 */
async function resolvePath(context: ActionContext, p: string): Promise<string> {
  const resolved = path.resolve(context.cwd, p);
  const root = context.root;
  if (root === undefined) return resolved;
  const realRoot = await realish(root);
  let target = resolved;
  if (!within(root, resolved) && !within(realRoot, resolved)) {
    if (!path.isAbsolute(p)) {
      throw new ActionInputError(`${p} resolves to ${resolved}, outside the build's root ${root}: name a path inside the build`);
    }
    target = path.join(root, resolved);
  }
  const real = await realish(target);
  if (!within(realRoot, real)) throw new ActionInputError(`${p} leads to ${real} through a symlink, outside the build's root ${root}`);
  return target;
}

/**
 * Where a step may read (or, with `move`, take away) a source `p`. Confined: inside the
 * root; for reading, also the recipe's directory and its declared sources; an absolute
 * path elsewhere is the build instance's (under the root) when an earlier step put it
 * there, and refused otherwise: bakery does not copy host files into a layer unasked.
 */
async function resolveSource(context: ActionContext, p: string, move: boolean): Promise<string> {
  const resolved = path.resolve(context.cwd, p);
  const root = context.root;
  if (root === undefined) return resolved;
  const real = await realish(resolved);
  if (within(await realish(root), real)) return resolved;
  if (!move) {
    for (const dir of context.readable ?? []) if (within(await realish(dir), real)) return resolved;
  }
  if (path.isAbsolute(p) && !within(root, resolved)) {
    const mapped = path.join(root, resolved);
    if ((await statOrUndefined(path.dirname(mapped))) && within(await realish(root), await realish(mapped))) return mapped;
  }
  throw new ActionInputError(
    `source ${p} (${real}) is outside the build's root ${root}${move ? '' : ", the recipe's directory and the recipe's sources"}: ${
      move ? 'only files of the build can be moved' : "declare it in the recipe's sources (sources.local), or fetch it with WebDownload"
    }`,
  );
}

async function statOrUndefined(p: string) {
  return stat(p).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return undefined;
    throw error;
  });
}

function run(file: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(file, args, (error, _stdout, stderr) => {
      if (error) reject(new ActionFailure(`${file} ${args.join(' ')}: ${stderr.trim() || error.message}`));
      else resolve();
    });
  });
}

/** AWSTOE's owner/group inputs: applied with chown (names or ids), which needs the right privileges. */
async function applyOwner(target: string, owner: string | undefined, group: string | undefined): Promise<void> {
  if (owner === undefined && group === undefined) return;
  await run('chown', [`${owner ?? ''}${group === undefined ? '' : `:${group}`}`, target]);
}

/** Encode text as AWSTOE's `encoding` input says (utf-16 and utf-32 default to little-endian). */
function encode(text: string, encoding: string): Buffer {
  const name = encoding.toLowerCase().replace(/-/g, '');
  switch (name) {
    case 'utf8':
      return Buffer.from(text, 'utf8');
    case 'utf16':
    case 'utf16le':
      return Buffer.from(text, 'utf16le');
    case 'utf16be':
      return Buffer.from(text, 'utf16le').swap16();
    case 'utf32':
    case 'utf32le':
    case 'utf32be': {
      const points = Array.from(text, (c) => c.codePointAt(0) ?? 0);
      const out = Buffer.alloc(points.length * 4);
      points.forEach((p, i) => {
        if (name === 'utf32be') out.writeUInt32BE(p, i * 4);
        else out.writeUInt32LE(p, i * 4);
      });
      return out;
    }
    default:
      throw new ActionInputError(`encoding "${encoding}" is not one of utf8, utf16(-le/-be), utf32(-le/-be)`);
  }
}

/** `dir/name*` → the files of `dir` that match, sorted; wildcards only after the last separator, as in AWSTOE. */
async function expandSource(source: string): Promise<string[]> {
  const dir = path.dirname(source);
  const pattern = path.basename(source);
  if (dir.includes('*')) throw new ActionInputError(`${source}: a wildcard is allowed only in the file name`);
  if (!pattern.includes('*')) return [source];
  const re = new RegExp(
    `^${pattern
      .split('*')
      .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
  const names = await readdir(dir).catch(() => [] as string[]);
  const matches: string[] = [];
  for (const name of names.sort()) {
    if (!re.test(name)) continue;
    const info = await statOrUndefined(path.join(dir, name));
    if (info?.isFile()) matches.push(path.join(dir, name));
  }
  if (matches.length === 0) throw new ActionFailure(`no file matches ${source}`);
  return matches;
}

/** Shared by CopyFile and MoveFile: where each source file goes, with AWSTOE's destination rules. */
async function placeFiles(
  entry: { source: string; destination: string; overwrite?: boolean | undefined },
  context: ActionContext,
  verb: string,
  place: (from: string, to: string) => Promise<void>,
): Promise<string[]> {
  const move = verb === 'moved';
  const source = await resolveSource(context, entry.source, move);
  // Each match is checked again: one may be a link out of where the pattern's folder is.
  const sources = await Promise.all((await expandSource(source)).map((s) => resolveSource(context, s, move)));
  const intoFolder = isFolderPath(entry.destination);
  if (sources.length > 1 && !intoFolder) {
    throw new ActionInputError(`${entry.source} matches several files: the destination must be a folder (end it with /)`);
  }
  const overwrite = entry.overwrite ?? true;
  const lines: string[] = [];
  for (const from of sources) {
    const info = await statOrUndefined(from);
    if (!info) throw new ActionFailure(`source ${from} does not exist`);
    if (!info.isFile()) throw new ActionFailure(`source ${from} is not a file`);
    const to = intoFolder
      ? path.join(await resolvePath(context, entry.destination), path.basename(from))
      : await resolvePath(context, entry.destination);
    const existing = await statOrUndefined(to);
    if (existing?.isDirectory()) throw new ActionFailure(`destination ${to} is a folder; end the destination with / to ${verb} into it`);
    if (existing && !overwrite) throw new ActionFailure(`destination ${to} exists and overwrite is false`);
    await mkdir(path.dirname(to), { recursive: true });
    await place(from, to);
    lines.push(`${verb} ${from} → ${to}`);
  }
  return lines;
}

// ---------------------------------------------------------------- ExecuteBash

function tail(text: string, max: number): string {
  return text.length > max ? `…${text.slice(-max)}` : text;
}

/** Exit code with which an AWSTOE script asks for a reboot (and to be run again afterwards). */
const REBOOT_EXIT_CODE = 194;

const executeBash = defineAction({
  inputs: z.object({ commands: z.array(z.string()).min(1, 'give at least one command') }).strict(),
  outputs: ['stdout'],
  run: (inputs, context) =>
    new Promise((resolve, reject) => {
      // Like AWSTOE, the commands become one bash script; the exit code is the step's result.
      // Its own process group, so a timeout also stops what the script started.
      const child = spawn('bash', ['--noprofile', '--norc', '-c', inputs.commands.join('\n')], {
        cwd: context.cwd,
        env: context.env,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      const killGroup = () => {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        } catch {
          // the group is already gone
        }
      };
      let stdout = '';
      let log = '';
      child.stdout.on('data', (chunk: Buffer) => {
        const text = chunk.toString('utf8');
        stdout = tail(stdout + text, 1_000_000);
        log = tail(log + text, 64_000);
      });
      child.stderr.on('data', (chunk: Buffer) => {
        log = tail(log + chunk.toString('utf8'), 64_000);
      });
      const onAbort = () => killGroup();
      context.signal.addEventListener('abort', onAbort, { once: true });
      child.on('error', (error) => {
        context.signal.removeEventListener('abort', onAbort);
        reject(new ActionFailure(`cannot start bash: ${error.message}`));
      });
      // The script is done: background processes it left behind would keep the pipes open.
      child.on('exit', () => killGroup());
      child.on('close', (code, signal) => {
        context.signal.removeEventListener('abort', onAbort);
        if (context.signal.aborted) return reject(new ActionFailure('timed out', log));
        if (code === 0) return resolve({ outputs: { stdout: stdout.replace(/[\r\n]+$/, '') }, log });
        if (code === REBOOT_EXIT_CODE) {
          return reject(new ActionFailure(`asked for a reboot (exit ${REBOOT_EXIT_CODE}), which the local executor does not do`, log));
        }
        reject(new ActionFailure(code === null ? `killed by ${signal}` : `exit ${code}`, log));
      });
    }),
});

// ---------------------------------------------------------------- file system

const createFile = defineAction({
  inputs: entries({
    path: z.string().min(1),
    content: z.string().optional(),
    encoding: z.string().optional(),
    owner: z.string().optional(),
    group: z.string().optional(),
    permissions: permissions.optional(),
    overwrite: flag.optional(),
  }),
  outputs: [],
  async run(inputs, context) {
    const lines: string[] = [];
    for (const entry of inputs) {
      const target = await resolvePath(context, entry.path);
      const bytes = encode(entry.content ?? '', entry.encoding ?? 'utf8');
      const mode = entry.permissions === undefined ? undefined : parseMode(entry.permissions);
      const existing = await statOrUndefined(target);
      if (existing?.isDirectory()) throw new ActionFailure(`${target} is a folder`);
      if (existing && entry.overwrite === false) throw new ActionFailure(`${target} exists and overwrite is false`);
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(target, bytes);
      if (mode !== undefined) await chmod(target, mode);
      await applyOwner(target, entry.owner, entry.group);
      lines.push(`created ${target} (${bytes.length} bytes${mode === undefined ? '' : `, mode ${mode.toString(8).padStart(4, '0')}`})`);
    }
    return { outputs: {}, log: lines.join('\n') };
  },
});

const createFolder = defineAction({
  inputs: entries({
    path: z.string().min(1),
    owner: z.string().optional(),
    group: z.string().optional(),
    permissions: permissions.optional(),
    overwrite: flag.optional(),
  }),
  outputs: [],
  async run(inputs, context) {
    const lines: string[] = [];
    for (const entry of inputs) {
      const target = await resolvePath(context, entry.path);
      const mode = entry.permissions === undefined ? undefined : parseMode(entry.permissions);
      const existing = await statOrUndefined(target);
      if (existing && !existing.isDirectory()) throw new ActionFailure(`${target} exists and is not a folder`);
      if (existing && entry.overwrite === false) throw new ActionFailure(`${target} exists and overwrite is false`);
      // An existing folder is kept with its contents (mkdir -p); only its mode and owner are set.
      await mkdir(target, { recursive: true });
      if (mode !== undefined) await chmod(target, mode);
      await applyOwner(target, entry.owner, entry.group);
      lines.push(
        `${existing ? 'kept' : 'created'} folder ${target}${mode === undefined ? '' : ` (mode ${mode.toString(8).padStart(4, '0')})`}`,
      );
    }
    return { outputs: {}, log: lines.join('\n') };
  },
});

const transferShape = { source: z.string().min(1), destination: z.string().min(1), overwrite: flag.optional() };

const copyFileAction = defineAction({
  inputs: entries(transferShape),
  outputs: [],
  async run(inputs, context) {
    const lines: string[] = [];
    for (const entry of inputs) lines.push(...(await placeFiles(entry, context, 'copied', (from, to) => copyFile(from, to))));
    return { outputs: {}, log: lines.join('\n') };
  },
});

async function moveOne(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
    await copyFile(from, to);
    await rm(from);
  }
}

const moveFile = defineAction({
  inputs: entries(transferShape),
  outputs: [],
  async run(inputs, context) {
    const lines: string[] = [];
    for (const entry of inputs) lines.push(...(await placeFiles(entry, context, 'moved', moveOne)));
    return { outputs: {}, log: lines.join('\n') };
  },
});

const setFilePermissions = defineAction({
  inputs: entries({ path: z.string().min(1), permissions }),
  outputs: [],
  async run(inputs, context) {
    const lines: string[] = [];
    for (const entry of inputs) {
      const target = await resolvePath(context, entry.path);
      const mode = parseMode(entry.permissions);
      const info = await statOrUndefined(target);
      if (!info) throw new ActionFailure(`${target} does not exist`);
      if (!info.isFile()) throw new ActionFailure(`${target} is not a file`);
      await chmod(target, mode);
      lines.push(`mode ${mode.toString(8).padStart(4, '0')} on ${target}`);
    }
    return { outputs: {}, log: lines.join('\n') };
  },
});

// ---------------------------------------------------------------- WebDownload

const ALGORITHMS = { md5: 'md5', sha1: 'sha1', sha256: 'sha256', sha512: 'sha512' } as const;

async function hashFile(file: string, algorithm: string): Promise<string> {
  const hash = createHash(algorithm);
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

/** Bytes of the source into `temp`: http(s) with fetch; `file://` URLs and local paths (a local extension) by copying. */
async function fetchInto(source: string, temp: string, context: ActionContext): Promise<void> {
  if (/^https?:\/\//i.test(source)) {
    let response: Response;
    try {
      response = await fetch(source, { redirect: 'follow', signal: context.signal });
    } catch (error) {
      throw new ActionFailure(`GET ${source}: ${(error as Error).message}`);
    }
    // AWSTOE: every status but 200 is an error.
    if (response.status !== 200 || !response.body) {
      throw new ActionFailure(`GET ${source}: HTTP ${response.status} ${response.statusText}`.trimEnd());
    }
    await pipeline(Readable.fromWeb(response.body as WebReadableStream<Uint8Array>), createWriteStream(temp, { mode: 0o644 }));
    return;
  }
  let file: string;
  if (/^file:\/\//i.test(source)) file = fileURLToPath(source);
  else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source)) {
    throw new ActionInputError(`WebDownload source ${source}: only http(s) URLs, file:// URLs and local paths are supported`);
  } else file = source;
  file = await resolveSource(context, file, false);
  const info = await statOrUndefined(file);
  if (!info?.isFile()) throw new ActionFailure(`source ${source} is not a file`);
  await copyFile(file, temp);
  // A download carries no mode bits: it lands as a fresh file would.
  await chmod(temp, 0o644);
}

function downloadName(source: string): string {
  let name: string;
  try {
    name = decodeURIComponent(path.posix.basename(new URL(source).pathname));
  } catch {
    name = path.basename(source);
  }
  if (!name) throw new ActionInputError(`cannot name the file downloaded from ${source}: give a file destination`);
  return name;
}

const webDownload = defineAction({
  inputs: entries({
    source: z.string().min(1),
    destination: z.string().min(1),
    overwrite: flag.optional(),
    checksum: z.string().optional(),
    algorithm: z.string().optional(),
    ignoreCertificateErrors: flag.optional(),
  }),
  outputs: ['destination'],
  async run(inputs, context) {
    const destinations: string[] = [];
    const lines: string[] = [];
    for (const entry of inputs) {
      if ((entry.checksum === undefined) !== (entry.algorithm === undefined)) {
        throw new ActionInputError('give both checksum and algorithm, or neither');
      }
      if (entry.ignoreCertificateErrors === true)
        throw new ActionInputError('ignoreCertificateErrors is not supported by the local executor');
      let algorithm: string | undefined;
      if (entry.algorithm !== undefined) {
        algorithm = ALGORITHMS[entry.algorithm.toLowerCase() as keyof typeof ALGORITHMS];
        if (!algorithm) throw new ActionInputError(`algorithm "${entry.algorithm}" is not one of MD5, SHA1, SHA256, SHA512`);
      }
      const expected = entry.checksum?.trim().toLowerCase();
      const target = isFolderPath(entry.destination)
        ? path.join(await resolvePath(context, entry.destination), downloadName(entry.source))
        : await resolvePath(context, entry.destination);
      const existing = await statOrUndefined(target);
      if (existing?.isDirectory()) throw new ActionFailure(`destination ${target} is a folder; end it with / to download into it`);
      if (existing && entry.overwrite === false) throw new ActionFailure(`destination ${target} exists and overwrite is false`);
      if (existing && algorithm && expected && (await hashFile(target, algorithm)) === expected) {
        // AWSTOE downloads again only when the file there does not match the checksum.
        lines.push(`kept ${target}: it already has ${entry.algorithm} ${expected}`);
        destinations.push(target);
        continue;
      }
      await mkdir(path.dirname(target), { recursive: true });
      const temp = path.join(path.dirname(target), `.${path.basename(target)}.${randomBytes(6).toString('hex')}.download`);
      try {
        await fetchInto(entry.source, temp, context);
        if (algorithm && expected) {
          const actual = await hashFile(temp, algorithm);
          if (actual !== expected) {
            throw new ActionFailure(
              `checksum mismatch for ${entry.source}: ${entry.algorithm?.toUpperCase()} is ${actual}, expected ${expected}; nothing was written to ${target}`,
            );
          }
        }
        await rename(temp, target);
      } finally {
        await rm(temp, { force: true });
      }
      lines.push(`downloaded ${entry.source} → ${target}${algorithm ? ` (${entry.algorithm?.toUpperCase()} verified)` : ''}`);
      destinations.push(target);
    }
    return { outputs: { destination: destinations.join('\n') }, log: lines.join('\n') };
  },
});

// ---------------------------------------------------------------- registry

/** Action modules the local executor runs. */
export const ACTIONS: Readonly<Record<string, ActionModule>> = {
  ExecuteBash: executeBash,
  CreateFile: createFile,
  CreateFolder: createFolder,
  CopyFile: copyFileAction,
  MoveFile: moveFile,
  SetFilePermissions: setFilePermissions,
  WebDownload: webDownload,
} as Record<string, ActionModule>;

/** AWSTOE actions the local executor knows of but does not run: a document using one is refused, never half-run. */
export const UNSUPPORTED_ACTIONS: readonly string[] = [
  'AppendFile',
  'Assert',
  'CopyFolder',
  'CreateSymlink',
  'DeleteFile',
  'DeleteFolder',
  'ExecuteBinary',
  'ExecuteDocument',
  'ExecutePowerShell',
  'InstallMSI',
  'ListFiles',
  'MoveFolder',
  'ReadFile',
  'Reboot',
  'S3Download',
  'S3Upload',
  'SetFileEncoding',
  'SetFileOwner',
  'SetFolderOwner',
  'SetFolderPermissions',
  'SetRegistry',
  'UninstallMSI',
  'UpdateOS',
];
