/**
 * The state contract: one zod schema per JSON document that passes between the states
 * of `statemachines/bake.asl.json`, and the TypeScript types derived from them.
 *
 * Every task parses its input with {@link TASK_INPUTS} before its core runs (the Lambda
 * handlers and the local runner both go through `TASKS` in src/tasks.ts), so a payload
 * that does not match fails at the state that received it, naming the field, instead
 * of surfacing later as `undefined`.
 *
 * State results have every field present (null when absent) because the ASL's
 * `ResultSelector` fails on a missing path. Objects other than the execution input are
 * not `.strict()`: a key no schema names is dropped from what the core receives (the
 * state itself keeps it), so an execution started before a field was removed still parses.
 */
import { z } from 'zod';
import { BakeSpecError, StateContractError, type StatesError } from './errors.ts';
import { BakeSpecSchema } from './spec.ts';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const stringMap = z.record(z.string(), z.string());

// ---------------------------------------------------------------- requests

/** Where the spec and code of a bake come from. */
export const BakeSourceSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('file'), path: z.string().min(1) }).strict(),
  z.object({ type: z.literal('s3'), bucket: z.string().min(1), key: z.string().min(1), versionId: z.string().nullable() }).strict(),
]);
export type BakeSource = z.output<typeof BakeSourceSchema>;

/** What started a bake; recorded in the ledger and the manifest. */
export const TriggerSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('cli'), user: z.string() }).strict(),
  z.object({ type: z.literal('s3'), bucket: z.string().min(1), key: z.string().min(1), versionId: z.string().nullable() }).strict(),
  z.object({ type: z.literal('schedule'), scheduleArn: z.string().nullable() }).strict(),
]);
export type Trigger = z.output<typeof TriggerSchema>;

/**
 * The execution input of the state machine. Strict: it comes from outside bakery's
 * own code (the CLI, the S3 trigger, the schedule), so an unknown key is a mistake.
 */
export const BakeRequestSchema = z
  .object({
    bakeId: z.string().exactOptional(),
    source: BakeSourceSchema,
    trigger: TriggerSchema,
    /**
     * `rebuild`: build the image even on a cache hit (and bake even when up to date).
     * `force`: bake even when up to date (`bakery bake --force`). Only a caller that means
     * it sets them: the upload trigger never does.
     */
    options: z.object({ rebuild: z.boolean().exactOptional(), force: z.boolean().exactOptional() }).strict().exactOptional(),
  })
  .strict();
export type BakeRequest = z.output<typeof BakeRequestSchema>;

/**
 * Parse the execution input (ResolveBake's payload). It comes from outside bakery's own
 * code, so a mismatch is the user's input: BakeSpecError, which ResolveBake's Catch sends
 * to RecordFailure like any other bad spec.
 */
