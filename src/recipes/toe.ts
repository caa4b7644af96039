import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ImageBuildFailedError, RecipeError } from '../errors.ts';

/**
 * A local executor for EC2 Image Builder component documents (AWSTOE YAML), so a
 * recipe runs on this machine exactly as written. AWSTOE itself is a binary that is
 * downloaded from AWS and runs only on an Image Builder instance, hence this executor.
 */

const StepSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_-]+$/, 'step names are letters, digits, - and _'),
    action: z.string().min(1),
    inputs: z.unknown(),
    onFailure: z.enum(['Abort', 'Continue', 'Ignore']).default('Abort'),
    maxAttempts: z.number().int().min(1).max(10).default(1),
    timeoutSeconds: z.number().int().min(1).max(43_200).default(7200),
  })
  .strict();

const DocumentSchema = z
  .object({
    name: z.string().min(1),
    description: z.string().default(''),
    schemaVersion: z.union([z.literal(1), z.literal('1.0')]),
    parameters: z
      .array(
        z.record(
          z.string(),
          z.object({ type: z.literal('string'), default: z.string().optional(), description: z.string().optional() }).strict(),
        ),
      )
      .default([]),
    phases: z.array(z.object({ name: z.enum(['build', 'validate', 'test']), steps: z.array(StepSchema).min(1) }).strict()).min(1),
  })
  .strict();

export type ToeDocument = z.output<typeof DocumentSchema>;
export type ToeStep = z.output<typeof StepSchema>;

export interface StepEvent {
  document: string;
  phase: string;
  step: string;
  status: 'started' | 'succeeded' | 'failed' | 'ignored';
  durationMs?: number;
}

export interface RunOptions {
  /** Phases to run, in this order. */
  phases?: Array<'build' | 'validate' | 'test'>;
  onStep?: (event: StepEvent) => void;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export async function loadDocument(file: string): Promise<ToeDocument> {
  let raw: unknown;
  try {
    raw = parseYaml(await readFile(file, 'utf8'));
  } catch (cause) {
    throw new RecipeError(`cannot read component document ${file}: ${(cause as Error).message}`, { cause });
  }
  const parsed = DocumentSchema.safeParse(raw);
  if (!parsed.success) {
    throw new RecipeError(`${file} is not a valid component document:\n${z.prettifyError(parsed.error)}`);
  }
  return parsed.data;
}

/** Bind the given values to the document's declared parameters. */
export function bindParameters(doc: ToeDocument, file: string, given: Record<string, string>): Record<string, string> {
  const declared = new Map<string, { default?: string | undefined }>();
  for (const entry of doc.parameters) for (const [name, def] of Object.entries(entry)) declared.set(name, def);
  const values: Record<string, string> = {};
  for (const [name, def] of declared) {
    const value = given[name] ?? def.default;
    if (value === undefined) throw new RecipeError(`${file}: parameter "${name}" has no value and no default`);
    values[name] = value;
  }
  return values;
}

function substitute(text: string, values: Record<string, string>, where: string): string {
  return text.replace(/\{\{\s*([A-Za-z0-9_.]+)\s*\}\}/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new RecipeError(`${where}: unknown parameter "{{ ${name} }}"`);
    return value;
  });
}

function tail(text: string, max = 4000): string {
  return text.length > max ? `…${text.slice(-max)}` : text;
}

function runBash(
  script: string,
  options: { timeoutMs: number; env: NodeJS.ProcessEnv; cwd: string },
): Promise<{ code: number | null; output: string; timedOut: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['--noprofile', '--norc', '-c', script], {
      cwd: options.cwd,
      env: options.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output = tail(output + chunk.toString('utf8'), 64_000);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output = tail(output + chunk.toString('utf8'), 64_000);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output, timedOut });
    });
  });
}

async function runStep(step: ToeStep, values: Record<string, string>, where: string, options: RunOptions): Promise<void> {
  switch (step.action) {
    case 'ExecuteBash': {
      const inputs = z
        .object({ commands: z.array(z.string()).min(1) })
        .strict()
        .safeParse(step.inputs);
      if (!inputs.success) throw new RecipeError(`${where}: ExecuteBash needs inputs.commands, a list of strings`);
      const script = inputs.data.commands.map((c) => substitute(c, values, where)).join('\n');
      const result = await runBash(script, {
        timeoutMs: step.timeoutSeconds * 1000,
        env: options.env ?? process.env,
        cwd: options.cwd ?? process.cwd(),
      });
      if (result.timedOut) throw new ImageBuildFailedError(`${where} timed out after ${step.timeoutSeconds}s\n${tail(result.output)}`);
      if (result.code !== 0) throw new ImageBuildFailedError(`${where} failed (exit ${result.code})\n${tail(result.output).trimEnd()}`);
      return;
    }
    default:
      throw new RecipeError(`${where}: action "${step.action}" is not supported by the local executor`, {
        hint: 'Supported: ExecuteBash. Use ExecuteBash, or run this recipe in AWS.',
      });
  }
}

/** Run a component document's phases in order, stopping at the first failing step. */
export async function runDocument(file: string, given: Record<string, string>, options: RunOptions = {}): Promise<void> {
  const doc = await loadDocument(file);
  const values = bindParameters(doc, file, given);
  const order = options.phases ?? ['build', 'validate', 'test'];
  const label = path.basename(file);
  for (const phaseName of order) {
    const phase = doc.phases.find((p) => p.name === phaseName);
    if (!phase) continue;
    for (const step of phase.steps) {
      const where = `${label} › ${phase.name} › ${step.name}`;
      const started = Date.now();
      options.onStep?.({ document: label, phase: phase.name, step: step.name, status: 'started' });
      let lastError: unknown;
      for (let attempt = 1; attempt <= step.maxAttempts; attempt++) {
        try {
          await runStep(step, values, where, options);
          lastError = undefined;
          break;
        } catch (error) {
          lastError = error;
          if (error instanceof RecipeError) break;
        }
      }
      const durationMs = Date.now() - started;
      if (lastError === undefined) {
        options.onStep?.({ document: label, phase: phase.name, step: step.name, status: 'succeeded', durationMs });
      } else if (step.onFailure !== 'Abort' && !(lastError instanceof RecipeError)) {
        options.onStep?.({ document: label, phase: phase.name, step: step.name, status: 'ignored', durationMs });
      } else {
        options.onStep?.({ document: label, phase: phase.name, step: step.name, status: 'failed', durationMs });
        throw lastError;
      }
    }
  }
}
