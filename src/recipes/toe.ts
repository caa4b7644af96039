import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ActionFailure, ActionInputError, ImageBuildFailedError, RecipeError } from '../errors.ts';
import { ACTIONS, type ActionResult, UNSUPPORTED_ACTIONS } from './actions.ts';

/**
 * A local executor for EC2 Image Builder component documents (AWSTOE YAML), so a
 * recipe runs on this machine exactly as written. AWSTOE itself is a binary that is
 * downloaded from AWS and runs only on an Image Builder instance, hence this executor.
 *
 * A document is checked completely before its first step runs: its schema, every
 * step's action and inputs, and every `{{ … }}` reference. A typo in the test phase
 * therefore fails in milliseconds, not after the build phase.
 */

/** The version of this executor, recorded in build records. */
export const EXECUTOR_VERSION = 'bakery-local-toe/2';

export const PHASES = ['build', 'validate', 'test'] as const;
export type PhaseName = (typeof PHASES)[number];

const NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

const StepSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_-]+$/, 'step names are letters, digits, - and _'),
    action: z.string().min(1),
    inputs: z.unknown(),
    onFailure: z.enum(['Abort', 'Continue', 'Ignore']).default('Abort'),
    maxAttempts: z.number().int().min(1).max(10).default(1),
    // AWSTOE: seconds per attempt, -1 for none.
    timeoutSeconds: z.union([z.literal(-1), z.number().int().min(1).max(43_200)]).default(7200),
  })
  .strict();

const declarations = <T extends z.ZodType>(value: T) =>
  z
    .array(z.record(z.string().regex(NAME, 'names are letters, digits and _'), value))
    .refine((list) => list.every((entry) => Object.keys(entry).length === 1), 'each entry declares exactly one name')
    .default([]);

const DocumentSchema = z
  .object({
    name: z.string().min(1).optional(),
    description: z.string().optional(),
    schemaVersion: z.union([z.literal(1), z.literal('1.0')]),
    parameters: declarations(
      z.object({ type: z.literal('string'), default: z.string().optional(), description: z.string().optional() }).strict(),
    ),
    constants: declarations(z.object({ type: z.literal('string'), value: z.string() }).strict()),
    phases: z
      .array(z.object({ name: z.enum(PHASES), steps: z.array(StepSchema).min(1) }).strict())
      .min(1)
      .superRefine((phases, ctx) => {
        const seen = new Set<string>();
        phases.forEach((phase, i) => {
          if (seen.has(phase.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `phase "${phase.name}" appears twice` });
          seen.add(phase.name);
          const steps = new Set<string>();
          phase.steps.forEach((step, j) => {
            if (steps.has(step.name)) {
              ctx.addIssue({
                code: 'custom',
                path: [i, 'steps', j, 'name'],
                message: `step "${step.name}" appears twice in phase ${phase.name}`,
              });
            }
            steps.add(step.name);
          });
        });
      }),
  })
  .strict();

export type ToeDocument = z.output<typeof DocumentSchema>;
export type ToeStep = z.output<typeof StepSchema>;

export interface StepEvent {
  document: string;
  phase: PhaseName;
  step: string;
  action: string;
  status: 'started' | 'retrying' | 'succeeded' | 'failed' | 'ignored';
  /** The attempt that just started, failed or succeeded (1-based). */
  attempt: number;
  maxAttempts: number;
  durationMs?: number;
  /** What the step printed or did (finished events). */
  output?: string;
  /** Why it failed (failed, retrying, ignored). */
  error?: string;
}

export interface StepResult {
  phase: PhaseName;
  step: string;
  action: string;
  status: 'succeeded' | 'failed' | 'ignored';
  attempts: number;
  durationMs: number;
}

export interface DocumentRun {
  document: string;
  name: string | null;
  steps: StepResult[];
}

