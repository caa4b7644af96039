/**
 * `bakery approve` / `reject` with `--backend aws`: the approver is the caller's identity as
 * STS verifies it (GetCallerIdentity), checked against `approval.approvers`, which may name IAM
 * principals beside Slack member ids; `--by` cannot name someone else. Locally `--by` stays,
 * recorded as self-asserted. AWS mocked with aws-sdk-client-mock.
 */
import { SendTaskFailureCommand, SendTaskSuccessCommand } from '@aws-sdk/client-sfn';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { documentClient, sfnClient } from '../../src/adapters/aws/clients.ts';
import { approvalKey, bakeApprovalKey } from '../../src/adapters/aws/dynamo.ts';
import { stsClient } from '../../src/adapters/aws/identity.ts';
import { SlackNotifier } from '../../src/adapters/aws/slack.ts';
import { ExitCodes } from '../../src/cli/program.ts';
import { approverMatches } from '../../src/cores/approval.ts';
import type { ApprovalDecision, ApprovalRecord } from '../../src/ports/approval.ts';
import { approvalRecord, FAKE_CREDENTIALS, TASK_TOKEN } from '../adapters/aws/fixtures.ts';
import { runCli } from '../helpers/cli.ts';

const sts = mockClient(stsClient);
const dynamo = mockClient(documentClient);
const sfn = mockClient(sfnClient);

const ACCOUNT = '123456789012';
const SESSION = `arn:aws:sts::${ACCOUNT}:assumed-role/BakeryApprover/ana`;
const env = { BAKERY_BACKEND: 'aws', TABLE_NAME: 'bakery', ARTEFACTS_BUCKET: 'artefacts', AWS_REGION: 'eu-west-1', ...FAKE_CREDENTIALS };

/** The approval in the table, pending, with `approvers`; UpdateItem records the decision it is sent. */
function pendingApproval(approvers: string[]): ApprovalRecord {
  const record = approvalRecord({ approvers, expiresAt: '2099-01-01T00:00:00.000Z' });
  dynamo.on(GetCommand).callsFake((input: { Key: { pk: string } }) => {
    if (input.Key.pk === bakeApprovalKey(record.bakeId).pk) return { Item: { ...bakeApprovalKey(record.bakeId), approvalId: record.id } };
    if (input.Key.pk === approvalKey(record.id).pk) return { Item: { ...approvalKey(record.id), ...record, decision: undefined } };
    return {};
  });
  dynamo.on(UpdateCommand).callsFake((input: { ExpressionAttributeValues: { ':d': ApprovalDecision } }) => ({
    Attributes: { ...approvalKey(record.id), ...record, decision: input.ExpressionAttributeValues[':d'] },
  }));
  return record;
}

/** The decision the CLI wrote (the conditional UpdateItem), if any. */
const written = (): ApprovalDecision | undefined =>
  (dynamo.commandCalls(UpdateCommand)[0]?.args[0].input.ExpressionAttributeValues as { ':d': ApprovalDecision } | undefined)?.[':d'];

beforeEach(() => {
  sfn.on(SendTaskSuccessCommand).resolves({}).on(SendTaskFailureCommand).resolves({});
  // The Slack message update is not what these tests are about (and would need the network).
  vi.spyOn(SlackNotifier.prototype, 'approvalDecided').mockResolvedValue();
});

afterEach(() => {
  sts.reset();
  dynamo.reset();
  sfn.reset();
  vi.restoreAllMocks();
});

