import {
  AlreadyDecidedError,
  ApprovalExpiredError,
  ApprovalRejectedError,
  BakeryError,
  NotAnApproverError,
  NotFoundError,
} from '../errors.ts';
import type { ApprovalDecision, ApprovalRecord, ApprovalStore } from '../ports/approval.ts';
import type { TaskCallbacks } from '../ports/callbacks.ts';
import type { FunctionRegistry } from '../ports/lambda.ts';
import type { Notifier } from '../ports/notifier.ts';
import type { Clock, IdSource } from '../ports/system.ts';
import type { ApprovalResult, BoundAlias, ResolvedBake, TaskInput } from '../state.ts';
import { sha256Hex } from '../util/fsx.ts';
import { canonicalJson } from '../util/json.ts';
import { describePatches } from './patch.ts';

/** RequestApproval's input: the state's layer, versions and validation report, and its task token. */
export type ApprovalInput = TaskInput<'RequestApproval'>;

/** What an approver signs off: exactly these bytes, versions and validation outcome. */
export function approvalDigest(input: Omit<ApprovalInput, 'taskToken' | 'bake'> & { bakeId: string }): string {
  return sha256Hex(
    canonicalJson({
      bakeId: input.bakeId,
      layer: { arn: input.layer.arn, codeSha256: input.layer.codeSha256 },
      functions: input.versions.functions.map((f) => ({ name: f.name, version: f.version, codeSha256: f.codeSha256 })),
      validation: input.validation.passed,
    }),
  );
}

/**
 * RequestApproval (a callback task): store the approval record with the task token
 * and tell the approvers. The decision resumes the execution through the token.
 *
 * Idempotent per bake: a retried attempt (a new task token) finds the bake's undecided
 * record, hands it the new token and expiry, and updates the message it posted instead
 * of posting another. A record for other content, or one decided meanwhile, is refused.
 */
export async function requestApproval(
  input: ApprovalInput,
  deps: { approvals: ApprovalStore; functions: FunctionRegistry; notifier: Notifier; clock: Clock; ids: IdSource },
): Promise<{ approvalId: string }> {
  const now = deps.clock.now();
  const digest = approvalDigest({ ...input, bakeId: input.bake.bakeId });
  const expiresAt = new Date(now.getTime() + input.bake.approval.timeoutSeconds * 1000).toISOString();
  const existing = await deps.approvals.findByBake(input.bake.bakeId);
  const record = existing ? await renewRequest(existing, { digest, taskToken: input.taskToken, expiresAt }, deps) : undefined;
  if (record) {
    await notify(record, deps);
    return { approvalId: record.id };
  }
  const functions = [];
  for (const fn of input.versions.functions) {
    // What the approver is shown as live is what the approval binds: Release moves the alias only from exactly this.
    const live = await deps.functions.getAlias(fn.name, fn.alias);
    functions.push({
      name: fn.name,
      version: fn.version,
      alias: fn.alias,
      live: live?.version ?? null,
      liveWeights: { ...(live?.weights ?? {}) },
      liveRevisionId: live?.revisionId ?? null,
    });
  }
  const created: ApprovalRecord = {
    id: `apr-${deps.ids.random()}`,
    bakeId: input.bake.bakeId,
    taskToken: input.taskToken,
    digest,
    approvers: input.bake.approval.approvers,
    createdAt: now.toISOString(),
    expiresAt,
    summary: {
      functions,
      layer: { arn: input.layer.arn, codeSha256: input.layer.codeSha256, sha256Hex: input.layer.sha256Hex },
      runtime: runtimeSummary(input.bake),
      validation: {
        passed: input.validation.passed,
        cases: input.validation.functions.reduce((n, f) => n + f.cases.length, 0),
      },
    },
    message: null,
    decision: null,
  };
  await deps.approvals.create(created);
  await notify(created, deps);
  return { approvalId: created.id };
}