export interface RunOptions {
  /** Phases to run, in this order (default: build, validate, test). */
  phases?: readonly PhaseName[];
  onStep?: (event: StepEvent) => void;
  env?: NodeJS.ProcessEnv;
  /** Working directory of the steps; relative paths resolve against it. */
  cwd?: string;
  /** How the document is named in events and errors (default: the file path). */
  label?: string;
  /** The build's root: file actions stay inside it (see ActionContext.root). Unset: unconfined. */
  root?: string;
  /** Where sources may be read from besides the root (the recipe's directory and declared sources). */
  readable?: readonly string[];
}

/** Unsupported AWSTOE step fields: refused by name rather than silently ignored. */
const UNSUPPORTED_STEP_FIELDS = ['loop', 'if'];

function issueLocation(raw: unknown, issuePath: readonly PropertyKey[]): string {
  const [top, i, sub, j, ...rest] = issuePath;
  const phases = (raw as { phases?: unknown } | null)?.phases;
  if (top === 'phases' && typeof i === 'number' && Array.isArray(phases)) {
    const phase = phases[i] as { name?: unknown; steps?: unknown } | undefined;
    const phaseName = typeof phase?.name === 'string' ? phase.name : `phases[${i}]`;
    if (sub === 'steps' && typeof j === 'number' && Array.isArray(phase?.steps)) {
      const step = phase.steps[j] as { name?: unknown } | undefined;
      const stepName = typeof step?.name === 'string' ? step.name : `steps[${j}]`;
      return `${phaseName} › ${stepName}${rest.length ? `: ${rest.map(String).join('.')}` : ''}`;
    }
    return `${phaseName}${
      sub === undefined
        ? ''
        : `: ${[sub, j, ...rest]
            .filter((p) => p !== undefined)
            .map(String)
            .join('.')}`
    }`;
  }
  return issuePath.length ? issuePath.map(String).join('.') : '(document)';
}

function formatIssues(raw: unknown, error: z.ZodError, prefix: readonly PropertyKey[] = []): string {
  return error.issues.map((issue) => `  ${issueLocation(raw, [...prefix, ...issue.path])}: ${issue.message}`).join('\n');
}

/** Read and check a component document: schema, actions and their inputs (references are checked by {@link checkDocument}). */
export async function loadDocument(file: string): Promise<ToeDocument> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new RecipeError(`cannot read component document ${file}: ${(cause as Error).message}`, { cause });
  }
  return parseDocument(text, file);
}