export function parseBakeRequest(payload: unknown): BakeRequest {
  // Step Functions hands the input over as JSON; a local caller's `undefined` keys go the same way.
  const json: unknown = payload === undefined ? undefined : JSON.parse(JSON.stringify(payload));
  const parsed = BakeRequestSchema.safeParse(json);
  if (!parsed.success) throw new BakeSpecError(`invalid bake request:\n${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

// ---------------------------------------------------------------- ResolveBake

/** A stored artefact: `file:///abs/path` locally, `s3://bucket/key` in AWS. */
export const ArtefactRefSchema = z.object({ uri: z.string(), sha256Hex: z.string(), size: z.number() });
export type ArtefactRef = z.output<typeof ArtefactRefSchema>;

const DocumentSchema = z.object({ path: z.string(), sha256Hex: z.string() });

export const ResolvedRecipeSchema = z.object({
  name: z.string(),
  /**
   * The image the build starts from (`baseImage` in recipe.yml; part of the bake key).
   * Set by every resolve; optional because pin manifests written before it lack it.
   */
  baseImage: z.string().exactOptional(),
  runtime: z.string(),
  architecture: z.enum(['x86_64', 'arm64']),
  /** Component documents, relative to the recipe directory, with their SHA-256. */
  documents: z.array(DocumentSchema),
  /** Parameter values after the spec's overrides. */
  parameters: stringMap,
  /** SHA-256 over every file of the recipe but recipe.yml (documents and the files they install). */
  contentSha256Hex: z.string(),
});
export type ResolvedRecipe = z.output<typeof ResolvedRecipeSchema>;

export const ResolvedFunctionSchema = z.object({
  name: z.string(),
  handler: z.string(),
  memorySize: z.number(),
  timeout: z.number(),
  environment: stringMap,
  alias: z.string(),
  /** The function's code, zipped reproducibly and staged as an artefact. */
  code: ArtefactRefSchema.extend({
    sha256Base64: z.string(),
    /** Bytes once extracted (Lambda's 250 MB limit); absent in bakes resolved before it was recorded. */
    unzippedSize: z.number().exactOptional(),
  }),
  /**
   * SHA-256 of the function's code tree and configuration (src/cores/uptodate.ts), recorded
   * in the manifest; absent in bakes resolved before it was.
   */
  inputSha256: z.string().exactOptional(),
});
export type ResolvedFunction = z.output<typeof ResolvedFunctionSchema>;

/** A pin a scheduled bake moved: `parameters.NodeVersion` or `baseImage`, from what to what. */
export const PatchChangeSchema = z.object({ field: z.string(), from: z.string().nullable(), to: z.string() });
export type PatchChange = z.output<typeof PatchChangeSchema>;

/** A bake as src/cores/resolve.ts stages it: spec read, recipe found, code zipped. Not yet keyed or patched. */
export const StagedBakeSchema = z.object({
  bakeId: z.string(),
  requestedAt: z.string(),
  trigger: TriggerSchema,
  rebuild: z.boolean(),
  spec: BakeSpecSchema,
  recipe: ResolvedRecipeSchema,
  functions: z.array(ResolvedFunctionSchema),
  approval: z.object({ timeoutSeconds: z.number(), approvers: z.array(z.string()) }),
});
export type StagedBake = z.output<typeof StagedBakeSchema>;

/** Output of ResolveBake, kept at `$.bake` for the whole execution. */
export const ResolvedBakeSchema = StagedBakeSchema.extend({
  /** The bake key of `recipe` (src/cores/image.ts). */
  bakeKey: z.string(),
  /**
   * A bake (of any trigger, not forced) whose bake key and every function's code and
   * configuration equal those of the releases live now: it ends as "up to date",
   * building, publishing, storing and asking nothing.
   */
  upToDate: z.boolean(),
  /** The bakes whose live releases it equals, when up to date (empty otherwise). */
  upToDateWith: z.array(z.string()),
  /** The pins a scheduled bake moved to the newest patch (empty for other bakes). */
  patched: z.array(PatchChangeSchema),
});
export type ResolvedBake = z.output<typeof ResolvedBakeSchema>;

// ---------------------------------------------------------------- BuildImage

export const BuildRecordSchema = z.object({
  recipe: z.string(),
  bakeKey: z.string(),
  documents: z.array(DocumentSchema),
  parameters: stringMap,
  sources: stringMap,
  tools: stringMap,
  startedAt: z.string(),
  finishedAt: z.string(),
});
export type BuildRecord = z.output<typeof BuildRecordSchema>;

/** Output of BuildImage (`$.image`), sent through the task token when the build completes. */
export const BuiltImageSchema = z.object({
  bakeKey: z.string(),
  cacheHit: z.boolean(),
  imageArn: z.string().nullable(),
  /** The runtime tree that becomes the layer's content. */
  runtime: ArtefactRefSchema,
  buildRecord: BuildRecordSchema,
});
export type BuiltImage = z.output<typeof BuiltImageSchema>;

// ---------------------------------------------------------------- PublishLayer, PublishVersion

export const LayerVersionInfoSchema = z.object({
  name: z.string(),
  arn: z.string(),
  version: z.number(),
  /** Base64 SHA-256 of the zip, as Lambda reports it. */
  codeSha256: z.string(),
  size: z.number(),
});
export type LayerVersionInfo = z.output<typeof LayerVersionInfoSchema>;

/** Output of PublishLayer (`$.layer`). */
export const PublishedLayerSchema = LayerVersionInfoSchema.extend({
  sha256Hex: z.string(),
  unzippedSize: z.number(),
  reused: z.boolean(),
});
export type PublishedLayer = z.output<typeof PublishedLayerSchema>;

export const PublishedFunctionVersionSchema = z.object({
  name: z.string(),
  version: z.string(),
  codeSha256: z.string(),
  alias: z.string(),
});
export type PublishedFunctionVersion = z.output<typeof PublishedFunctionVersionSchema>;

/** Output of PublishVersion (`$.versions`). */
export const PublishedVersionsSchema = z.object({ functions: z.array(PublishedFunctionVersionSchema) });
export type PublishedVersions = z.output<typeof PublishedVersionsSchema>;

// ---------------------------------------------------------------- Validate

export const CaseReportSchema = z.object({
  name: z.string(),
  passed: z.boolean(),
  durationMs: z.number(),
  /** Why it failed: a readable diff or the error; null when it passed. */
  failure: z.string().nullable(),
});
export type CaseReport = z.output<typeof CaseReportSchema>;

export const FunctionValidationReportSchema = z.object({
  name: z.string(),
  version: z.string(),
  passed: z.boolean(),
  initDurationMs: z.number().nullable(),
  initError: z.string().nullable(),
  cases: z.array(CaseReportSchema),
  /**
   * The immutability check: the cases run again with no network at all. `checked`
   * false means it could not run here, and `reason` says why; it never passes silently.
   */
  selfContained: z.object({
    checked: z.boolean(),
    passed: z.boolean().nullable(),
    reason: z.string().nullable(),
    cases: z.array(CaseReportSchema),
  }),
});
export type FunctionValidationReport = z.output<typeof FunctionValidationReportSchema>;

/** Output of Validate (`$.validation`). */
export const ValidationReportSchema = z.object({ passed: z.boolean(), functions: z.array(FunctionValidationReportSchema) });
export type ValidationReport = z.output<typeof ValidationReportSchema>;

// ---------------------------------------------------------------- RequestApproval

/**
 * An alias as the approver was shown it: what the release is approved to replace. Null
 * version and revision: the alias did not exist yet.
 */
export const BoundAliasSchema = z.object({
  name: z.string(),
  alias: z.string(),
  version: z.string().nullable(),
  weights: z.record(z.string(), z.number()),
  revisionId: z.string().nullable(),
});
export type BoundAlias = z.output<typeof BoundAliasSchema>;

/** Output of RequestApproval (`$.approval`), sent through the task token when decided. */
export const ApprovalResultSchema = z.object({
  approvalId: z.string(),
  decision: z.literal('approved'),
  by: z.string(),
  at: z.string(),
  /**
   * What each alias was when the approval was asked for: Release moves it only from
   * exactly this (compare-and-swap on its revision), so an approval never undoes a move
   * made while it waited. Empty for approvals recorded before they were bound.
   */
  live: z.array(BoundAliasSchema).default([]),
});
export type ApprovalResult = z.output<typeof ApprovalResultSchema>;

// ---------------------------------------------------------------- Release, ShiftTraffic, UndoRelease

export const AliasMoveSchema = z.object({
  name: z.string(),
  alias: z.string(),
  from: z.string().nullable(),
  to: z.string(),
  changed: z.boolean(),
});
export type AliasMove = z.output<typeof AliasMoveSchema>;

/** One traffic step of a gradual release: `weight` percent on the new version for `seconds`. */
export const TrafficStepSchema = z.object({ weight: z.number(), seconds: z.number() });
export type TrafficStep = z.output<typeof TrafficStepSchema>;

/**
 * A gradual release under way: each alias stays on its previous version (`from`) and
 * sends `steps[step].weight` percent to the new one (`to`) through its routing weights,
 * until the last step's wait is over and the alias moves to `to` outright (`done`).
 */
export const GradualReleaseSchema = z.object({
  /** Index in `steps` of the weight that is live now. */
  step: z.number(),
  steps: z.array(TrafficStepSchema),
  /** CloudWatch alarms checked before every further step; one in ALARM moves everything back. */
  alarms: z.array(z.string()),
  /** How long the state machine waits before the next check (its Wait state's SecondsPath); 0 when done. */
  waitSeconds: z.number(),
  done: z.boolean(),
  /** The aliases being shifted, with the revision of bakery's last move: the next move's compare-and-swap. */
  functions: z.array(z.object({ name: z.string(), alias: z.string(), from: z.string(), to: z.string(), revisionId: z.string() })),
});
export type GradualRelease = z.output<typeof GradualReleaseSchema>;

/** Output of Release (`$.release`), and of each ShiftTraffic step. */
export const ReleaseResultSchema = z.object({
  functions: z.array(AliasMoveSchema),
  /** Null when everything moved at once (no `release.steps` in the spec, or nothing to shift from). */
  gradual: GradualReleaseSchema.nullable(),
});
export type ReleaseResult = z.output<typeof ReleaseResultSchema>;

export const UndoneMoveSchema = z.object({
  name: z.string(),
  alias: z.string(),
  /** The version the alias is back on; null when the alias was removed (the release had created it). */
  restored: z.string().nullable(),
  /** Why the alias was left alone, when it was. */
  skipped: z.string().nullable(),
});
export type UndoneMove = z.output<typeof UndoneMoveSchema>;

/** Output of UndoRelease (`$.undo`). */
export const UndoResultSchema = z.object({ functions: z.array(UndoneMoveSchema) });
export type UndoResult = z.output<typeof UndoResultSchema>;

// ---------------------------------------------------------------- errors and records

/** {@link StatesError}: `{Error, Cause}` as a Catch writes it to `$.errors.<State>`. */
export const StatesErrorSchema: z.ZodType<StatesError> = z.object({ Error: z.string(), Cause: z.string() });

/** Output of RecordSuccess (`$.record`). */
export const RecordedSchema = z.object({ bakeId: z.string(), manifest: ArtefactRefSchema });
export type Recorded = z.output<typeof RecordedSchema>;

/** Output of RecordFailure (`$.failure`): the original error, handed to the BakeFailed state. */
export const RecordedFailureSchema = z.object({ state: z.string(), Error: z.string(), Cause: z.string() });
export type RecordedFailure = z.output<typeof RecordedFailureSchema>;

/**
 * The accumulated execution state, as the ASL hands it to the record states
 * (`Payload.$: "$"`): the request's fields, then each state's result under its ResultPath.
 */
export const BakeStateSchema = z.object({
  /** The bake id the execution was started with (the CLI and the S3 trigger set it), before ResolveBake ran. */
  bakeId: z.string().optional(),
  /** What started the execution (its input), before ResolveBake ran. */
  trigger: TriggerSchema.optional(),
  bake: ResolvedBakeSchema.exactOptional(),
  image: BuiltImageSchema.exactOptional(),
  layer: PublishedLayerSchema.exactOptional(),
  versions: PublishedVersionsSchema.exactOptional(),
  validation: ValidationReportSchema.exactOptional(),
  approval: ApprovalResultSchema.exactOptional(),
  release: ReleaseResultSchema.exactOptional(),
  /** Set by UndoRelease when the release could not be recorded and was undone. */
  undo: UndoResultSchema.exactOptional(),
  /** Set by each Catch: `$.errors.<StateName>`. */
  errors: z.record(z.string(), StatesErrorSchema).exactOptional(),
});
export type BakeState = z.output<typeof BakeStateSchema>;

// ---------------------------------------------------------------- task inputs

/**
 * What each task receives as its Lambda payload (the `Parameters` of its state), by
 * state name. Callback tasks get the task token beside the state's fields.
 */
export const TASK_INPUTS = {
  // Parsed by parseBakeRequest (a BakeSpecError, not a StateContractError: it is the user's input).
  ResolveBake: BakeRequestSchema,
  BuildImage: z.object({ bake: ResolvedBakeSchema, taskToken: z.string() }),
  PublishLayer: z.object({ bake: ResolvedBakeSchema, image: BuiltImageSchema }),
  PublishVersion: z.object({ bake: ResolvedBakeSchema, layer: PublishedLayerSchema }),
  Validate: z.object({ bake: ResolvedBakeSchema, versions: PublishedVersionsSchema }),
  RequestApproval: z.object({
    bake: ResolvedBakeSchema,
    layer: PublishedLayerSchema,
    versions: PublishedVersionsSchema,
    validation: ValidationReportSchema,
    taskToken: z.string(),
  }),
  // `bake` carries the spec's gradual-release plan (without it the aliases move all at once);
  // `approval` what the approver saw live, which each alias may only be moved from.
  Release: z.object({
    versions: PublishedVersionsSchema,
    bake: ResolvedBakeSchema.exactOptional(),
    approval: ApprovalResultSchema.nullable().exactOptional(),
  }),
  ShiftTraffic: z.object({ release: ReleaseResultSchema }),
  UndoRelease: z.object({ release: ReleaseResultSchema }),
  RecordSuccess: BakeStateSchema.extend({ bake: ResolvedBakeSchema, layer: PublishedLayerSchema, release: ReleaseResultSchema }),
  RecordFailure: BakeStateSchema.extend({ errors: z.record(z.string(), StatesErrorSchema) }),
} as const;

export type TaskState = keyof typeof TASK_INPUTS;
export type TaskInput<S extends TaskState> = z.output<(typeof TASK_INPUTS)[S]>;

/** `$.image.bakeKey`, `$.bake.functions[0].code` (a JSONPath into the state input). */
function jsonPath(path: readonly PropertyKey[]): string {
  return `$${path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')}`;
}

/** One line per issue: `$.image.bakeKey: expected string, received undefined`. */
export function describeIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => `${jsonPath(issue.path)}: ${issue.message.replace(/^Invalid input: /, '')}`);
}