/** The runtime line of the request: the recipe, its pinned versions, and what a scheduled bake moved (`node 22.23.3 → 22.23.4`). */
function runtimeSummary(bake: ResolvedBake): string {
  const pins = Object.entries(bake.recipe.parameters)
    .filter(([k]) => /version/i.test(k))
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const moved = describePatches(bake.patched ?? []);
  return `${bake.recipe.name} (${pins})${moved.length ? `; newest patch: ${moved.join(', ')}` : ''}`;
}

async function renewRequest(
  existing: ApprovalRecord,
  update: { digest: string; taskToken: string; expiresAt: string },
  deps: { approvals: ApprovalStore },
): Promise<ApprovalRecord> {
  if (existing.digest !== update.digest) {
    throw new BakeryError(
      `bake ${existing.bakeId} already has approval ${existing.id} for other content (digest ${existing.digest.slice(0, 16)}…, now ${update.digest.slice(0, 16)}…); an approval covers exactly what was validated`,
    );
  }
  if (existing.decision) {
    throw new AlreadyDecidedError(
      `approval ${existing.id} of bake ${existing.bakeId} was ${existing.decision.outcome} by ${existing.decision.by} at ${existing.decision.at} while its request was being retried; a bake is decided once`,
      { hint: 'Start a new bake to ask again.' },
    );
  }
  // The same token is the same wait going on (a resumed local execution): its deadline stays.
  const expiresAt = existing.taskToken === update.taskToken ? existing.expiresAt : update.expiresAt;
  return deps.approvals.renew(existing.id, { taskToken: update.taskToken, expiresAt });
}

/** Post (or, for a retried request, update) the request, and remember where it went. */
async function notify(record: ApprovalRecord, deps: { approvals: ApprovalStore; notifier: Notifier }): Promise<void> {
  const message = await deps.notifier.approvalRequested(record);
  if (message && (message.channel !== record.message?.channel || message.ts !== record.message?.ts)) {
    await deps.approvals.setMessage(record.id, message);
  }
}

/** What the approval binds: each alias as the approver was shown it (records made before binding have none). */
export function boundAliases(record: ApprovalRecord): BoundAlias[] {
  return record.summary.functions.flatMap((f) =>
    f.liveRevisionId === undefined
      ? []
      : [{ name: f.name, alias: f.alias, version: f.live, weights: { ...(f.liveWeights ?? {}) }, revisionId: f.liveRevisionId }],
  );
}

export interface DecideInput {
  /** An approval id (`apr-…`) or the bake id it belongs to. */
  ref: string;
  outcome: 'approved' | 'rejected';
  by: string;
  reason?: string | undefined;
  /** How `by` is known (see ApprovalDecision.identity); recorded with the decision. */
  identity?: ApprovalDecision['identity'];
}

const ROLE_ARN = /^arn:(aws[\w-]*):iam::(\d{12}):role\/(?:[\w+=,.@-]+\/)*([\w+=,.@-]+)$/;
const ASSUMED_ROLE_ARN = /^arn:(aws[\w-]*):sts::(\d{12}):assumed-role\/([\w+=,.@-]+)(?:\/([\w+=,.@-]+))?$/;

/**
 * Whether `approver`, an entry of `approval.approvers`, names `by`: the same Slack member id or
 * ARN; or, for an IAM role (`arn:aws:iam::123456789012:role/path/Name`) or an assumed role
 * without a session (`arn:aws:sts::123456789012:assumed-role/Name`), any session of that role
 * (`arn:aws:sts::123456789012:assumed-role/Name/ana`). Role names are unique in an account
 * whatever their path, and session ARNs carry no path.
 */
export function approverMatches(approver: string, by: string): boolean {
  if (approver === by) return true;
  const session = ASSUMED_ROLE_ARN.exec(by);
  if (!session?.[4]) return false;
  const role = ROLE_ARN.exec(approver) ?? ASSUMED_ROLE_ARN.exec(approver);
  if (!role || role[4]) return false;
  return role[1] === session[1] && role[2] === session[2] && role[3] === session[3];
}

