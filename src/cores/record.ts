import { ApprovalTimedOutError, causeMessage } from '../errors.ts';
import type { ApprovalRecord, ApprovalStore } from '../ports/approval.ts';
import type { FunctionRegistry } from '../ports/lambda.ts';
import type { Notifier } from '../ports/notifier.ts';
import type { ArtefactStore, Ledger } from '../ports/storage.ts';
import type { Clock } from '../ports/system.ts';
import type {
  ApprovalResult,
  ArtefactRef,
  BakeState,
  BuiltImage,
  PublishedLayer,
  ReleaseResult,
  ResolvedBake,
  ResolvedFunction,
  ValidationReport,
} from '../state.ts';
import { expireApproval } from './approval.ts';
import { extraLayers } from './limits.ts';
import { validationReportKey } from './validate.ts';

export const MANIFEST_SCHEMA_VERSION = 1;

/** The pin manifest: everything needed to know, and re-verify, what a bake produced. */
export interface PinManifest {
  schemaVersion: typeof MANIFEST_SCHEMA_VERSION;
  bakeId: string;
  status: 'released' | 'failed';
  recordedAt: string;
  trigger: ResolvedBake['trigger'] | null;
  recipe: ResolvedBake['recipe'] | null;
  bakeKey: string | null;
  build: BuiltImage['buildRecord'] | null;
  imageArn: string | null;
  layer: Omit<PublishedLayer, 'reused'> | null;
  functions: ManifestFunction[];
  validation: ValidationReport | null;
  approval: ManifestApproval | null;
  release: ReleaseResult | null;
  /** Each function's alias before and after the bake (absent in manifests written before it). */
  aliases?: ManifestAlias[];
  failure: { state: string; error: string; cause: string } | null;
}

/**
 * Who decided the approval and when: as the state carries it when approved, or as the
 * approval store recorded it for a bake that failed (rejected, expired, or failed later).
 */
export type ManifestApproval =
  | ApprovalResult
  | { approvalId: string; decision: 'approved' | 'rejected' | 'expired'; by: string; at: string; reason: string | null };

/** Where an alias pointed before the bake and after it (null: no such alias). */
export interface ManifestAlias {
  name: string;
  alias: string;
  before: string | null;
  after: string | null;
  /** Why `after` is unknown, when the alias could not be read as the failure was recorded. */
  unread?: string;
}

/**
 * A function version as the bake published it. The configuration fields are what
 * `bakery drift` compares with what is live (absent in manifests written before them).
 */
export interface ManifestFunction {
  name: string;
  version: string;
  codeSha256: string;
  alias: string;
  handler?: string;
  runtime?: string;
  layers?: string[];
  /** Names only: values may be secrets, and drift is about what was changed by hand. */
  environmentNames?: string[];
  memorySize?: number;
  timeout?: number;
  /**
   * SHA-256 of the function's inputs, code tree and configuration (src/cores/uptodate.ts):
   * what a later bake compares to know it is up to date. Absent in manifests written before it.
   */
  inputSha256?: string;
  /** The code as ResolveBake staged it, which an up-to-date bake names instead of staging it again. */
  code?: ResolvedFunction['code'];
}

function manifestFunctions(state: BakeState): ManifestFunction[] {
  return (state.versions?.functions ?? []).map((published) => {
    const resolved = state.bake?.functions.find((f) => f.name === published.name);
    return {
      ...published,
      ...(resolved
        ? {
            handler: resolved.handler,
            environmentNames: Object.keys(resolved.environment).sort(),
            memorySize: resolved.memorySize,
            timeout: resolved.timeout,
            ...(resolved.inputSha256 === undefined ? {} : { inputSha256: resolved.inputSha256 }),
            code: resolved.code,
          }
        : {}),
      ...(state.bake ? { runtime: state.bake.recipe.runtime } : {}),
      // Exactly what PublishVersion attached (and checked): the runtime layer, then the spec's extra layers.
      ...(state.layer ? { layers: [state.layer.arn, ...(state.bake ? extraLayers(state.bake, published.name).arns : [])] } : {}),
    };
  });
}

