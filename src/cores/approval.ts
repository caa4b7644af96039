import { AlreadyDecidedError, ApprovalRejectedError, InputError, NotFoundError } from '../errors.ts';
import type {
  ApprovalDecision,
  ApprovalRecord,
  ApprovalResult,
  ApprovalStore,
  Clock,
  FunctionRegistry,
  IdSource,
  Notifier,
  PublishedLayer,
  PublishedVersions,
  ResolvedBake,
  TaskCallbacks,
  ValidationReport,
} from '../ports.ts';
import { sha256Hex } from '../util/fsx.ts';
import { canonicalJson } from '../util/json.ts';

export interface ApprovalInput {
  bake: ResolvedBake;
  layer: PublishedLayer;
  versions: PublishedVersions;
  validation: ValidationReport;
  taskToken: string;
}

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
 */
export async function requestApproval(
  input: ApprovalInput,
  deps: { approvals: ApprovalStore; functions: FunctionRegistry; notifier: Notifier; clock: Clock; ids: IdSource },
): Promise<{ approvalId: string }> {
  const now = deps.clock.now();
  const functions = [];
  for (const fn of input.versions.functions) {
    const live = await deps.functions.getAlias(fn.name, fn.alias);
    functions.push({ name: fn.name, version: fn.version, alias: fn.alias, live: live?.version ?? null });
  }
  const record: ApprovalRecord = {
    id: `apr-${deps.ids.random()}`,
    bakeId: input.bake.bakeId,
    taskToken: input.taskToken,
    digest: approvalDigest({ ...input, bakeId: input.bake.bakeId }),
    approvers: input.bake.approval.approvers,
    createdAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + input.bake.approval.timeoutSeconds * 1000).toISOString(),
    summary: {
      functions,
      layer: { arn: input.layer.arn, codeSha256: input.layer.codeSha256, sha256Hex: input.layer.sha256Hex },
      runtime: `${input.bake.recipe.name} (${Object.entries(input.bake.recipe.parameters)
        .filter(([k]) => /version/i.test(k))
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')})`,
      validation: {
        passed: input.validation.passed,
        cases: input.validation.functions.reduce((n, f) => n + f.cases.length, 0),
      },
    },
    decision: null,
  };
  await deps.approvals.create(record);
  await deps.notifier.approvalRequested(record);
  return { approvalId: record.id };
}

export interface DecideInput {
  /** An approval id (`apr-…`) or the bake id it belongs to. */
  ref: string;
  outcome: 'approved' | 'rejected';
  by: string;
  reason?: string | undefined;
}

/**
 * Decide an approval once. Checks the approver and the expiry, writes the decision
 * conditionally (a second or concurrent decision fails with AlreadyDecidedError and
 * changes nothing), then resumes or fails the waiting task.
 */
export async function decideApproval(
  input: DecideInput,
  deps: { approvals: ApprovalStore; callbacks: TaskCallbacks; notifier: Notifier; clock: Clock },
): Promise<ApprovalRecord> {
  const record = (await deps.approvals.get(input.ref)) ?? (await deps.approvals.findByBake(input.ref));
  if (!record) throw new NotFoundError(`no approval found for "${input.ref}"`, { hint: 'Pass the bake id printed by `bakery bake`.' });
  if (record.decision) {
    throw new AlreadyDecidedError(
      `approval ${record.id} (bake ${record.bakeId}) was already ${record.decision.outcome} by ${record.decision.by} at ${record.decision.at}`,
    );
  }
  if (record.approvers.length > 0 && !record.approvers.includes(input.by)) {
    throw new InputError(`${input.by} may not decide bake ${record.bakeId}`, {
      hint: `Allowed approvers: ${record.approvers.join(', ')}.`,
    });
  }
  const now = deps.clock.now();
  if (now.getTime() > Date.parse(record.expiresAt)) {
    throw new InputError(`approval ${record.id} for bake ${record.bakeId} expired at ${record.expiresAt}`);
  }
  const decision: ApprovalDecision = { outcome: input.outcome, by: input.by, at: now.toISOString(), reason: input.reason ?? null };
  const decided = await deps.approvals.decide(record.id, decision);
  if (decision.outcome === 'approved') {
    const result: ApprovalResult = { approvalId: record.id, decision: 'approved', by: decision.by, at: decision.at };
    await deps.callbacks.succeed(record.taskToken, { ...result });
  } else {
    const error = new ApprovalRejectedError(`rejected by ${decision.by}${decision.reason ? `: ${decision.reason}` : ''}`);
    await deps.callbacks.fail(record.taskToken, error.name, error.message);
  }
  await deps.notifier.approvalDecided(decided);
  return decided;
}