/** Parse a component document's text; `file` names it in errors. */
export function parseDocument(text: string, file: string): ToeDocument {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (cause) {
    throw new RecipeError(`${file} is not valid YAML: ${(cause as Error).message}`, { cause });
  }
  const phases = (raw as { phases?: unknown } | null)?.phases;
  if (Array.isArray(phases)) {
    for (const phase of phases as Array<{ name?: unknown; steps?: unknown }>) {
      if (!Array.isArray(phase?.steps)) continue;
      for (const step of phase.steps as Array<Record<string, unknown>>) {
        const field = UNSUPPORTED_STEP_FIELDS.find((f) => step && typeof step === 'object' && f in step);
        if (field) {
          throw new RecipeError(
            `${file} › ${String(phase.name)} › ${String(step.name)}: "${field}" is not supported by the local executor`,
            { hint: 'Write the step without it (e.g. a bash loop inside ExecuteBash).' },
          );
        }
      }
    }
  }
  const parsed = DocumentSchema.safeParse(raw);
  if (!parsed.success) {
    throw new RecipeError(`${file} is not a valid component document:\n${formatIssues(raw, parsed.error)}`);
  }
  const doc = parsed.data;
  const names = new Set<string>();
  for (const entry of [...doc.parameters, ...doc.constants]) {
    for (const name of Object.keys(entry)) {
      if (names.has(name)) throw new RecipeError(`${file}: "${name}" is declared twice (parameters and constants share one namespace)`);
      names.add(name);
    }
  }
  for (const phase of doc.phases) {
    for (const step of phase.steps) {
      const where = `${file} › ${phase.name} › ${step.name}`;
      const module = ACTIONS[step.action];
      if (!module) {
        const supported = Object.keys(ACTIONS).join(', ');
        throw new RecipeError(
          UNSUPPORTED_ACTIONS.includes(step.action)
            ? `${where}: action "${step.action}" is not supported by the local executor`
            : `${where}: unknown action "${step.action}"`,
          { hint: `The local executor runs: ${supported}.` },
        );
      }
      const inputs = module.inputs.safeParse(step.inputs);
      if (!inputs.success) {
        throw new RecipeError(
          `${where}: inputs do not match ${step.action}:\n${inputs.error.issues.map((i) => `  inputs${i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')}: ${i.message}`).join('\n')}`,
        );
      }
    }
  }
  return doc;
}

// ---------------------------------------------------------------- references

/** `{{ Name }}` or `{{ phase.Step.inputs[0].field }}` / `{{ phase.Step.outputs.field }}`. */
const EXPRESSION = /\{\{\s*([^{}]*?)\s*\}\}/g;
const CHAIN = /^(build|validate|test)\.([A-Za-z0-9_-]+)\.(inputs|outputs)(?:\[(\d+)\])?\.([A-Za-z0-9_]+)$/;

interface Chain {
  phase: PhaseName;
  step: string;
  kind: 'inputs' | 'outputs';
  index: number | undefined;
  field: string;
}

function parseChain(expression: string): Chain | undefined {
  const m = CHAIN.exec(expression);
  if (!m) return undefined;
  return {
    phase: m[1] as PhaseName,
    step: m[2] as string,
    kind: m[3] as 'inputs' | 'outputs',
    index: m[4] === undefined ? undefined : Number(m[4]),
    field: m[5] as string,
  };
}

function strings(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const item of value) strings(item, out);
  else if (value && typeof value === 'object') for (const item of Object.values(value)) strings(item, out);
  return out;
}

function declaredNames(doc: ToeDocument): Set<string> {
  const names = new Set<string>();
  for (const entry of [...doc.parameters, ...doc.constants]) for (const name of Object.keys(entry)) names.add(name);
  return names;
}

/**
 * Check every `{{ … }}` of the steps that will run: a parameter or constant the document
 * declares, or a chaining reference to a step that runs earlier and has that output.
 */
export function checkDocument(doc: ToeDocument, file: string, phases: readonly PhaseName[] = PHASES): void {
  const names = declaredNames(doc);
  const ran = new Map<string, ToeStep>();
  for (const phaseName of phases) {
    const phase = doc.phases.find((p) => p.name === phaseName);
    if (!phase) continue;
    for (const step of phase.steps) {
      const where = `${file} › ${phase.name} › ${step.name}`;
      for (const text of strings(step.inputs)) {
        for (const [, expression = ''] of text.matchAll(EXPRESSION)) {
          if (names.has(expression)) continue;
          const chain = parseChain(expression);
          if (!chain) {
            throw new RecipeError(`${where}: unknown parameter "{{ ${expression} }}"`, {
              hint: names.size ? `The document declares: ${[...names].join(', ')}.` : 'The document declares no parameters.',
            });
          }
          const target = ran.get(`${chain.phase}.${chain.step}`);
          if (!target) {
            const exists = doc.phases.some((p) => p.name === chain.phase && p.steps.some((s) => s.name === chain.step));
            throw new RecipeError(
              `${where}: "{{ ${expression} }}" refers to step ${chain.phase} › ${chain.step}, which ${exists ? 'has not run by then' : 'does not exist'}`,
            );
          }
          const outputs = ACTIONS[target.action]?.outputs ?? [];
          if (chain.kind === 'outputs' && !outputs.includes(chain.field)) {
            throw new RecipeError(
              `${where}: "{{ ${expression} }}": ${target.action} has no output "${chain.field}"${outputs.length ? ` (it has: ${outputs.join(', ')})` : ' (it has none)'}`,
            );
          }
        }
      }
      ran.set(`${phase.name}.${step.name}`, step);
    }
  }
}