function manifestOf(
  state: BakeState,
  status: PinManifest['status'],
  at: Date,
  failure: PinManifest['failure'],
  recorded: { approval: ManifestApproval | null; aliases: ManifestAlias[] },
): PinManifest {
  const layer = state.layer ? (({ reused: _reused, ...rest }) => rest)(state.layer) : null;
  return {
    schemaVersion: MANIFEST_SCHEMA_VERSION,
    bakeId: state.bake?.bakeId ?? state.bakeId ?? 'unknown',
    status,
    recordedAt: at.toISOString(),
    trigger: state.bake?.trigger ?? state.trigger ?? null,
    recipe: state.bake?.recipe ?? null,
    bakeKey: state.image?.bakeKey ?? null,
    build: state.image?.buildRecord ?? null,
    imageArn: state.image?.imageArn ?? null,
    layer,
    functions: manifestFunctions(state),
    validation: state.validation ?? null,
    approval: recorded.approval,
    release: state.release ?? null,
    aliases: recorded.aliases,
    failure,
  };
}

import { manifestKey, notificationKey } from './manifest-keys.ts';

export { manifestKey, notificationKey };

/**
 * How long the record tasks try to tell people. Recording never waits on it: the ledger
 * entry and the manifest are written first, and a notification that fails within this
 * budget is noted as failed, not retried by the state machine. Worst case
 * {@link notifyBudgetMs}: well inside the record tasks' timeout, so a bake's end is
 * reported within 30 s even with Slack unreachable.
 */
export interface NotifyBudget {
  attempts: number;
  /** Each attempt is given up after this long (the notifier's own client times out too). */
  attemptTimeoutMs: number;
  /** The pause before each further attempt. */
  backoffMs: number;
}

export const NOTIFY_BUDGET: NotifyBudget = { attempts: 3, attemptTimeoutMs: 6_000, backoffMs: 1_000 };

/** The longest the notifications of one record task can take. */
export const notifyBudgetMs = (budget: NotifyBudget): number =>
  budget.attempts * budget.attemptTimeoutMs + Math.max(0, budget.attempts - 1) * budget.backoffMs;

/** How one notification went: noted beside the manifest ({@link notificationKey}). */
export interface NotificationOutcome {
  what: 'bakeFailed' | 'approvalExpired' | 'approvalStale';
  status: 'sent' | 'failed';
  attempts: number;
  /** The last attempt's error when it failed; null when sent. */
  error: string | null;
}

export interface NotificationNote {
  bakeId: string;
  at: string;
  notifications: NotificationOutcome[];
}

