import { randomBytes } from 'node:crypto';
import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { AlreadyDecidedError, BakeryError, NotFoundError } from '../../errors.ts';
import type { ApprovalDecision, ApprovalMessage, ApprovalRecord, ApprovalStore } from '../../ports/approval.ts';
import { parseLedgerEntry } from '../../ports/ledger-entry.ts';
import { type BakeEndEntry, type BakeEndType, isBakeEnd, type Ledger, type LedgerEntry } from '../../ports/storage.ts';
import { documentClient } from './clients.ts';
import { resolveSetting, type Setting } from './config.ts';
import { callAws, hasName } from './errors.ts';

/**
 * One table for everything (keys `pk`/`sk`):
 *   APPROVAL#<id>      / APPROVAL  the approval record (and its decision, written once)
 *   BAKE#<bakeId>      / APPROVAL  pointer from a bake to its approval
 *   LEDGER             / <at>#<bakeId>#<rand>  ledger entries, in time order
 *   BAKE#<bakeId>      / LEDGER#<type>  how the bake ended (released, failed): the entry and its LEDGER key, written once
 *   IMAGEBUILD#<arn>   / TOKEN     task token of a running image build (image-builder.ts)
 */
export const approvalKey = (id: string) => ({ pk: `APPROVAL#${id}`, sk: 'APPROVAL' });
export const bakeApprovalKey = (bakeId: string) => ({ pk: `BAKE#${bakeId}`, sk: 'APPROVAL' });
export const LEDGER_PK = 'LEDGER';
export const bakeEndKey = (bakeId: string, type: BakeEndType) => ({ pk: `BAKE#${bakeId}`, sk: `LEDGER#${type}` });

const APPROVAL_ID = /^[A-Za-z0-9_-]+$/;

type ApprovalItem = Omit<ApprovalRecord, 'decision' | 'message'> & {
  pk: string;
  sk: string;
  decision?: ApprovalDecision;
  message?: ApprovalMessage | null;
};

function toRecord(item: Record<string, unknown>): ApprovalRecord {
  const { pk: _pk, sk: _sk, decision, message, ...rest } = item as ApprovalItem;
  return { ...rest, message: message ?? null, decision: decision ?? null };
}

/**
 * Approvals in DynamoDB. The decision is a conditional update that succeeds once: a
 * second or concurrent decision fails on the condition and changes nothing. A retried
 * request's new token is a conditional update too, allowed only while undecided.
 */
export class DynamoApprovalStore implements ApprovalStore {
  private readonly db: DynamoDBDocumentClient;
  private readonly table: Setting;

  constructor(options: { table: Setting; client?: DynamoDBDocumentClient }) {
    this.db = options.client ?? documentClient;
    this.table = options.table;
  }

  async create(record: ApprovalRecord): Promise<void> {
    const table = resolveSetting(this.table);
    // No `decision` attribute at all until someone decides: the decide condition tests for it.
    // `message` is set once the request is posted (setMessage).
    const { decision: _decision, message: _message, ...fields } = record;
    try {
      await callAws(`TransactWriteItems approval ${record.id}`, () =>
        this.db.send(
          new TransactWriteCommand({
            TransactItems: [
              {
                Put: { TableName: table, Item: { ...approvalKey(record.id), ...fields }, ConditionExpression: 'attribute_not_exists(pk)' },
              },
              {
                Put: {
                  TableName: table,
                  Item: { ...bakeApprovalKey(record.bakeId), approvalId: record.id, createdAt: record.createdAt },
                  ConditionExpression: 'attribute_not_exists(pk)',
                },
              },
            ],
          }),
        ),
      );
    } catch (error) {
      if (hasName(error, 'TransactionCanceledException')) {
        const reasons = (error as { CancellationReasons?: Array<{ Code?: string }> }).CancellationReasons ?? [];
        if (reasons.some((r) => r.Code === 'ConditionalCheckFailed')) {
          throw new BakeryError(
            reasons[0]?.Code === 'ConditionalCheckFailed'
              ? `approval ${record.id} exists already`
              : `bake ${record.bakeId} already has an approval; a bake is approved once`,
            { cause: error },
          );
        }
      }
      throw error;
    }
  }

