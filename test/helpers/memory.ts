/**
 * In-memory fakes of the ports, for testing cores without AWS or the local backend.
 * Each records the calls a test wants to assert on; none touches the network.
 */
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AliasConflictError, AlreadyDecidedError, NotFoundError } from '../../src/errors.ts';
import type { AlarmMonitor, AlarmState } from '../../src/ports/alarms.ts';
import type { ApprovalDecision, ApprovalMessage, ApprovalRecord, ApprovalStore } from '../../src/ports/approval.ts';
import type { TaskCallbacks } from '../../src/ports/callbacks.ts';
import type {
  AliasInfo,
  FunctionInvoker,
  FunctionRegistry,
  FunctionVersionInfo,
  FunctionVersionInput,
  InvokeOutcome,
  InvokeSession,
  LayerPublishInput,
  LayerRegistry,
  LayerVersionDetails,
} from '../../src/ports/lambda.ts';
import type { DriftReport, Notifier } from '../../src/ports/notifier.ts';
import {
  type ArtefactStore,
  type BakeEndEntry,
  type BakeEndType,
  isBakeEnd,
  type Ledger,
  type LedgerEntry,
} from '../../src/ports/storage.ts';
import type { Clock, IdSource } from '../../src/ports/system.ts';
import type { ArtefactRef, Json, LayerVersionInfo } from '../../src/state.ts';
import { scratchDir } from './scratch.ts';

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

  /** The bytes of each JSON artefact as put, so `fetchFile` serves them as a store does. */
  private readonly texts = new Map<string, string>();

  async putJson(key: string, value: unknown): Promise<ArtefactRef> {
    const text = JSON.stringify(value);
    this.json.set(key, JSON.parse(text));
    this.texts.set(key, text);
    return { uri: `mem://${key}`, sha256Hex: sha256(text).toString('hex'), size: Buffer.byteLength(text) };
  }

  async getJson<T>(key: string): Promise<T | undefined> {
    return this.json.get(key) as T | undefined;
  }

  async fetchFile(ref: ArtefactRef): Promise<string> {
    const key = ref.uri.replace(/^mem:\/\//, '');
    const file = this.files.get(key);
    if (file) return file;
    const text = this.texts.get(key);
    if (text !== undefined) {
      // Removed after the test (test/setup.ts): a bake on this store leaves nothing in the tmpdir.
      const copy = path.join(await scratchDir('bakery-memory-artefact-'), path.basename(key));
      await writeFile(copy, text);
      return copy;
    }
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
    this.details.set(info.arn, { compatibleRuntimes: input.compatibleRuntimes, architectures: input.architectures, bytes });
    return info;
  }

  async get(arn: string): Promise<LayerVersionInfo | undefined> {
    return this.versions.find((v) => v.arn === arn);
  }

  /** What each version was published for and its bytes; a test may also put versions here directly. */
  readonly details = new Map<string, { compatibleRuntimes: string[]; architectures: string[]; bytes: Buffer }>();
  readonly deleted: string[] = [];

  /** Put a version in place directly (a layer published by someone else). */
  seed(info: LayerVersionInfo, extra: { compatibleRuntimes: string[]; architectures: string[]; bytes: Buffer }): void {
    this.versions.push(info);
    this.details.set(info.arn, extra);
  }

  async describe(arn: string): Promise<LayerVersionDetails | undefined> {
    const info = await this.get(arn);
    const details = this.details.get(arn);
    return info
      ? { ...info, compatibleRuntimes: details?.compatibleRuntimes ?? [], architectures: details?.architectures ?? [] }
      : undefined;
  }

  async download(arn: string, file: string): Promise<boolean> {
    const bytes = this.details.get(arn)?.bytes;
    if (!(await this.get(arn)) || !bytes) return false;
    await writeFile(file, bytes);
    return true;
  }

  async listVersions(name: string): Promise<Array<{ name: string; arn: string; version: number }>> {
    return this.versions.filter((v) => v.name === name).map((v) => ({ name: v.name, arn: v.arn, version: v.version }));
  }

  async deleteVersion(arn: string): Promise<void> {
    const index = this.versions.findIndex((v) => v.arn === arn);
    if (index >= 0) this.versions.splice(index, 1);
    this.deleted.push(arn);
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
  readonly setAliasCalls: Array<{
    name: string;
    alias: string;
    version: string;
    expectedRevisionId: string | null;
    weights: Record<string, number>;
  }> = [];
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
    return found ? structuredClone(found) : undefined;
  }

  /** Put an alias in place directly (arranging a previous release, or a change made by hand). */
  seedAlias(name: string, alias: string, version: string, weights: Record<string, number> = {}): AliasInfo {
    const info = { name, alias, version, revisionId: `rev-${++this.revision}`, weights: { ...weights } };
    this.aliases.set(`${name}:${alias}`, info);
    return structuredClone(info);
  }

  async setAlias(
    name: string,
    alias: string,
    version: string,
    expectedRevisionId: string | null,
    weights: Record<string, number> = {},
  ): Promise<AliasInfo> {
    this.setAliasCalls.push({ name, alias, version, expectedRevisionId, weights: { ...weights } });
    this.beforeSetAlias?.(name, alias, version);
    const current = this.aliases.get(`${name}:${alias}`);
    if ((current?.revisionId ?? null) !== expectedRevisionId) {
      throw new AliasConflictError(`alias ${name}:${alias} changed (revision ${current?.revisionId ?? 'none'})`);
    }
    return this.seedAlias(name, alias, version, weights);
  }

  async deleteAlias(name: string, alias: string, expectedRevisionId: string): Promise<void> {
    const current = this.aliases.get(`${name}:${alias}`);
    if (!current) return;
    if (current.revisionId !== expectedRevisionId)
      throw new AliasConflictError(`alias ${name}:${alias} changed (revision ${current.revisionId})`);
    this.aliases.delete(`${name}:${alias}`);
  }

  readonly deletedVersions: Array<{ name: string; version: string }> = [];

  async listVersions(name: string): Promise<FunctionVersionInfo[]> {
    return this.versions.filter((v) => v.name === name).map((v) => ({ ...v }));
  }

  async listAliases(name: string): Promise<AliasInfo[]> {
    return [...this.aliases.values()].filter((a) => a.name === name).map((a) => structuredClone(a));
  }

  async downloadCode(name: string, version: string, file: string): Promise<boolean> {
    // Versions are numbered by publish order per function (see publishVersion).
    const input = this.published.filter((p) => p.name === name)[Number(version) - 1];
    if (!input || !(await this.getVersion(name, version))) return false;
    await writeFile(file, await readFile(input.codeFile));
    return true;
  }

  async deleteVersion(name: string, version: string): Promise<void> {
    if (!/^\d+$/.test(version)) throw new Error(`only numbered versions can be deleted, not ${version}`);
    const aliased = [...this.aliases.values()].find((a) => a.name === name && (a.version === version || version in (a.weights ?? {})));
    if (aliased) throw new AliasConflictError(`${name}:${version} is in use by alias ${aliased.alias}`);
    const index = this.versions.findIndex((v) => v.name === name && v.version === version);
    if (index >= 0) this.versions.splice(index, 1);
    this.deletedVersions.push({ name, version });
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

  readonly stale: Array<{ record: ApprovalRecord; reason: string }> = [];

  async approvalStale(record: ApprovalRecord, reason: string): Promise<void> {
    this.stale.push({ record, reason });
  }

  async bakeFailed(failure: { bakeId: string | null; state: string; error: string; cause: string }): Promise<void> {
    this.failures.push(failure);
  }

  readonly drifts: DriftReport[] = [];

  async driftFound(report: DriftReport): Promise<void> {
    this.drifts.push(report);
  }
}

export class MemoryLedger implements Ledger {
  readonly entries: LedgerEntry[] = [];

  async append(entry: LedgerEntry): Promise<void> {
    if (isBakeEnd(entry) && (await this.endOf(entry.bakeId, entry.type))) return;
    this.entries.push(structuredClone(entry));
  }

  async list(): Promise<LedgerEntry[]> {
    return structuredClone(this.entries);
  }

  async endOf(bakeId: string, type: BakeEndType): Promise<BakeEndEntry | undefined> {
    const found = this.entries.find((e): e is BakeEndEntry => e.type === type && e.bakeId === bakeId);
    return found && structuredClone(found);
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

/** Alarm states in a map (a missing name is a missing alarm); records every check. */
export class MemoryAlarms implements AlarmMonitor {
  readonly alarms = new Map<string, AlarmState>();
  readonly checked: string[][] = [];

  constructor(alarms: Record<string, AlarmState> = {}) {
    for (const [name, state] of Object.entries(alarms)) this.alarms.set(name, state);
  }

  async states(names: string[]): Promise<Array<{ name: string; state: AlarmState | null }>> {
    this.checked.push([...names]);
    return names.map((name) => ({ name, state: this.alarms.get(name) ?? null }));
  }
}