describe('bakery approve --backend aws', () => {
  it('records the caller ARN STS verified, matched to an approver role by its assumed-role session, and resumes the bake', async () => {
    // Prepare
    sts.on(GetCallerIdentityCommand).resolves({ Arn: SESSION, Account: ACCOUNT, UserId: 'AROAEXAMPLE:ana' });
    const record = pendingApproval(['U024BE7LH', `arn:aws:iam::${ACCOUNT}:role/approvers/BakeryApprover`]);

    // Act
    const result = await runCli(['approve', record.bakeId], env);

    // Assess
    expect(result.code, result.stderr).toBe(ExitCodes.Success);
    expect(result.stdout).toContain(`bake ${record.bakeId}: approved by ${SESSION} (verified by AWS STS)`);
    expect(written()).toMatchObject({ outcome: 'approved', by: SESSION, identity: 'aws-sts' });
    expect(sfn).toHaveReceivedCommandWith(SendTaskSuccessCommand, { taskToken: TASK_TOKEN });
    expect(JSON.parse(sfn.commandCalls(SendTaskSuccessCommand)[0]?.args[0].input.output ?? '{}')).toMatchObject({ by: SESSION });
  });

  it('refuses a caller no approver names, writing and resuming nothing', async () => {
    sts.on(GetCallerIdentityCommand).resolves({ Arn: `arn:aws:sts::${ACCOUNT}:assumed-role/Developer/ana` });
    const record = pendingApproval(['U024BE7LH', `arn:aws:iam::${ACCOUNT}:role/BakeryApprover`]);

    const result = await runCli(['approve', record.bakeId], env);

    expect(result.code).toBe(ExitCodes.BadInput);
    expect(result.stderr).toContain(
      `NotAnApproverError: arn:aws:sts::${ACCOUNT}:assumed-role/Developer/ana may not decide bake ${record.bakeId}`,
    );
    expect(dynamo).not.toHaveReceivedCommand(UpdateCommand);
    expect(sfn).not.toHaveReceivedCommand(SendTaskSuccessCommand);
  });

  it('does not take --by as someone else (an approver name typed is not an identity)', async () => {
    sts.on(GetCallerIdentityCommand).resolves({ Arn: `arn:aws:iam::${ACCOUNT}:user/mallory` });
    const record = pendingApproval(['U024BE7LH']);

    const result = await runCli(['reject', record.bakeId, '--by', 'U024BE7LH'], env);

    expect(result.code).toBe(ExitCodes.BadInput);
    expect(result.stderr).toContain(
      `--by U024BE7LH is not taken with --backend aws: the decision is recorded as your AWS identity, arn:aws:iam::${ACCOUNT}:user/mallory`,
    );
    expect(dynamo).not.toHaveReceivedCommand(UpdateCommand);
    expect(sfn).not.toHaveReceivedCommand(SendTaskFailureCommand);
  });

  it('records a rejection by an IAM user named exactly', async () => {
    sts.on(GetCallerIdentityCommand).resolves({ Arn: `arn:aws:iam::${ACCOUNT}:user/ana` });
    const record = pendingApproval([`arn:aws:iam::${ACCOUNT}:user/ana`]);

    const result = await runCli(['reject', record.bakeId, '--reason', 'not today'], env);

    expect(result.code).toBe(ExitCodes.Success);
    expect(written()).toMatchObject({
      outcome: 'rejected',
      by: `arn:aws:iam::${ACCOUNT}:user/ana`,
      identity: 'aws-sts',
      reason: 'not today',
    });
    expect(sfn).toHaveReceivedCommandWith(SendTaskFailureCommand, { taskToken: TASK_TOKEN, error: 'ApprovalRejectedError' });
  });
});

describe('approverMatches', () => {
  it.each([
    ['U024BE7LH', 'U024BE7LH', true],
    [`arn:aws:iam::${ACCOUNT}:user/ana`, `arn:aws:iam::${ACCOUNT}:user/ana`, true],
    [`arn:aws:iam::${ACCOUNT}:role/BakeryApprover`, SESSION, true],
    [`arn:aws:iam::${ACCOUNT}:role/team/BakeryApprover`, SESSION, true],
    [`arn:aws:sts::${ACCOUNT}:assumed-role/BakeryApprover`, SESSION, true],
    [SESSION, SESSION, true],
    [`arn:aws:sts::${ACCOUNT}:assumed-role/BakeryApprover/bob`, SESSION, false],
    [`arn:aws:iam::210987654321:role/BakeryApprover`, SESSION, false],
    [`arn:aws:iam::${ACCOUNT}:role/BakeryApproverX`, SESSION, false],
    [`arn:aws-cn:iam::${ACCOUNT}:role/BakeryApprover`, SESSION, false],
    [`arn:aws:iam::${ACCOUNT}:role/BakeryApprover`, `arn:aws:iam::${ACCOUNT}:user/BakeryApprover`, false],
    [`arn:aws:iam::${ACCOUNT}:role/BakeryApprover`, 'BakeryApprover', false],
  ])('%s names %s: %s', (approver, by, expected) => {
    expect(approverMatches(approver, by)).toBe(expected);
  });
});
