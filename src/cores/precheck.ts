import { lstat, readdir, readlink, realpath } from 'node:fs/promises';
import path from 'node:path';
import { BakeSpecError } from '../errors.ts';
import type { AlarmMonitor } from '../ports/alarms.ts';
import type { LayerRegistry } from '../ports/lambda.ts';
import type { ArtefactStore, Ledger } from '../ports/storage.ts';
import type { BakeSpec } from '../spec.ts';
import type { ResolvedRecipe } from '../state.ts';
import { isCompatible, MAX_UNZIPPED_BYTES } from './limits.ts';
import { manifestKey } from './manifest-keys.ts';
import type { PinManifest } from './record.ts';

/**
 * The checks of a bake's input that need no build: `bakery bake` runs them before it
 * writes anything (exit 2) and ResolveBake runs them for uploads and schedules, so what
 * Lambda, CloudWatch or the approvers would refuse after a build, a publish, a validation
 * and an approval is refused first. Each check returns readable problems (empty: fine);
 * all problems of all checks are reported together, in one BakeSpecError.
 */

/** One function's code directory, confined and walked (see {@link inspectCode}). */
export interface CodeTree {
  /** `functions[i].code`, for messages. */
  field: string;
  /** The directory after resolving symlinks. */
  dir: string;
  files: number;
  /** Bytes of the regular files: what the zip holds once extracted. */
  bytes: number;
}

/** What the checks see: the parsed spec and recipe, and each function's code tree. */
export interface PreCheckInput {
  spec: BakeSpec;
  /** The spec as the user named it (path, or S3 URI). */
  where: string;
  recipe: ResolvedRecipe;
  code: CodeTree[];
  /** `bakery bake --approve --approver X`: who approves as soon as validation passes. */
  autoApprover?: string;
}

/** The ports a check may read; a check whose port is absent is skipped (it runs again later, in the state that has it). */
export interface PreCheckDeps {
  alarms?: AlarmMonitor;
  layers?: Pick<LayerRegistry, 'describe'>;
  ledger?: Pick<Ledger, 'list'>;
  artefacts?: Pick<ArtefactStore, 'getJson'>;
}

export interface PreCheck {
  name: string;
  run(input: PreCheckInput, deps: PreCheckDeps): Promise<string[]> | string[];
}

/**
 * Names Lambda sets itself and refuses in a function's configuration ("Defined runtime
 * environment variables", reserved, in the Lambda developer guide).
 */
export const RESERVED_ENVIRONMENT_NAMES: readonly string[] = [
  '_HANDLER',
  '_X_AMZN_TRACE_ID',
  'AWS_DEFAULT_REGION',
  'AWS_REGION',
  'AWS_EXECUTION_ENV',
  'AWS_LAMBDA_FUNCTION_NAME',
  'AWS_LAMBDA_FUNCTION_MEMORY_SIZE',
  'AWS_LAMBDA_FUNCTION_VERSION',
  'AWS_LAMBDA_INITIALIZATION_TYPE',
  'AWS_LAMBDA_LOG_GROUP_NAME',
  'AWS_LAMBDA_LOG_STREAM_NAME',
  'AWS_ACCESS_KEY',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_LAMBDA_RUNTIME_API',
  'LAMBDA_TASK_ROOT',
  'LAMBDA_RUNTIME_DIR',
  'TZ',
];

/** Lambda's quota on a function's environment variables: 4 KB in all. */
export const MAX_ENVIRONMENT_BYTES = 4 * 1024;

