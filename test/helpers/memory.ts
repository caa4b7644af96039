/**
 * In-memory fakes of the ports, for testing cores without AWS or the local backend.
 * Each records the calls a test wants to assert on; none touches the network.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { AliasConflictError, AlreadyDecidedError, NotFoundError } from '../../src/errors.ts';
import type {
  AliasInfo,
  ApprovalDecision,
  ApprovalMessage,
  ApprovalRecord,
  ApprovalStore,
  ArtefactRef,
  ArtefactStore,
  Clock,
  FunctionInvoker,
  FunctionRegistry,
  FunctionVersionInfo,
  FunctionVersionInput,
  IdSource,
  InvokeOutcome,
  InvokeSession,
  Json,
  LayerPublishInput,
  LayerRegistry,
  LayerVersionInfo,
  Ledger,
  LedgerEntry,
  Notifier,
  TaskCallbacks,
} from '../../src/ports.ts';

const sha256 = (data: string | Uint8Array) => createHash('sha256').update(data).digest();

/** Artefacts in a map; files are read when put (their bytes are what counts), trees are served from disk. */
export class MemoryArtefactStore implements ArtefactStore {
  readonly json = new Map<string, unknown>();
  readonly files = new Map<string, string>();

  async putFile(key: string, file: string): Promise<ArtefactRef> {
    const bytes = await readFile(file);
    this.files.set(key, file);
    return { uri: `mem://${key}`, sha256Hex: sha256(bytes).toString('hex'), size: bytes.length };
  }

  async putJson(key: string, value: unknown): Promise<ArtefactRef> {
    const text = JSON.stringify(value);
    this.json.set(key, JSON.parse(text));
    return { uri: `mem://${key}`, sha256Hex: sha256(text).toString('hex'), size: Buffer.byteLength(text) };
  }

  async getJson<T>(key: string): Promise<T | undefined> {
    return this.json.get(key) as T | undefined;
  }

