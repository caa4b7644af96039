import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { BakeSpecError } from './errors.ts';

/** A validation case: an event to send to the new version and what must come back. */
export const ValidationCaseSchema = z
  .object({
    name: z.string().min(1),
    event: z.json(),
    expect: z
      .object({
        /** The JSON the handler must return (omit when an error is expected). */
        result: z.json().optional(),
        /** `exact`: deep-equal; `subset`: every key given must match, extra keys are allowed. */
        match: z.enum(['exact', 'subset']).default('exact'),
        /** The `errorType` the handler must fail with, instead of returning. */
        errorType: z.string().min(1).optional(),
      })
      .strict()
      .refine((e) => e.result !== undefined || e.errorType !== undefined, {
        message: 'give expect.result or expect.errorType',
      }),
    maxDurationMs: z.number().int().positive().default(3000),
  })
  .strict();

const NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** A layer version ARN (`…:layer:<name>:<version>`), in any partition and region (`local` for the local backend). */
export const LAYER_VERSION_ARN = /^arn:aws[\w-]*:lambda:[\w-]+:\d{12}:layer:[A-Za-z0-9_-]+:\d+$/;

export const FunctionSpecSchema = z
  .object({
    name: z.string().regex(NAME, 'letters, digits, - and _ only, at most 64'),
    /** Directory with the function's code, relative to the spec file. */
    code: z.string().min(1),
    /** `file.export`, as Lambda's `Handler` setting (e.g. `index.handler`). */
    handler: z.string().regex(/^[^\s/]+\.[A-Za-z_$][\w$]*$/, 'expected "file.export", e.g. "index.handler"'),
    memorySize: z.number().int().min(128).max(10240).default(256),
    timeout: z.number().int().min(1).max(900).default(10),
    environment: z.record(z.string().regex(/^[A-Za-z][A-Za-z0-9_]*$/), z.string()).default({}),
    alias: z
      .string()
      .regex(/^(?!^[0-9]+$)[A-Za-z0-9_-]{1,128}$/)
      .default('live'),
    /**
     * Existing layer versions the function also uses, after the baked runtime layer (a
     * later layer's files win where paths collide). Counted in Lambda's limits.
     */
    layers: z
      .array(z.string().regex(LAYER_VERSION_ARN, 'expected a layer version ARN, e.g. arn:aws:lambda:eu-west-1:123456789012:layer:name:3'))
      .refine((arns) => new Set(arns).size === arns.length, 'a layer version may be listed once')
      .default([]),
    validation: z
      .object({
        initTimeoutMs: z.number().int().positive().default(10_000),
        cases: z.array(ValidationCaseSchema).min(1, 'at least one validation case: nothing is released unchecked'),
      })
      .strict(),
  })
  .strict();

/**
 * A gradual release: after approval each alias keeps its previous version and sends
 * `weight` percent of the traffic to the new one, step by step, waiting `minutes` at each
 * step; before every further step the `alarms` are checked, and one in ALARM moves every
 * alias back. After the last step's wait, all traffic goes to the new version.
 */
export const ReleaseSpecSchema = z
  .object({
    steps: z
      .array(
        z
          .object({
            /** Percent of the traffic on the new version during this step (Lambda takes 0 < weight < 100). */
            weight: z.number().gt(0).lt(100),
            /** How long to stay at this weight before the alarms are checked again. */
            minutes: z
              .number()
              .min(0)
              .max(7 * 24 * 60),
          })
          .strict(),
      )
      .min(1)
      .max(10)
      .refine((steps) => steps.every((s, i) => i === 0 || s.weight > (steps[i - 1]?.weight ?? 0)), 'weights must increase step by step'),
    /** CloudWatch alarm names (metric or composite); locally, names set with `bakery alarm set`. */
    alarms: z.array(z.string().min(1).max(255)).max(100).default([]),
  })
  .strict();

export const BakeSpecSchema = z
  .object({
    version: z.literal(1),
    name: z.string().regex(NAME, 'letters, digits, - and _ only, at most 64'),
    runtime: z
      .object({
        /** A recipe under `layers/<recipe>/`. */
        recipe: z.string().regex(NAME),
        /** Overrides of the recipe's parameters. */
        parameters: z.record(z.string(), z.string()).default({}),
      })
      .strict(),
    layer: z
      .object({
        name: z.string().regex(NAME),
        description: z.string().max(256).optional(),
      })
      .strict(),
    functions: z
      .array(FunctionSpecSchema)
      .min(1)
      .refine((fns) => new Set(fns.map((f) => f.name)).size === fns.length, 'function names must be unique'),
    approval: z
      .object({
        /** Who may approve (Slack user ids in AWS; any name locally). Empty: anyone. */
        approvers: z.array(z.string().min(1)).default([]),
        timeoutSeconds: z
          .number()
          .int()
          .min(1)
          .max(365 * 24 * 3600)
          .default(24 * 3600),
      })
      .strict()
      .default({ approvers: [], timeoutSeconds: 24 * 3600 }),
    /** Optional gradual release of every function of the bake; without it, aliases move all at once. */
    release: ReleaseSpecSchema.optional(),
  })
  .strict();

export type BakeSpec = z.output<typeof BakeSpecSchema>;
export type FunctionSpec = z.output<typeof FunctionSpecSchema>;
export type ValidationCase = z.output<typeof ValidationCaseSchema>;
export type ReleaseSpec = z.output<typeof ReleaseSpecSchema>;

/** Parse a spec already in memory; `where` names its origin in error messages. */
export function parseSpec(raw: unknown, where: string): BakeSpec {
  const parsed = BakeSpecSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const at = issue.path.length
        ? issue.path
            .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
            .join('')
            .replace(/^\./, '')
        : '(root)';
      return `  ${at}: ${issue.message}`;
    });
    throw new BakeSpecError(`${where} is not a valid bake spec:\n${lines.join('\n')}`, {
      hint: 'See docs/bake-spec.md, or examples/hello/bake.json for a working spec.',
    });
  }
  return parsed.data;
}

/** Read and parse a spec file (JSON); errors name it as `where` (the path as the user gave it, or its S3 URI). */
export async function loadSpec(file: string, where = file): Promise<{ spec: BakeSpec; file: string; dir: string }> {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new BakeSpecError(
      code === 'ENOENT' ? `bake spec not found: ${where}` : `cannot read bake spec ${where}: ${(cause as Error).message}`,
      { cause, hint: 'Pass the path of a bake spec, e.g. `bakery bake examples/hello/bake.json`.' },
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new BakeSpecError(`${where} is not valid JSON: ${(cause as Error).message}`, { cause });
  }
  return { spec: parseSpec(raw, where), file: abs, dir: path.dirname(abs) };
}