/** The bytes Lambda counts for an environment: every name and value, UTF-8 encoded. */
export function environmentBytes(environment: Record<string, string>): number {
  return Object.entries(environment).reduce((sum, [k, v]) => sum + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
}

const fields = (spec: BakeSpec) => spec.functions.map((fn, index) => ({ fn, at: `functions[${index}]` }));

export const environmentCheck: PreCheck = {
  name: 'environment',
  run: ({ spec }) =>
    fields(spec).flatMap(({ fn, at }) => {
      const problems: string[] = [];
      const reserved = Object.keys(fn.environment).filter((name) => RESERVED_ENVIRONMENT_NAMES.includes(name));
      if (reserved.length) {
        problems.push(
          `${at}.environment: ${reserved.join(', ')} ${reserved.length === 1 ? 'is' : 'are'} reserved: Lambda sets ${reserved.length === 1 ? 'it' : 'them'} itself and refuses ${reserved.length === 1 ? 'it' : 'them'} in a function's configuration. Rename or remove.`,
        );
      }
      const bytes = environmentBytes(fn.environment);
      if (bytes > MAX_ENVIRONMENT_BYTES) {
        problems.push(
          `${at}.environment: ${bytes} bytes of names and values; Lambda allows at most ${MAX_ENVIRONMENT_BYTES} (4 KB) in all. Keep large values in SSM Parameter Store or the code.`,
        );
      }
      return problems;
    }),
};

/** The unzipped size of the runtime layer the last bake of this layer recorded in its manifest; null when none did. */
export async function recordedRuntimeSize(layerName: string, deps: PreCheckDeps): Promise<{ bytes: number; bakeId: string } | null> {
  if (!deps.ledger || !deps.artefacts) return null;
  const entries = await deps.ledger.list();
  for (const entry of [...entries].reverse()) {
    if (entry.type !== 'released' || !entry.layer.arn.includes(`:layer:${layerName}:`)) continue;
    const manifest = await deps.artefacts.getJson<PinManifest>(manifestKey(entry.bakeId));
    if (manifest?.layer) return { bytes: manifest.layer.unzippedSize, bakeId: entry.bakeId };
  }
  return null;
}

export const codeSizeCheck: PreCheck = {
  name: 'code size',
  async run({ spec, code }, deps) {
    const runtime = await recordedRuntimeSize(spec.layer.name, deps);
    const problems: string[] = [];
    for (const tree of code) {
      const total = tree.bytes + (runtime?.bytes ?? 0);
      if (total <= MAX_UNZIPPED_BYTES) continue;
      const withRuntime = runtime ? ` plus the runtime layer's ${runtime.bytes} bytes (as bake ${runtime.bakeId} recorded it)` : '';
      problems.push(
        `${tree.field}: ${tree.dir} is ${tree.bytes} bytes unzipped${withRuntime}: ${total} bytes, over Lambda's ${MAX_UNZIPPED_BYTES} (250 MiB) for the code and all layers together. Make the code smaller.`,
      );
    }
    return problems;
  },
};

export const extraLayersCheck: PreCheck = {
  name: 'extra layers',
  async run({ spec, recipe }, deps) {
    const { layers } = deps;
    if (!layers) return [];
    const problems: string[] = [];
    const target = { runtime: recipe.runtime, architecture: recipe.architecture };
    for (const { fn, at } of fields(spec)) {
      for (const [index, arn] of fn.layers.entries()) {
        const details = await layers.describe(arn);
        if (!details) problems.push(`${at}.layers[${index}]: layer version ${arn} does not exist or cannot be read by this account.`);
        else if (!isCompatible(details, target)) {
          problems.push(
            `${at}.layers[${index}]: ${arn} is for ${details.compatibleRuntimes.join(', ') || 'any runtime'} on ${details.architectures.join(', ') || 'any architecture'}; this bake's runtime is ${recipe.runtime} on ${recipe.architecture}.`,
          );
        }
      }
    }
    return problems;
  },
};

export const alarmsCheck: PreCheck = {
  name: 'release alarms',
  async run({ spec }, deps) {
    const names = spec.release?.alarms ?? [];
    if (!deps.alarms || names.length === 0) return [];
    const states = await deps.alarms.states(names);
    return states
      .filter((s) => s.state === null)
      .map(
        (s) =>
          `release.alarms: no alarm named ${JSON.stringify(s.name)} (a gradual release checks it before every step). Create it first (locally: bakery alarm set ${s.name} OK).`,
      );
  },
};

export const approverCheck: PreCheck = {
  name: 'approver',
  run: ({ spec, autoApprover }) =>
    autoApprover !== undefined && spec.approval.approvers.length > 0 && !spec.approval.approvers.includes(autoApprover)
      ? [
          `approval.approvers: --approve as ${JSON.stringify(autoApprover)}, who is not an approver of this spec (${spec.approval.approvers.join(', ')}). Pass --approver with one of them, or bake without --approve.`,
        ]
      : [],
};

/**
 * The largest spec, as JSON in UTF-8 bytes. The spec travels in every state of the bake's
 * execution (RecordSuccess and RecordFailure get the whole state), and Step Functions fails an
 * execution whose state input or output exceeds 256 KB with States.DataLimitExceeded, which no
 * Catch of States.ALL takes: nothing would be recorded. 32 KB leaves the rest of the state
 * (staged code, image, versions, validation results, errors) seven times that; the test of the
 * real ASL with a spec of this size measures the largest state (test/statemachines/state-size.asl.test.ts).
 */
export const MAX_SPEC_BYTES = 32 * 1024;

const jsonBytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8');

export const specSizeCheck: PreCheck = {
  name: 'spec size',
  run: ({ spec }) => {
    const bytes = jsonBytes(spec);
    if (bytes <= MAX_SPEC_BYTES) return [];
    // The parts that can grow large, biggest first, so the message says what to shrink.
    const parts = fields(spec)
      .flatMap(({ fn, at }) => [
        ...fn.validation.cases.map((c, i) => ({ field: `${at}.validation.cases[${i}].event`, bytes: jsonBytes(c.event) })),
        ...fn.validation.cases.map((c, i) => ({ field: `${at}.validation.cases[${i}].expect`, bytes: jsonBytes(c.expect) })),
        { field: `${at}.environment`, bytes: jsonBytes(fn.environment) },
      ])
      .sort((a, b) => b.bytes - a.bytes)
      .slice(0, 3)
      .map((p) => `${p.field} ${p.bytes} bytes`);
    return [
      `the spec is ${bytes} bytes as JSON; at most ${MAX_SPEC_BYTES} (32 KB): it travels in every state of the bake, and Step Functions ends an execution whose state exceeds 256 KB without recording anything. Largest parts: ${parts.join(', ')}. Make validation events and expected results smaller (a case checks behaviour; large payloads belong in the function's tests).`,
    ];
  },
};

/** Every pre-check, in the order its problems are listed. Another check joins by being added here. */
export const PRE_CHECKS: PreCheck[] = [specSizeCheck, environmentCheck, codeSizeCheck, extraLayersCheck, alarmsCheck, approverCheck];

/** Throw one BakeSpecError listing `problems` (nothing when there are none). */
export function refuse(where: string, problems: string[]): void {
  if (problems.length === 0) return;
  throw new BakeSpecError(`${where} cannot be baked; nothing was written:\n${problems.map((p) => `  - ${p}`).join('\n')}`, {
    hint: 'Fix the spec (see "What is refused and why" in docs/bake-spec.md) and bake again.',
  });
}

/** Run `checks` and refuse with every problem they find. */
export async function runPreChecks(input: PreCheckInput, deps: PreCheckDeps, checks: PreCheck[] = PRE_CHECKS): Promise<void> {
  const problems: string[] = [];
  for (const check of checks) problems.push(...(await check.run(input, deps)));
  refuse(input.where, problems);
}

const inside = (root: string, file: string): boolean => {
  const rel = path.relative(root, file);
  return rel === '' || (!rel.startsWith(`..${path.sep}`) && rel !== '..' && !path.isAbsolute(rel));
};

/**
 * Confine and walk the code directory of `functions[index]`: it must lie inside the spec's
 * directory once symlinks are resolved (an absolute path, a `../` or a link that climbs out
 * is refused before anything is read from there), must hold at least one file, and must
 * hold no symlink (links are not packaged; one that points out of the tree names its target).
 * Problems are pushed to `problems`; the tree is returned when it is usable.
 */
export async function inspectCode(
  specDir: string,
  code: string,
  field: string,
  problems: string[],
): Promise<{ tree: CodeTree; dir: string } | undefined> {
  const root = await realpath(specDir);
  const given = path.resolve(specDir, code);
  if (path.isAbsolute(code)) {
    problems.push(
      `${field}: "${code}" is an absolute path; code must be a directory inside the spec's directory (${root}), given relative to it.`,
    );
    return undefined;
  }
  const info = await lstat(given).catch(() => undefined);
  const dir = info ? await realpath(given).catch(() => undefined) : undefined;
  if (!info || dir === undefined) {
    problems.push(`${field}: "${code}" is not a directory (looked in ${given}). Paths in a spec are relative to the spec file.`);
    return undefined;
  }
  if (!inside(root, dir)) {
    problems.push(`${field}: "${code}" resolves to ${dir}, outside the spec's directory ${root}; code must stay inside it.`);
    return undefined;
  }
  if (!(await lstat(dir)).isDirectory()) {
    problems.push(`${field}: "${code}" is not a directory (${dir}).`);
    return undefined;
  }
  let files = 0;
  let bytes = 0;
  const found: string[] = [];
  // A walk of our own on lstat: Node's recursive readdir follows links to directories (a link to / walks the disk).
  const walk = async (at: string): Promise<void> => {
    for (const entry of await readdir(at, { withFileTypes: true })) {
      const file = path.join(at, entry.name);
      const rel = path.relative(dir, file);
      if (entry.isSymbolicLink()) {
        const resolved = (await realpath(file).catch(() => undefined)) ?? path.resolve(at, await readlink(file));
        found.push(
          inside(dir, resolved)
            ? `${field}: ${rel} is a symlink (to ${resolved}); links are not packaged. Copy the file instead.`
            : `${field}: ${rel} is a symlink to ${resolved}, outside the code directory ${dir}; it is never followed. Copy what the function needs into the code directory.`,
        );
      } else if (entry.isDirectory()) {
        await walk(file);
      } else if (entry.isFile()) {
        files++;
        bytes += (await lstat(file)).size;
      } else {
        found.push(`${field}: ${rel} is not a regular file or directory.`);
      }
    }
  };
  await walk(dir);
  if (files === 0 && found.length === 0) found.push(`${field}: "${code}" (${dir}) holds no file: there is nothing to deploy.`);
  problems.push(...found.sort());
  return found.length ? undefined : { tree: { field, dir, files, bytes }, dir };
}