/**
 * Parse the input of the task of state `state`; a mismatch throws {@link StateContractError}
 * naming the state and the field, e.g. `PublishLayer: $.image.bakeKey: expected string, received undefined`.
 */
export function parseTaskInput<S extends TaskState>(state: S, payload: unknown): TaskInput<S> {
  const parsed = TASK_INPUTS[state].safeParse(payload);
  if (parsed.success) return parsed.data as TaskInput<S>;
  const [first, ...rest] = describeIssues(parsed.error);
  const more = rest.length ? `\n${rest.map((line) => `  ${state}: ${line}`).join('\n')}` : '';
  throw new StateContractError(`${state}: ${first}${more}`, {
    hint: 'The state input does not match the state contract (src/state.ts): a producer and a consumer disagree.',
  });
}

/**
 * RecordFailure's input. It must record every failure, including one caused by a state
 * that breaks the contract (that state's Catch led here), so only `$.errors` is required
 * to match: any other field that does not is left out of the record, not fatal.
 */
export function parseFailureInput(payload: unknown): TaskInput<'RecordFailure'> {
  const parsed = TASK_INPUTS.RecordFailure.safeParse(payload);
  if (parsed.success) return parsed.data;
  const state = payload !== null && typeof payload === 'object' ? (payload as Record<string, unknown>) : {};
  const errors = parseTaskInput('RecordFailure', { errors: state.errors }).errors;
  const kept: Record<string, unknown> = { errors };
  for (const [key, schema] of Object.entries(BakeStateSchema.shape)) {
    if (key === 'errors' || state[key] === undefined) continue;
    const field = schema.safeParse(state[key]);
    if (field.success) kept[key] = field.data;
  }
  return TASK_INPUTS.RecordFailure.parse(kept);
}