/** Bind the given values to the document's declared parameters (given values it does not declare are not its business). */
export function bindParameters(doc: ToeDocument, file: string, given: Record<string, string>): Record<string, string> {
  const values: Record<string, string> = {};
  for (const entry of doc.parameters) {
    for (const [name, def] of Object.entries(entry)) {
      const value = given[name] ?? def.default;
      if (value === undefined) throw new RecipeError(`${file}: parameter "${name}" has no value and no default`);
      values[name] = value;
    }
  }
  for (const entry of doc.constants) for (const [name, def] of Object.entries(entry)) values[name] = def.value;
  return values;
}

interface Executed {
  status: 'succeeded' | 'failed' | 'ignored';
  inputs: unknown;
  outputs: Record<string, string>;
}

function resolveExpression(expression: string, values: Record<string, string>, executed: Map<string, Executed>, where: string): string {
  const value = values[expression];
  if (value !== undefined) return value;
  const chain = parseChain(expression);
  const target = chain && executed.get(`${chain.phase}.${chain.step}`);
  if (!chain || !target) throw new RecipeError(`${where}: unknown parameter "{{ ${expression} }}"`);
  if (chain.kind === 'outputs') {
    const output = target.status === 'succeeded' ? target.outputs[chain.field] : undefined;
    if (output === undefined) {
      // The step it chains to failed (onFailure: Continue or Ignore): this one cannot run.
      throw new ImageBuildFailedError(`${where}: "{{ ${expression} }}" has no value: step ${chain.phase} › ${chain.step} ${target.status}`);
    }
    return output;
  }
  let container: unknown = target.inputs;
  if (chain.index !== undefined) container = Array.isArray(container) ? container[chain.index] : undefined;
  const field = container && typeof container === 'object' ? (container as Record<string, unknown>)[chain.field] : undefined;
  if (typeof field !== 'string' && typeof field !== 'number' && typeof field !== 'boolean') {
    throw new RecipeError(`${where}: "{{ ${expression} }}" is not a single value of step ${chain.phase} › ${chain.step}`);
  }
  return String(field);
}

function substitute(value: unknown, resolve: (expression: string) => string): unknown {
  if (typeof value === 'string') return value.replace(EXPRESSION, (_, expression: string) => resolve(expression));
  if (Array.isArray(value)) return value.map((item) => substitute(item, resolve));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, substitute(item, resolve)]));
  }
  return value;
}

function tail(text: string, max = 4000): string {
  const trimmed = text.trimEnd();
  return trimmed.length > max ? `…${trimmed.slice(-max)}` : trimmed;
}

/** One attempt of a step, bounded by its timeout. */
async function attemptStep(step: ToeStep, inputs: unknown, options: RunOptions): Promise<ActionResult> {
  const module = ACTIONS[step.action];
  if (!module) throw new ActionInputError(`action "${step.action}" is not supported`);
  const parsed = module.inputs.safeParse(inputs);
  if (!parsed.success) {
    throw new ActionInputError(
      `inputs after substitution do not match ${step.action}: ${parsed.error.issues.map((i) => i.message).join('; ')}`,
    );
  }
  const controller = new AbortController();
  const timeoutMs = step.timeoutSeconds === -1 ? undefined : step.timeoutSeconds * 1000;
  const context = {
    cwd: options.cwd ?? process.cwd(),
    env: options.env ?? process.env,
    signal: controller.signal,
    timeoutMs,
    root: options.root,
    readable: options.readable,
  };
  const settled = module.run(parsed.data, context).then(
    (result) => ({ result }),
    (error: unknown) => ({ error }),
  );
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    if (timeoutMs !== undefined) timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const outcome = await Promise.race([settled, timedOut]);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    controller.abort();
    // Give the action a moment to stop and report what it printed until then.
    const late = await Promise.race([settled, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 2000).unref())]);
    const output = late && 'error' in late && late.error instanceof ActionFailure ? late.error.output : '';
    throw new ActionFailure('timed out', output);
  }
  if ('error' in outcome) throw outcome.error;
  return outcome.result;
}

