import { ApprovalTimedOutError, causeMessage, type StatesError } from '../errors.ts';
import type {
  ApprovalRecord,
  ApprovalResult,
  ApprovalStore,
  ArtefactRef,
  ArtefactStore,
  BuiltImage,
  Clock,
  Ledger,
  Notifier,
  PublishedLayer,
  PublishedVersions,
  ReleaseResult,
  ResolvedBake,
  ValidationReport,
} from '../ports.ts';
import { expireApproval } from './approval.ts';
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
  functions: Array<{ name: string; version: string; codeSha256: string; alias: string }>;
  validation: ValidationReport | null;
  approval: ApprovalResult | null;
  release: ReleaseResult | null;
  failure: { state: string; error: string; cause: string } | null;
}

/** The accumulated execution state, as the ASL hands it to the record states. */
export interface BakeState {
  /** The bake id the execution was started with (the CLI and the S3 trigger set it), before ResolveBake ran. */
  bakeId?: string;
  bake?: ResolvedBake;
  image?: BuiltImage;
  layer?: PublishedLayer;
  versions?: PublishedVersions;
  validation?: ValidationReport;
  approval?: ApprovalResult;
  release?: ReleaseResult;
  /** Set by UndoRelease when the release could not be recorded and was undone. */
  undo?: { functions: Array<{ name: string; alias: string; restored: string | null; skipped: string | null }> };
  /** Set by each Catch: `$.errors.<StateName>`. */
  errors?: Record<string, StatesError>;
}

function manifestOf(state: BakeState, status: PinManifest['status'], at: Date, failure: PinManifest['failure']): PinManifest {
  const layer = state.layer ? (({ reused: _reused, ...rest }) => rest)(state.layer) : null;
  return {
    schemaVersion: MANIFEST_SCHEMA_VERSION,
    bakeId: state.bake?.bakeId ?? state.bakeId ?? 'unknown',
    status,
    recordedAt: at.toISOString(),
    trigger: state.bake?.trigger ?? null,
    recipe: state.bake?.recipe ?? null,
    bakeKey: state.image?.bakeKey ?? null,
    build: state.image?.buildRecord ?? null,
    imageArn: state.image?.imageArn ?? null,
    layer,
    functions: state.versions?.functions ?? [],
    validation: state.validation ?? null,
    approval: state.approval ?? null,
    release: state.release ?? null,
    failure,
  };
}

export const manifestKey = (bakeId: string): string => `manifests/${bakeId}.json`;

/** RecordSuccess: store the pin manifest and append the release to the ledger. */
export async function recordSuccess(
  state: BakeState,
  deps: { artefacts: ArtefactStore; ledger: Ledger; clock: Clock },
): Promise<{ bakeId: string; manifest: ArtefactRef }> {
  const { bake, layer, release } = state;
  if (!bake || !layer || !release) throw new Error('RecordSuccess needs $.bake, $.layer and $.release');
  const now = deps.clock.now();
  const manifest = await deps.artefacts.putJson(manifestKey(bake.bakeId), manifestOf(state, 'released', now, null));
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
 * it, tell people, and hand the original error name and cause to the Fail state.
 */
export async function recordFailure(
  state: BakeState,
  deps: { artefacts: ArtefactStore; ledger: Ledger; notifier: Notifier; clock: Clock; approvals: ApprovalStore },
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
  } else if (state.release && failedState !== 'Release') {
    cause += `; the release was NOT undone: ${state.release.functions.map((m) => `${m.name}:${m.alias} → ${m.to}`).join(', ')}`;
  }
  const now = deps.clock.now();
  const bakeId = state.bake?.bakeId ?? state.bakeId ?? null;
  const failure = { state: failedState, error, cause };
  // Close the approval first, so that a click from now on changes nothing.
  let expired: ApprovalRecord | undefined;
  if (error === 'ApprovalTimedOutError' && bakeId) expired = await expireApproval({ bakeId, reason: cause }, deps);
  // A failed validation has no $.validation (the state failed): take its stored report.
  let validation = state.validation;
  if (!validation && failedState === 'Validate' && bakeId) {
    validation = await deps.artefacts.getJson<ValidationReport>(validationReportKey(bakeId));
  }
  const recorded: BakeState = validation ? { ...state, validation } : state;
  const manifest = bakeId ? await deps.artefacts.putJson(manifestKey(bakeId), manifestOf(recorded, 'failed', now, failure)) : null;
  await deps.ledger.append({ type: 'failed', bakeId, at: now.toISOString(), state: failedState, error, cause, manifest });
  if (expired?.decision?.outcome === 'expired') await deps.notifier.approvalDecided(expired);
  await deps.notifier.bakeFailed({ bakeId, state: failedState, error, cause });
  return { state: failedState, Error: error, Cause: cause };
}