  async get(id: string): Promise<ApprovalRecord | undefined> {
    if (!APPROVAL_ID.test(id)) return undefined;
    const out = await callAws(`GetItem approval ${id}`, () =>
      this.db.send(new GetCommand({ TableName: resolveSetting(this.table), Key: approvalKey(id), ConsistentRead: true })),
    );
    return out.Item ? toRecord(out.Item) : undefined;
  }

  async findByBake(bakeId: string): Promise<ApprovalRecord | undefined> {
    const out = await callAws(`GetItem approval of bake ${bakeId}`, () =>
      this.db.send(new GetCommand({ TableName: resolveSetting(this.table), Key: bakeApprovalKey(bakeId), ConsistentRead: true })),
    );
    const approvalId = out.Item?.approvalId;
    return typeof approvalId === 'string' ? this.get(approvalId) : undefined;
  }

  async renew(id: string, update: { taskToken: string; expiresAt: string }): Promise<ApprovalRecord> {
    try {
      const out = await callAws(`UpdateItem approval ${id} (renew)`, () =>
        this.db.send(
          new UpdateCommand({
            TableName: resolveSetting(this.table),
            Key: approvalKey(id),
            UpdateExpression: 'SET taskToken = :t, expiresAt = :e',
            ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(#decision)',
            ExpressionAttributeNames: { '#decision': 'decision' },
            ExpressionAttributeValues: { ':t': update.taskToken, ':e': update.expiresAt },
            ReturnValues: 'ALL_NEW',
          }),
        ),
      );
      if (!out.Attributes) throw new BakeryError(`UpdateItem approval ${id} returned no attributes`);
      return toRecord(out.Attributes);
    } catch (error) {
      if (!hasName(error, 'ConditionalCheckFailedException')) throw error;
      throw await this.conditionFailed(id, error);
    }
  }

  async setMessage(id: string, message: ApprovalMessage): Promise<void> {
    try {
      await callAws(`UpdateItem approval ${id} (message)`, () =>
        this.db.send(
          new UpdateCommand({
            TableName: resolveSetting(this.table),
            Key: approvalKey(id),
            UpdateExpression: 'SET #message = :m',
            ConditionExpression: 'attribute_exists(pk)',
            ExpressionAttributeNames: { '#message': 'message' },
            ExpressionAttributeValues: { ':m': message },
          }),
        ),
      );
    } catch (error) {
      if (!hasName(error, 'ConditionalCheckFailedException')) throw error;
      throw new NotFoundError(`no approval ${id}`, { cause: error });
    }
  }

  async decide(id: string, decision: ApprovalDecision): Promise<ApprovalRecord> {
    try {
      const out = await callAws(`UpdateItem approval ${id}`, () =>
        this.db.send(
          new UpdateCommand({
            TableName: resolveSetting(this.table),
            Key: approvalKey(id),
            UpdateExpression: 'SET #decision = :d',
            ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(#decision)',
            ExpressionAttributeNames: { '#decision': 'decision' },
            ExpressionAttributeValues: { ':d': decision },
            ReturnValues: 'ALL_NEW',
          }),
        ),
      );
      if (!out.Attributes) throw new BakeryError(`UpdateItem approval ${id} returned no attributes`);
      return toRecord(out.Attributes);
    } catch (error) {
      if (!hasName(error, 'ConditionalCheckFailedException')) throw error;
      throw await this.conditionFailed(id, error);
    }
  }

  /** Why a conditional update on an approval failed: it does not exist, or it is decided. */
  private async conditionFailed(id: string, cause: unknown): Promise<Error> {
    const record = await this.get(id);
    if (!record) return new NotFoundError(`no approval ${id}`, { cause });
    const d = record.decision;
    return new AlreadyDecidedError(
      `approval ${id} (bake ${record.bakeId}) was already ${d?.outcome ?? 'decided'}${d ? ` by ${d.by} at ${d.at}` : ''}`,
      { cause },
    );
  }
}

/**
 * The append-only ledger in DynamoDB: one item per entry under a single partition, sorted
 * by time. Every put is conditional on the key being new, so an entry is never replaced.
 * (One partition is plenty for a release log: a handful of writes per bake.)
 *
 * A bake's end is written once: first a claim under the bake's own key (a conditional
 * put holding the entry and the ledger key it gets), then the ledger item. A retry, or
 * a second recorder, loses the claim, reads it, and completes the same ledger item if a
 * crash left it unwritten; so the ledger holds exactly one entry per bake end. Only
 * PutItem and GetItem: no transaction, and nothing the record tasks could not do before.
 */
export class DynamoLedger implements Ledger {
  private readonly db: DynamoDBDocumentClient;
  private readonly table: Setting;

  constructor(options: { table: Setting; client?: DynamoDBDocumentClient }) {
    this.db = options.client ?? documentClient;
    this.table = options.table;
  }

  async append(entry: LedgerEntry): Promise<void> {
    const table = resolveSetting(this.table);
    // The random suffix keeps two entries of the same bake in the same millisecond apart.
    let sk = `${entry.at}#${entry.bakeId ?? 'none'}#${randomBytes(4).toString('hex')}`;
    let item: LedgerEntry = entry;
    if (isBakeEnd(entry)) {
      const claimed = await this.claim(table, entry, sk);
      sk = claimed.ledgerSk;
      item = claimed.entry;
    }
    try {
      await callAws('PutItem ledger entry', () =>
        this.db.send(
          new PutCommand({
            TableName: table,
            Item: { pk: LEDGER_PK, sk, type: item.type, entry: item },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        ),
      );
    } catch (error) {
      // Only a claimed bake end is written twice under one key: by an earlier attempt, and that is the one entry.
      if (!(isBakeEnd(item) && hasName(error, 'ConditionalCheckFailedException'))) throw error;
    }
  }

  /** Claim the bake's end for `entry` under `ledgerSk`, or find the claim an earlier attempt made. */
  private async claim(table: string, entry: BakeEndEntry & { bakeId: string }, ledgerSk: string) {
    try {
      await callAws(`PutItem ledger claim of bake ${entry.bakeId}`, () =>
        this.db.send(
          new PutCommand({
            TableName: table,
            Item: { ...bakeEndKey(entry.bakeId, entry.type), ledgerSk, entry },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        ),
      );
      return { ledgerSk, entry: entry as BakeEndEntry };
    } catch (error) {
      if (!hasName(error, 'ConditionalCheckFailedException')) throw error;
      const found = await this.claimOf(table, entry.bakeId, entry.type);
      if (!found)
        throw new BakeryError(`the ledger claim of bake ${entry.bakeId} (${entry.type}) exists but cannot be read`, { cause: error });
      return found;
    }
  }

  private async claimOf(table: string, bakeId: string, type: BakeEndType) {
    const out = await callAws(`GetItem ledger claim of bake ${bakeId}`, () =>
      this.db.send(new GetCommand({ TableName: table, Key: bakeEndKey(bakeId, type), ConsistentRead: true })),
    );
    const item = out.Item as { ledgerSk?: unknown; entry?: BakeEndEntry } | undefined;
    return item && typeof item.ledgerSk === 'string' && item.entry ? { ledgerSk: item.ledgerSk, entry: item.entry } : undefined;
  }

  async endOf(bakeId: string, type: BakeEndType): Promise<BakeEndEntry | undefined> {
    return (await this.claimOf(resolveSetting(this.table), bakeId, type))?.entry;
  }

  async list(): Promise<LedgerEntry[]> {
    const table = resolveSetting(this.table);
    const entries: LedgerEntry[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await callAws('Query ledger', () =>
        this.db.send(
          new QueryCommand({
            TableName: table,
            KeyConditionExpression: 'pk = :pk',
            ExpressionAttributeValues: { ':pk': LEDGER_PK },
            ScanIndexForward: true,
            ConsistentRead: true,
            ...(start ? { ExclusiveStartKey: start } : {}),
          }),
        ),
      );
      for (const item of page.Items ?? []) {
        entries.push(
          parseLedgerEntry(
            item.entry,
            `ledger item ${String(item.pk)}/${String(item.sk)} of table ${table}`,
            'Restore the item from a backup (point-in-time recovery) or delete it.',
          ),
        );
      }
      start = page.LastEvaluatedKey;
    } while (start);
    return entries;
  }
}