  async fetchFile(ref: ArtefactRef): Promise<string> {
    const file = this.files.get(ref.uri.replace(/^mem:\/\//, ''));
    if (file) return file;
    if (ref.uri.startsWith('file:')) return fileURLToPath(ref.uri);
    throw new NotFoundError(`no artefact ${ref.uri}`);
  }

  async fetchTree(ref: ArtefactRef): Promise<string> {
    return fileURLToPath(ref.uri);
  }
}

/** Layer versions in a list; `storedCodeSha256` lets a test make "Lambda" report other bytes. */
export class MemoryLayerRegistry implements LayerRegistry {
  readonly versions: LayerVersionInfo[] = [];
  readonly published: LayerPublishInput[] = [];
  storedCodeSha256: ((input: LayerPublishInput) => string) | undefined;

  async findByCodeSha256(name: string, codeSha256: string): Promise<LayerVersionInfo | undefined> {
    return this.versions.find((v) => v.name === name && v.codeSha256 === codeSha256);
  }

  async publish(input: LayerPublishInput): Promise<LayerVersionInfo> {
    this.published.push(input);
    const version = this.versions.filter((v) => v.name === input.name).length + 1;
    const bytes = await readFile(input.zipFile);
    const info: LayerVersionInfo = {
      name: input.name,
      arn: `arn:aws:lambda:test:000000000000:layer:${input.name}:${version}`,
      version,
      codeSha256: this.storedCodeSha256 ? this.storedCodeSha256(input) : sha256(bytes).toString('base64'),
      size: bytes.length,
    };
    this.versions.push(info);
    return info;
  }

  async get(arn: string): Promise<LayerVersionInfo | undefined> {
    return this.versions.find((v) => v.arn === arn);
  }
}

/**
 * Function versions and aliases with compare-and-swap revisions. `beforeSetAlias` runs
 * before each move (a test throws from it, or moves the alias concurrently).
 */
export class MemoryFunctionRegistry implements FunctionRegistry {
  readonly versions: FunctionVersionInfo[] = [];
  readonly published: FunctionVersionInput[] = [];
  readonly aliases = new Map<string, AliasInfo>();
  readonly setAliasCalls: Array<{ name: string; alias: string; version: string; expectedRevisionId: string | null }> = [];
  storedCodeSha256: ((input: FunctionVersionInput) => string) | undefined;
  storedLayers: ((input: FunctionVersionInput) => string[]) | undefined;
  beforeSetAlias: ((name: string, alias: string, version: string) => void) | undefined;
  private revision = 0;

  async publishVersion(input: FunctionVersionInput): Promise<FunctionVersionInfo> {
    this.published.push(input);
    const info: FunctionVersionInfo = {
      name: input.name,
      version: String(this.versions.filter((v) => v.name === input.name).length + 1),
      codeSha256: this.storedCodeSha256 ? this.storedCodeSha256(input) : input.codeSha256,
      handler: input.handler,
      runtime: input.runtime,
      layers: this.storedLayers ? this.storedLayers(input) : input.layers,
      environment: input.environment,
    };
    this.versions.push(info);
    return info;
  }

  async getVersion(name: string, version: string): Promise<FunctionVersionInfo | undefined> {
    return this.versions.find((v) => v.name === name && v.version === version);
  }

  async getAlias(name: string, alias: string): Promise<AliasInfo | undefined> {
    const found = this.aliases.get(`${name}:${alias}`);
    return found ? { ...found } : undefined;
  }

  /** Put an alias in place directly (arranging a previous release). */
  seedAlias(name: string, alias: string, version: string): AliasInfo {
    const info = { name, alias, version, revisionId: `rev-${++this.revision}` };
    this.aliases.set(`${name}:${alias}`, info);
    return { ...info };
  }

  async setAlias(name: string, alias: string, version: string, expectedRevisionId: string | null): Promise<AliasInfo> {
    this.setAliasCalls.push({ name, alias, version, expectedRevisionId });
    this.beforeSetAlias?.(name, alias, version);
    const current = this.aliases.get(`${name}:${alias}`);
    if ((current?.revisionId ?? null) !== expectedRevisionId) {
      throw new AliasConflictError(`alias ${name}:${alias} changed (revision ${current?.revisionId ?? 'none'})`);
    }
    return this.seedAlias(name, alias, version);
  }

  async deleteAlias(name: string, alias: string, expectedRevisionId: string): Promise<void> {
    const current = this.aliases.get(`${name}:${alias}`);
    if (!current) return;
    if (current.revisionId !== expectedRevisionId)
      throw new AliasConflictError(`alias ${name}:${alias} changed (revision ${current.revisionId})`);
    this.aliases.delete(`${name}:${alias}`);
  }
}

/** Decide-once approvals, as the conditional write of the real stores. */
export class MemoryApprovalStore implements ApprovalStore {
  readonly records = new Map<string, ApprovalRecord>();

  async create(record: ApprovalRecord): Promise<void> {
    if (this.records.has(record.id)) throw new Error(`approval ${record.id} exists already`);
    this.records.set(record.id, structuredClone(record));
  }

  async get(id: string): Promise<ApprovalRecord | undefined> {
    const record = this.records.get(id);
    return record ? structuredClone(record) : undefined;
  }

  async findByBake(bakeId: string): Promise<ApprovalRecord | undefined> {
    const found = [...this.records.values()].filter((r) => r.bakeId === bakeId).sort((a, b) => b.createdAt.localeCompare(a.createdAt))[0];
    return found ? structuredClone(found) : undefined;
  }

  async decide(id: string, decision: ApprovalDecision): Promise<ApprovalRecord> {
    const record = this.records.get(id);
    if (!record) throw new NotFoundError(`no approval ${id}`);
    if (record.decision) throw new AlreadyDecidedError(`approval ${id} was already ${record.decision.outcome}`);
    record.decision = decision;
    return structuredClone(record);
  }

  async renew(id: string, update: { taskToken: string; expiresAt: string }): Promise<ApprovalRecord> {
    const record = this.records.get(id);
    if (!record) throw new NotFoundError(`no approval ${id}`);
    if (record.decision) throw new AlreadyDecidedError(`approval ${id} was already ${record.decision.outcome}`);
    Object.assign(record, update);
    return structuredClone(record);
  }

  async setMessage(id: string, message: ApprovalMessage): Promise<void> {
    const record = this.records.get(id);
    if (!record) throw new NotFoundError(`no approval ${id}`);
    record.message = { ...message };
  }
}

export type Settlement =
  | { token: string; status: 'succeeded'; output: Json }
  | { token: string; status: 'failed'; error: string; cause: string };

/** Records every task-token settlement. */
export class RecordingCallbacks implements TaskCallbacks {
  readonly settled: Settlement[] = [];

  async succeed(token: string, output: Json): Promise<void> {
    this.settled.push({ token, status: 'succeeded', output });
  }

  async fail(token: string, error: string, cause: string): Promise<void> {
    this.settled.push({ token, status: 'failed', error, cause });
  }
}

export class RecordingNotifier implements Notifier {
  readonly requested: ApprovalRecord[] = [];
  readonly decided: ApprovalRecord[] = [];
  readonly failures: Array<{ bakeId: string | null; state: string; error: string; cause: string }> = [];

  /** Where `approvalRequested` says it posted (null: nowhere that can be updated, as the terminal). */
  postedAt: ApprovalMessage | null = null;

  async approvalRequested(record: ApprovalRecord): Promise<ApprovalMessage | null> {
    this.requested.push(record);
    return this.postedAt;
  }

  async approvalDecided(record: ApprovalRecord): Promise<void> {
    this.decided.push(record);
  }

  async bakeFailed(failure: { bakeId: string | null; state: string; error: string; cause: string }): Promise<void> {
    this.failures.push(failure);
  }
}

export class MemoryLedger implements Ledger {
  readonly entries: LedgerEntry[] = [];

  async append(entry: LedgerEntry): Promise<void> {
    this.entries.push(structuredClone(entry));
  }

  async list(): Promise<LedgerEntry[]> {
    return structuredClone(this.entries);
  }
}

/** A clock that only moves when told to. */
export class FakeClock implements Clock {
  private ms: number;

  constructor(iso = '2026-11-22T07:30:00.000Z') {
    this.ms = Date.parse(iso);
  }

  now(): Date {
    return new Date(this.ms);
  }

  advance(ms: number): void {
    this.ms += ms;
  }
}

export const sequentialIds = (prefix = 'id'): IdSource => {
  let n = 0;
  return { random: () => `${prefix}${String(++n).padStart(4, '0')}` };
};

export type ScriptedFunction = {
  init?: { durationMs: number | null; error: string | null };
  /** The outcome of each event, by the event's JSON. */
  respond: (event: Json) => InvokeOutcome;
};

/** An invoker whose sessions answer from a script; it records what was opened, invoked and closed. */
export class ScriptedInvoker implements FunctionInvoker {
  readonly opened: Array<{ name: string; version: string; initTimeoutMs: number; network?: 'host' | 'none' }> = [];
  readonly invoked: Array<{ name: string; event: Json; timeoutMs: number }> = [];
  readonly closed: string[] = [];
  private readonly scripts: Record<string, ScriptedFunction>;

  constructor(scripts: Record<string, ScriptedFunction>) {
    this.scripts = scripts;
  }

  /** Set to make the no-network run available; `offline` then answers it instead of `respond`. */
  isolated: { offline: Record<string, (event: Json) => InvokeOutcome> } | undefined;

  async isolation(): Promise<{ available: boolean; reason: string | null }> {
    return this.isolated ? { available: true, reason: null } : { available: false, reason: 'scripted: no isolation' };
  }

  async open(target: { name: string; version: string; initTimeoutMs: number; network?: 'host' | 'none' }): Promise<InvokeSession> {
    this.opened.push(target);
    const offline = target.network === 'none' ? this.isolated?.offline[target.name] : undefined;
    const script = this.scripts[target.name];
    if (!script) throw new NotFoundError(`no script for ${target.name}`);
    return {
      init: script.init ?? { durationMs: 5, error: null },
      invoke: async (event, timeoutMs) => {
        this.invoked.push({ name: target.name, event, timeoutMs });
        return offline ? offline(event) : script.respond(event);
      },
      close: async () => {
        this.closed.push(target.name);
      },
    };
  }
}

export const ok = (result: Json, durationMs = 10): InvokeOutcome => ({ ok: true, result, durationMs, logTail: '' });
export const failed = (errorType: string, errorMessage: string, durationMs = 10, logTail = ''): InvokeOutcome => ({
  ok: false,
  errorType,
  errorMessage,
  durationMs,
  logTail,
});
