import { ConditionalCheckFailedException, DynamoDBClient, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DynamoApprovalStore, DynamoLedger } from '../../../src/adapters/aws/dynamo.ts';
import { AlreadyDecidedError, NotFoundError, TransientBackendError } from '../../../src/errors.ts';
import type { ApprovalDecision } from '../../../src/ports/approval.ts';
import type { LedgerEntry } from '../../../src/ports/storage.ts';
import { approvalRecord, awsError } from './fixtures.ts';

const client = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'eu-west-1' }));
const db = mockClient(client);

const TABLE = 'bakery';
const RECORD = approvalRecord();
const { decision: _none, message: _notYet, ...STORED } = RECORD;
const ITEM = { pk: `APPROVAL#${RECORD.id}`, sk: 'APPROVAL', ...STORED };
const DECISION: ApprovalDecision = { outcome: 'approved', by: 'U024BE7LH', at: '2026-11-22T08:00:00.000Z', reason: null };
const conditionFailed = () =>
  new ConditionalCheckFailedException({ $metadata: { httpStatusCode: 400 }, message: 'The conditional request failed' });

describe('DynamoApprovalStore', () => {
  let store: DynamoApprovalStore;

  beforeEach(() => {
    store = new DynamoApprovalStore({ table: TABLE, client });
  });

  afterEach(() => {
    db.reset();
  });

  it('creates the record and the bake pointer in one transaction, both only if new', async () => {
    // Prepare
    db.on(TransactWriteCommand).resolves({});

    // Act
    await store.create(RECORD);

    // Assess
    expect(db).toHaveReceivedCommandWith(TransactWriteCommand, {
      TransactItems: [
        { Put: { TableName: TABLE, Item: ITEM, ConditionExpression: 'attribute_not_exists(pk)' } },
        {
          Put: {
            TableName: TABLE,
            Item: { pk: `BAKE#${RECORD.bakeId}`, sk: 'APPROVAL', approvalId: RECORD.id, createdAt: RECORD.createdAt },
            ConditionExpression: 'attribute_not_exists(pk)',
          },
        },
      ],
    });
    // No decision attribute at all: the decide condition tests for its absence.
    const item = db.commandCalls(TransactWriteCommand)[0]?.args[0].input.TransactItems?.[0]?.Put?.Item;
    expect(item).not.toHaveProperty('decision');
  });

  it('names a bake that already has an approval', async () => {
    db.on(TransactWriteCommand).rejects(
      new TransactionCanceledException({
        $metadata: { httpStatusCode: 400 },
        message: 'Transaction cancelled',
        CancellationReasons: [{ Code: 'None' }, { Code: 'ConditionalCheckFailed' }],
      }),
    );

    await expect(store.create(RECORD)).rejects.toThrow(`bake ${RECORD.bakeId} already has an approval`);
  });

  it('gets a record (decision null until decided), undefined when absent', async () => {
    // Prepare
    db.on(GetCommand, { Key: { pk: `APPROVAL#${RECORD.id}`, sk: 'APPROVAL' } })
      .resolves({ Item: ITEM })
      .on(GetCommand, { Key: { pk: 'APPROVAL#apr-none', sk: 'APPROVAL' } })
      .resolves({});

    // Act + Assess
    await expect(store.get(RECORD.id)).resolves.toEqual(RECORD);
    await expect(store.get('apr-none')).resolves.toBeUndefined();
    await expect(store.get('APPROVAL#../x')).resolves.toBeUndefined();
    expect(db).toHaveReceivedCommandWith(GetCommand, { TableName: TABLE, ConsistentRead: true });
    expect(db).toHaveReceivedCommandTimes(GetCommand, 2);
  });

  it('finds the approval of a bake through its pointer', async () => {
    db.on(GetCommand, { Key: { pk: `BAKE#${RECORD.bakeId}`, sk: 'APPROVAL' } })
      .resolves({ Item: { approvalId: RECORD.id } })
      .on(GetCommand, { Key: { pk: `APPROVAL#${RECORD.id}`, sk: 'APPROVAL' } })
      .resolves({ Item: ITEM });

    await expect(store.findByBake(RECORD.bakeId)).resolves.toEqual(RECORD);
  });

  it('decides once with a conditional update and returns the decided record', async () => {
    // Prepare
    db.on(UpdateCommand).resolves({ Attributes: { ...ITEM, decision: DECISION } });

    // Act
    const decided = await store.decide(RECORD.id, DECISION);

    // Assess
    expect(decided).toEqual({ ...RECORD, decision: DECISION });
    expect(db).toHaveReceivedCommandWith(UpdateCommand, {
      TableName: TABLE,
      Key: { pk: `APPROVAL#${RECORD.id}`, sk: 'APPROVAL' },
      UpdateExpression: 'SET #decision = :d',
      ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(#decision)',
      ExpressionAttributeNames: { '#decision': 'decision' },
      ExpressionAttributeValues: { ':d': DECISION },
    });
  });

  it('turns a failed condition on a decided record into AlreadyDecidedError naming who decided', async () => {
    // Prepare
    const earlier: ApprovalDecision = { outcome: 'rejected', by: 'U999', at: '2026-11-22T07:45:00.000Z', reason: 'no' };
    db.on(UpdateCommand).rejects(conditionFailed());
    db.on(GetCommand).resolves({ Item: { ...ITEM, decision: earlier } });

    // Act
    const decide = store.decide(RECORD.id, DECISION);

    // Assess
    await expect(decide).rejects.toThrow(AlreadyDecidedError);
    await expect(decide).rejects.toThrow(
      `approval ${RECORD.id} (bake ${RECORD.bakeId}) was already rejected by U999 at 2026-11-22T07:45:00.000Z`,
    );
  });

  it('turns a failed condition on a missing record into NotFoundError', async () => {
    db.on(UpdateCommand).rejects(conditionFailed());
    db.on(GetCommand).resolves({});

    await expect(store.decide('apr-none', DECISION)).rejects.toThrow(NotFoundError);
  });

  it('reads a stored message location back, and null for a record stored before it was posted', async () => {
    const message = { channel: 'C0RELEASES', ts: '1732262400.000100' };
    db.on(GetCommand).resolves({ Item: { ...ITEM, message } });

    await expect(store.get(RECORD.id)).resolves.toEqual({ ...RECORD, message });
  });

  it('hands a retried request the new token and expiry only while undecided', async () => {
    // Prepare
    const update = { taskToken: 'token-of-attempt-2', expiresAt: '2026-11-23T08:00:00.000Z' };
    db.on(UpdateCommand).resolves({ Attributes: { ...ITEM, ...update } });

    // Act
    const renewed = await store.renew(RECORD.id, update);

    // Assess
    expect(renewed).toEqual({ ...RECORD, ...update });
    expect(db).toHaveReceivedCommandWith(UpdateCommand, {
      TableName: TABLE,
      Key: { pk: `APPROVAL#${RECORD.id}`, sk: 'APPROVAL' },
      UpdateExpression: 'SET taskToken = :t, expiresAt = :e',
      ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(#decision)',
      ExpressionAttributeNames: { '#decision': 'decision' },
      ExpressionAttributeValues: { ':t': update.taskToken, ':e': update.expiresAt },
      ReturnValues: 'ALL_NEW',
    });
  });

  it('refuses to renew a decided approval, naming the decision', async () => {
    db.on(UpdateCommand).rejects(conditionFailed());
    db.on(GetCommand).resolves({ Item: { ...ITEM, decision: DECISION } });

    await expect(store.renew(RECORD.id, { taskToken: 't', expiresAt: 'e' })).rejects.toThrow(
      new AlreadyDecidedError(
        `approval ${RECORD.id} (bake ${RECORD.bakeId}) was already approved by U024BE7LH at 2026-11-22T08:00:00.000Z`,
      ),
    );
  });

  it('stores where the request was posted, on an existing record only', async () => {
    // Prepare
    const message = { channel: 'C0RELEASES', ts: '1732262400.000100' };
    db.on(UpdateCommand, { Key: { pk: `APPROVAL#${RECORD.id}`, sk: 'APPROVAL' } })
      .resolves({})
      .on(UpdateCommand, { Key: { pk: 'APPROVAL#apr-none', sk: 'APPROVAL' } })
      .rejects(conditionFailed());

    // Act
    await store.setMessage(RECORD.id, message);

    // Assess
    expect(db).toHaveReceivedCommandWith(UpdateCommand, {
      TableName: TABLE,
      Key: { pk: `APPROVAL#${RECORD.id}`, sk: 'APPROVAL' },
      UpdateExpression: 'SET #message = :m',
      ConditionExpression: 'attribute_exists(pk)',
      ExpressionAttributeNames: { '#message': 'message' },
      ExpressionAttributeValues: { ':m': message },
    });
    await expect(store.setMessage('apr-none', message)).rejects.toThrow(NotFoundError);
  });
});

describe('DynamoLedger', () => {
  let ledger: DynamoLedger;
  const released: LedgerEntry = {
    type: 'released',
    bakeId: 'hello-1',
    at: '2026-11-22T08:00:00.000Z',
    trigger: { type: 'cli', user: 'ana' },
    layer: { arn: 'arn:aws:lambda:eu-west-1:123456789012:layer:node22-runtime:4', version: 4, codeSha256: 'c=' },
    functions: [{ name: 'hello', alias: 'live', from: '6', to: '7', changed: true }],
    manifest: { uri: 's3://bakery-artefacts/manifests/hello-1.json', sha256Hex: 'a'.repeat(64), size: 10 },
  };
  const failed: LedgerEntry = {
    type: 'failed',
    bakeId: null,
    at: '2026-11-22T09:00:00.000Z',
    state: 'ResolveBake',
    error: 'BakeSpecError',
    cause: 'bad',
    manifest: null,
  };

  beforeEach(() => {
    ledger = new DynamoLedger({ table: TABLE, client });
  });

  afterEach(() => {
    db.reset();
  });

  it('appends an entry under a new time-ordered key, never overwriting; a bake end after claiming it under the bake', async () => {
    // Prepare
    db.on(PutCommand).resolves({});

    // Act
    await ledger.append(released);
    await ledger.append(failed);

    // Assess: the claim of hello-1's release, its ledger item, then the failure without a bake id (nothing to claim).
    const items = db.commandCalls(PutCommand).map((c) => c.args[0].input);
    expect(items).toHaveLength(3);
    expect(items[0]).toMatchObject({
      TableName: TABLE,
      ConditionExpression: 'attribute_not_exists(pk)',
      Item: { pk: 'BAKE#hello-1', sk: 'LEDGER#released', entry: released },
    });
    expect(items[1]).toMatchObject({
      TableName: TABLE,
      ConditionExpression: 'attribute_not_exists(pk)',
      Item: { pk: 'LEDGER', entry: released },
    });
    expect(items[1]?.Item?.sk).toMatch(/^2026-11-22T08:00:00\.000Z#hello-1#[0-9a-f]{8}$/);
    expect(items[0]?.Item?.ledgerSk).toBe(items[1]?.Item?.sk);
    expect(items[2]?.Item?.sk).toMatch(/^2026-11-22T09:00:00\.000Z#none#[0-9a-f]{8}$/);
  });

  it('appends a retried bake end nothing new: it finds the claim and completes the same ledger item', async () => {
    // Prepare: a table as DynamoDB keeps it, conditional puts included.
    const table = new Map<string, Record<string, unknown>>();
    const keyOf = (item: Record<string, unknown>) => `${item.pk}\0${item.sk}`;
    db.on(PutCommand).callsFake((input: { Item: Record<string, unknown> }) => {
      if (table.has(keyOf(input.Item))) throw conditionFailed();
      table.set(keyOf(input.Item), structuredClone(input.Item));
      return {};
    });
    db.on(GetCommand).callsFake((input: { Key: Record<string, unknown> }) => ({ Item: table.get(keyOf(input.Key)) }));
    // The first attempt claims the bake's end, then dies before its ledger item is written.
    let crash = true;
    const first = db.on(PutCommand, { Item: { pk: 'LEDGER' } });
    first.callsFake((input: { Item: Record<string, unknown> }) => {
      if (crash) {
        crash = false;
        throw awsError('ServiceUnavailable', 503);
      }
      if (table.has(keyOf(input.Item))) throw conditionFailed();
      table.set(keyOf(input.Item), structuredClone(input.Item));
      return {};
    });

    // Act: the failed attempt, its retry (a later `at`), and one more retry.
    await expect(ledger.append(released)).rejects.toBeInstanceOf(TransientBackendError);
    await ledger.append({ ...released, at: '2026-11-22T08:00:05.000Z' });
    await ledger.append({ ...released, at: '2026-11-22T08:00:09.000Z' });

    // Assess: one claim, one ledger item, the first attempt's entry.
    const ledgerItems = [...table.values()].filter((i) => i.pk === 'LEDGER');
    expect(ledgerItems).toHaveLength(1);
    expect(ledgerItems[0]?.entry).toEqual(released);
    expect(await ledger.endOf('hello-1', 'released')).toEqual(released);
    expect(await ledger.endOf('hello-1', 'failed')).toBeUndefined();
  });

  it('lists every page in order', async () => {
    // Prepare
    db.on(QueryCommand)
      .resolvesOnce({ Items: [{ pk: 'LEDGER', sk: 'a', entry: released }], LastEvaluatedKey: { pk: 'LEDGER', sk: 'a' } })
      .resolvesOnce({ Items: [{ pk: 'LEDGER', sk: 'b', entry: failed }] });

    // Act
    const entries = await ledger.list();

    // Assess
    expect(entries).toEqual([released, failed]);
    expect(db).toHaveReceivedNthCommandWith(QueryCommand, 1, {
      TableName: TABLE,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': 'LEDGER' },
      ScanIndexForward: true,
    });
    expect(db).toHaveReceivedNthCommandWith(QueryCommand, 2, { ExclusiveStartKey: { pk: 'LEDGER', sk: 'a' } });
  });

  it('turns throttling into TransientBackendError', async () => {
    db.on(PutCommand).rejects(awsError('ProvisionedThroughputExceededException'));

    await expect(ledger.append(released)).rejects.toBeInstanceOf(TransientBackendError);
  });
});