/** Try `send` within the budget; never throws: the outcome says what happened. */
export async function notifyWithin(
  what: NotificationOutcome['what'],
  send: () => Promise<void>,
  budget: NotifyBudget,
): Promise<NotificationOutcome> {
  let error = '';
  for (let attempt = 1; attempt <= budget.attempts; attempt++) {
    if (attempt > 1 && budget.backoffMs > 0) await new Promise((resolve) => setTimeout(resolve, budget.backoffMs));
    let timer: NodeJS.Timeout | undefined;
    try {
      // Hand-written race: Notifier calls take no AbortSignal (Slack's WebClient has none per call).
      await Promise.race([
        send(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${budget.attemptTimeoutMs} ms`)), budget.attemptTimeoutMs);
          timer.unref?.();
        }),
      ]);
      return { what, status: 'sent', attempts: attempt, error: null };
    } catch (caught) {
      error = caught instanceof Error ? caught.message : String(caught);
    } finally {
      clearTimeout(timer);
    }
  }
  return { what, status: 'failed', attempts: budget.attempts, error };
}

/** RecordSuccess: store the pin manifest and append the release to the ledger, once per bake. */
export async function recordSuccess(
  state: BakeState,
  deps: { artefacts: ArtefactStore; ledger: Ledger; clock: Clock },
): Promise<{ bakeId: string; manifest: ArtefactRef }> {
  const { bake, layer, release } = state;
  if (!bake || !layer || !release) throw new Error('RecordSuccess needs $.bake, $.layer and $.release');
  const recorded = await deps.ledger.endOf(bake.bakeId, 'released');
  if (recorded?.type === 'released') {
    // A retry (or a resumed execution): the release is recorded, and its manifest is what the entry hashed.
    // Appending it again completes an entry a crash may have left half-written, and adds nothing otherwise.
    await deps.ledger.append(recorded);
    return { bakeId: bake.bakeId, manifest: recorded.manifest };
  }
  const now = deps.clock.now();
  const aliases = release.functions.map((m) => ({ name: m.name, alias: m.alias, before: m.from, after: m.to }));
  const manifest = await deps.artefacts.putJson(
    manifestKey(bake.bakeId),
    manifestOf(state, 'released', now, null, { approval: state.approval ?? null, aliases }),
  );
  await deps.ledger.append({
    type: 'released',
    bakeId: bake.bakeId,
    at: now.toISOString(),
    trigger: bake.trigger,
    layer: { arn: layer.arn, version: layer.version, codeSha256: layer.codeSha256 },
    functions: release.functions,
    manifest,
  });
  return { bakeId: bake.bakeId, manifest };
}

/**
 * RecordFailure: find which state failed (its Catch wrote `$.errors.<State>`), record
 * it once (manifest and ledger entry: a retry finds its entry and writes nothing), then
 * tell people within {@link NOTIFY_BUDGET} and note how that went, and hand the original
 * error name and cause to the Fail state. A notifier that is down never fails the task.
 */
export async function recordFailure(
  state: BakeState,
  deps: {
    artefacts: ArtefactStore;
    ledger: Ledger;
    notifier: Notifier;
    clock: Clock;
    approvals: ApprovalStore;
    functions: FunctionRegistry;
    notifyBudget?: NotifyBudget | undefined;
  },
): Promise<{ state: string; Error: string; Cause: string }> {
  const [failedState, caught] = Object.entries(state.errors ?? {})[0] ?? ['unknown', { Error: 'States.Unknown', Cause: '' }];
  let error = caught.Error;
  let cause = causeMessage(caught.Cause);
  if (failedState === 'RequestApproval' && error === 'States.Timeout') {
    error = new ApprovalTimedOutError('').name;
    cause = `nobody decided within ${state.bake?.approval.timeoutSeconds ?? '?'} seconds; nothing was released`;
  }
  if (state.undo) {
    const kept = state.undo.functions.filter((u) => u.skipped !== null);
    cause += kept.length
      ? `; the release was undone except ${kept.map((u) => `${u.name}:${u.alias} (${u.skipped})`).join(', ')}`
      : '; the release was undone: every alias is back where it was';
  } else if (state.release && failedState !== 'Release' && error !== 'CanaryAlarmError') {
    // Release undoes its own partial moves, and a CanaryAlarmError says what it moved back.
    cause += `; the release was NOT undone: ${state.release.functions.map((m) => `${m.name}:${m.alias} → ${m.to}`).join(', ')}`;
  }
  const now = deps.clock.now();
  const bakeId = state.bake?.bakeId ?? state.bakeId ?? null;
  const failure = { state: failedState, error, cause };
  // Close the approval first, so that a click from now on changes nothing.
  let expired: ApprovalRecord | undefined;
  if (error === 'ApprovalTimedOutError' && bakeId) expired = await expireApproval({ bakeId, reason: cause }, deps);

  const recorded = bakeId ? await deps.ledger.endOf(bakeId, 'failed') : undefined;
  if (recorded) {
    // A retry: the failure is recorded (completing an entry a crash may have left half-written, adding nothing otherwise).
    await deps.ledger.append(recorded);
  } else {
    // A failed validation has no $.validation (the state failed): take its stored report.
    let validation = state.validation;
    if (!validation && failedState === 'Validate' && bakeId) {
      validation = await deps.artefacts.getJson<ValidationReport>(validationReportKey(bakeId));
    }
    const withReport: BakeState = validation ? { ...state, validation } : state;
    const manifest = bakeId
      ? await deps.artefacts.putJson(
          manifestKey(bakeId),
          manifestOf(withReport, 'failed', now, failure, {
            approval: state.approval ?? (await decidedApproval(bakeId, deps)),
            aliases: await aliasesAfterFailure(state, deps),
          }),
        )
      : null;
    await deps.ledger.append({
      type: 'failed',
      bakeId,
      at: now.toISOString(),
      state: failedState,
      error,
      cause,
      manifest,
      ...(state.bake ? { functions: state.bake.functions.map((f) => f.name) } : {}),
    });
  }

  // Recorded: now tell people, within the budget, once (a retry finds what was sent before).
  const budget = deps.notifyBudget ?? NOTIFY_BUDGET;
  const before = bakeId ? await deps.artefacts.getJson<NotificationNote>(notificationKey(bakeId)) : undefined;
  const sent = new Set((before?.notifications ?? []).filter((n) => n.status === 'sent').map((n) => n.what));
  const notifications: NotificationOutcome[] = [...(before?.notifications ?? []).filter((n) => n.status === 'sent')];
  if (expired?.decision?.outcome === 'expired' && !sent.has('approvalExpired')) {
    const record = expired;
    notifications.push(await notifyWithin('approvalExpired', () => deps.notifier.approvalDecided(record), budget));
  }
  if (failedState === 'Release' && error === 'AliasConflictError' && state.approval && bakeId && !sent.has('approvalStale')) {
    // An approved move from what is no longer live: the request's message says the approval went stale.
    const record = await deps.approvals.findByBake(bakeId).catch(() => undefined);
    if (record) notifications.push(await notifyWithin('approvalStale', () => deps.notifier.approvalStale(record, cause), budget));
  }
  if (!sent.has('bakeFailed')) {
    notifications.push(await notifyWithin('bakeFailed', () => deps.notifier.bakeFailed({ bakeId, ...failure }), budget));
  }
  if (bakeId) {
    const note: NotificationNote = { bakeId, at: deps.clock.now().toISOString(), notifications };
    await deps.artefacts.putJson(notificationKey(bakeId), note);
  }
  return { state: failedState, Error: error, Cause: cause };
}

/** The decision the approval store holds for a bake that failed without `$.approval`; null when none was made. */
async function decidedApproval(bakeId: string, deps: { approvals: ApprovalStore }): Promise<ManifestApproval | null> {
  // The failure is recorded even when the approval store cannot be read; the manifest then has no approval.
  const record = await deps.approvals.findByBake(bakeId).catch(() => undefined);
  const decision = record?.decision;
  return record && decision
    ? { approvalId: record.id, decision: decision.outcome, by: decision.by, at: decision.at, reason: decision.reason }
    : null;
}

/**
 * Where each alias of the bake is as the failure is recorded: `before` is where the
 * release found it, when the release moved it; otherwise nothing moved and it is `after`.
 */
async function aliasesAfterFailure(state: BakeState, deps: { functions: FunctionRegistry }): Promise<ManifestAlias[]> {
  const out: ManifestAlias[] = [];
  for (const fn of state.bake?.functions ?? []) {
    const move = state.release?.functions.find((m) => m.name === fn.name && m.alias === fn.alias);
    try {
      const after = (await deps.functions.getAlias(fn.name, fn.alias))?.version ?? null;
      out.push({ name: fn.name, alias: fn.alias, before: move ? move.from : after, after });
    } catch (error) {
      const unread = error instanceof Error ? error.message : String(error);
      out.push({ name: fn.name, alias: fn.alias, before: move ? move.from : null, after: null, unread });
    }
  }
  return out;
}