function failureMessage(where: string, step: ToeStep, failure: ActionFailure): string {
  const what = failure.message === 'timed out' ? `timed out after ${step.timeoutSeconds}s` : `failed (${failure.message})`;
  const output = tail(failure.output);
  return `${where} ${what}${output ? `\n${output}` : ''}`;
}

/**
 * Run a component document's phases in order (build, validate, test by default), stopping
 * at the first failing step unless its onFailure says otherwise. A failure throws
 * ImageBuildFailedError naming document › phase › step with the step's output; a
 * problem with the document itself throws RecipeError before (or instead of) running it.
 */
export async function runDocument(file: string, given: Record<string, string>, options: RunOptions = {}): Promise<DocumentRun> {
  const label = options.label ?? file;
  const doc = await loadDocument(file);
  const order = options.phases ?? PHASES;
  checkDocument(doc, label, order);
  const values = bindParameters(doc, label, given);
  const executed = new Map<string, Executed>();
  const results: StepResult[] = [];
  const continued: string[] = [];

  for (const phaseName of order) {
    const phase = doc.phases.find((p) => p.name === phaseName);
    if (!phase) continue;
    for (const step of phase.steps) {
      const where = `${label} › ${phase.name} › ${step.name}`;
      const event = { document: label, phase: phase.name, step: step.name, action: step.action, maxAttempts: step.maxAttempts };
      const started = Date.now();
      options.onStep?.({ ...event, status: 'started', attempt: 1 });
      let inputs: unknown;
      try {
        inputs = substitute(step.inputs, (expression) => resolveExpression(expression, values, executed, where));
      } catch (error) {
        options.onStep?.({ ...event, status: 'failed', attempt: 1, durationMs: Date.now() - started, error: (error as Error).message });
        throw error;
      }

      let result: ActionResult | undefined;
      let failure: ActionFailure | undefined;
      let attempt = 0;
      while (attempt < step.maxAttempts) {
        attempt++;
        if (attempt > 1) options.onStep?.({ ...event, status: 'retrying', attempt });
        try {
          result = await attemptStep(step, inputs, options);
          failure = undefined;
          break;
        } catch (error) {
          if (error instanceof ActionInputError) {
            options.onStep?.({ ...event, status: 'failed', attempt, durationMs: Date.now() - started, error: error.message });
            throw new RecipeError(`${where}: ${error.message}`);
          }
          failure = error instanceof ActionFailure ? error : new ActionFailure((error as Error).message);
        }
      }
      const durationMs = Date.now() - started;

      if (result) {
        options.onStep?.({ ...event, status: 'succeeded', attempt, durationMs, output: result.log });
        executed.set(`${phase.name}.${step.name}`, { status: 'succeeded', inputs, outputs: result.outputs });
        results.push({ phase: phase.name, step: step.name, action: step.action, status: 'succeeded', attempts: attempt, durationMs });
        continue;
      }
      const message = failureMessage(where, step, failure as ActionFailure);
      const status = step.onFailure === 'Ignore' ? 'ignored' : 'failed';
      options.onStep?.({ ...event, status, attempt, durationMs, output: failure?.output ?? '', error: message });
      executed.set(`${phase.name}.${step.name}`, { status, inputs, outputs: {} });
      results.push({ phase: phase.name, step: step.name, action: step.action, status, attempts: attempt, durationMs });
      if (step.onFailure === 'Abort') throw new ImageBuildFailedError(message);
      // Continue: the step failed and the document will end failed, but the steps after it run first.
      if (step.onFailure === 'Continue') continued.push(message);
    }
  }
  if (continued.length > 0) {
    throw new ImageBuildFailedError(
      `${label}: ${continued.length} step(s) failed with onFailure: Continue, so the document failed after its last step\n${continued.join('\n')}`,
    );
  }
  return { document: label, name: doc.name ?? null, steps: results };
}