/**
 * Decide an approval once. Checks the approver and the expiry, writes the decision
 * conditionally (a second or concurrent decision fails with AlreadyDecidedError and
 * changes nothing), then resumes or fails the waiting task.
 */
export async function decideApproval(
  input: DecideInput,
  deps: { approvals: ApprovalStore; callbacks: TaskCallbacks; notifier: Pick<Notifier, 'approvalDecided'>; clock: Clock },
): Promise<ApprovalRecord> {
  const record = (await deps.approvals.get(input.ref)) ?? (await deps.approvals.findByBake(input.ref));
  if (!record) throw new NotFoundError(`no approval found for "${input.ref}"`, { hint: 'Pass the bake id printed by `bakery bake`.' });
  if (record.decision?.outcome === 'expired') {
    throw new ApprovalExpiredError(
      `approval ${record.id} for bake ${record.bakeId} expired at ${record.decision.at}: nobody decided in time`,
    );
  }
  if (record.decision) {
    throw new AlreadyDecidedError(
      `approval ${record.id} (bake ${record.bakeId}) was already ${record.decision.outcome} by ${record.decision.by} at ${record.decision.at}`,
    );
  }
  if (record.approvers.length > 0 && !record.approvers.some((approver) => approverMatches(approver, input.by))) {
    throw new NotAnApproverError(`${input.by} may not decide bake ${record.bakeId}`, {
      hint: `Allowed approvers: ${record.approvers.join(', ')}.`,
    });
  }
  const now = deps.clock.now();
  if (now.getTime() > Date.parse(record.expiresAt)) {
    throw new ApprovalExpiredError(`approval ${record.id} for bake ${record.bakeId} expired at ${record.expiresAt}`);
  }
  const decision: ApprovalDecision = {
    outcome: input.outcome,
    by: input.by,
    at: now.toISOString(),
    reason: input.reason ?? null,
    ...(input.identity ? { identity: input.identity } : {}),
  };
  // The token as the conditional write left it: a retried request may have replaced it since the read above.
  const decided = await deps.approvals.decide(record.id, decision);
  try {
    if (decision.outcome === 'approved') {
      const result: ApprovalResult = {
        approvalId: record.id,
        decision: 'approved',
        by: decision.by,
        at: decision.at,
        live: boundAliases(record),
      };
      await deps.callbacks.succeed(decided.taskToken, { ...result });
    } else {
      const error = new ApprovalRejectedError(`rejected by ${decision.by}${decision.reason ? `: ${decision.reason}` : ''}`);
      await deps.callbacks.fail(decided.taskToken, error.name, error.message);
    }
  } catch (error) {
    // Only a timed-out or ended task refuses its token: the decision came too late to count.
    if (!(error instanceof AlreadyDecidedError)) throw error;
    throw new ApprovalExpiredError(
      `the decision on approval ${record.id} was recorded, but bake ${record.bakeId} was no longer waiting (its approval timed out or the execution ended): nothing was resumed`,
      { cause: error },
    );
  }
  await deps.notifier.approvalDecided(decided);
  return decided;
}

/**
 * Close the approval of a bake whose RequestApproval timed out: decided once as
 * `expired`, so that a click after the timeout finds it decided and changes nothing.
 * Returns the record as it now stands (undefined when the bake never got one).
 */
export async function expireApproval(
  input: { bakeId: string; reason: string },
  deps: { approvals: ApprovalStore; clock: Clock },
): Promise<ApprovalRecord | undefined> {
  const record = await deps.approvals.findByBake(input.bakeId);
  if (!record || record.decision) return record;
  const decision: ApprovalDecision = { outcome: 'expired', by: 'bakery', at: deps.clock.now().toISOString(), reason: input.reason };
  try {
    return await deps.approvals.decide(record.id, decision);
  } catch (error) {
    // A click that won the race, or a retried RecordFailure: the record stands as decided.
    if (!(error instanceof AlreadyDecidedError)) throw error;
    return (await deps.approvals.get(record.id)) ?? record;
  }
}
