import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { AlreadyDecidedError, InputError, NotFoundError } from '../../errors.ts';
import type { ApprovalDecision, ApprovalMessage, ApprovalRecord, ApprovalStore } from '../../ports/approval.ts';
import type { TaskCallbacks } from '../../ports/callbacks.ts';
import { parseLedgerEntry } from '../../ports/ledger-entry.ts';
import { type ArtefactStore, type BakeEndEntry, type BakeEndType, isBakeEnd, type Ledger, type LedgerEntry } from '../../ports/storage.ts';
import type { ArtefactRef, Json } from '../../state.ts';
import {
  appendLineDurable,
  createJsonExclusive,
  DAMAGED_HINT,
  exists,
  readJsonIfExists,
  sha256File,
  sha256Hex,
  writeFileAtomic,
  writeJsonAtomic,
} from '../../util/fsx.ts';
import type { LocalHome } from './home.ts';

/** Copy a file into place so it appears complete or not at all. */
export async function copyFileAtomic(from: string, to: string): Promise<void> {
  await mkdir(path.dirname(to), { recursive: true });
  const temp = `${to}.${randomBytes(6).toString('hex')}.partial`;
  try {
    await copyFile(from, temp);
    await rename(temp, to);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/** Artefacts as files under `<home>/artefacts/<key>`. */
export class LocalArtefactStore implements ArtefactStore {
  private readonly home: LocalHome;

  constructor(home: LocalHome) {
    this.home = home;
  }

  private file(key: string): string {
    if (key.split('/').some((part) => part === '..' || part === '' || part === '.')) throw new InputError(`bad artefact key ${key}`);
    return this.home.path('artefacts', key);
  }

  async putFile(key: string, file: string): Promise<ArtefactRef> {
    const target = this.file(key);
    const { hex, size } = await sha256File(file);
    if (!(await exists(target))) await copyFileAtomic(file, target);
    return { uri: pathToFileURL(target).href, sha256Hex: hex, size };
  }

  async putJson(key: string, value: unknown): Promise<ArtefactRef> {
    const target = this.file(key);
    const text = `${JSON.stringify(value, null, 2)}\n`;
    await writeFileAtomic(target, text);
    return { uri: pathToFileURL(target).href, sha256Hex: sha256Hex(text), size: Buffer.byteLength(text) };
  }

  async getJson<T>(key: string): Promise<T | undefined> {
    return readJsonIfExists<T>(this.file(key));
  }

  async fetchFile(ref: ArtefactRef): Promise<string> {
    return fileURLToPath(ref.uri);
  }

  async fetchTree(ref: ArtefactRef): Promise<string> {
    return fileURLToPath(ref.uri);
  }
}

/**
 * The append-only ledger: one fsync'd JSON line per entry in `<home>/ledger.jsonl`.
 * Only whole lines are ever appended, each in a single write, so a line that is not
 * JSON can only be a write cut short by a crash (at the end, or terminated by the next
 * append): it was never acknowledged, and reading skips it.
 *
 * A bake's end is appended once per bake id and type. Its first append claims it: an
 * exclusively created `<home>/ledger.ends/<type>-<hash of bake id>.json` holding the
 * entry, then the line. A retry loses the claim, and appends the claimed entry only if
 * the ledger lacks it (a crash between the two); reading keeps only the first line of
 * each bake end, so even two recorders of the same bake at one instant show one entry.
 */
export class LocalLedger implements Ledger {
  private readonly file: string;
  private readonly ends: string;

  constructor(home: LocalHome) {
    this.file = home.path('ledger.jsonl');
    this.ends = home.path('ledger.ends');
  }

  private claimFile(bakeId: string, type: BakeEndType): string {
    // Hashed: a bake id from an execution input is not checked against a file name's alphabet yet.
    return path.join(this.ends, `${type}-${sha256Hex(bakeId).slice(0, 32)}.json`);
  }

  async append(entry: LedgerEntry): Promise<void> {
    if (isBakeEnd(entry)) {
      const claim = this.claimFile(entry.bakeId, entry.type);
      if (!(await createJsonExclusive(claim, entry))) {
        const claimed = await readJsonIfExists<BakeEndEntry>(claim);
        const listed = (await this.list()).some((e) => e.type === entry.type && e.bakeId === entry.bakeId);
        if (listed || !claimed) return;
        await appendLineDurable(this.file, JSON.stringify(claimed));
        return;
      }
    }
    await appendLineDurable(this.file, JSON.stringify(entry));
  }

  async endOf(bakeId: string, type: BakeEndType): Promise<BakeEndEntry | undefined> {
    return readJsonIfExists<BakeEndEntry>(this.claimFile(bakeId, type));
  }

  async list(): Promise<LedgerEntry[]> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    // A line without its newline was cut by a crash mid-append and was never acknowledged.
    const complete = text.endsWith('\n') ? text : text.slice(0, text.lastIndexOf('\n') + 1);
    const ends = new Set<string>();
    return complete.split('\n').flatMap((line, index) => {
      if (line.length === 0) return [];
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        return []; // a torn write that a later append terminated
      }
      // Whole JSON that is not an entry was not cut short by a crash: someone changed it.
      const entry = parseLedgerEntry(value, `${this.file} line ${index + 1}`, DAMAGED_HINT);
      if (isBakeEnd(entry)) {
        // A second line of the same bake's end can only be a race of two recorders: the first counts.
        const k = `${entry.type}\0${entry.bakeId}`;
        if (ends.has(k)) return [];
        ends.add(k);
      }
      return [entry];
    });
  }
}

/**
 * Approvals under `<home>/approvals/`: `<id>.json` the record, `<id>.decision.json` the
 * decision (created exactly once: the local conditional write), `<id>.message.json`
 * where the request was posted.
 */
export class LocalApprovalStore implements ApprovalStore {
  private readonly dir: string;

  constructor(home: LocalHome) {
    this.dir = home.path('approvals');
  }

  private file(id: string, kind: '' | '.decision' | '.message' = ''): string {
    return path.join(this.dir, `${id}${kind}.json`);
  }

  async create(record: ApprovalRecord): Promise<void> {
    const { decision: _decision, message: _message, ...fields } = record;
    const created = await createJsonExclusive(this.file(record.id), fields);
    if (!created) throw new Error(`approval ${record.id} exists already`);
  }

  async get(id: string): Promise<ApprovalRecord | undefined> {
    if (!/^[A-Za-z0-9_-]+$/.test(id)) return undefined;
    const record = await readJsonIfExists<Omit<ApprovalRecord, 'decision' | 'message'>>(this.file(id));
    if (!record) return undefined;
    const message = await readJsonIfExists<ApprovalMessage>(this.file(id, '.message'));
    const decision = await readJsonIfExists<ApprovalDecision>(this.file(id, '.decision'));
    return { ...record, message: message ?? null, decision: decision ?? null };
  }

  async findByBake(bakeId: string): Promise<ApprovalRecord | undefined> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    let found: ApprovalRecord | undefined;
    for (const name of names) {
      if (!/^[A-Za-z0-9_-]+\.json$/.test(name)) continue;
      const record = await this.get(name.slice(0, -'.json'.length));
      if (record?.bakeId === bakeId && (!found || record.createdAt > found.createdAt)) found = record;
    }
    return found;
  }

  async decide(id: string, decision: ApprovalDecision): Promise<ApprovalRecord> {
    const record = await this.get(id);
    if (!record) throw new NotFoundError(`no approval ${id}`);
    const created = await createJsonExclusive(this.file(id, '.decision'), decision);
    if (!created) throw await this.alreadyDecided(id, record.bakeId);
    // Read again after the decision exists: `renew` checks for it after writing, so this sees its token.
    return { ...((await this.get(id)) ?? record), decision };
  }

  async renew(id: string, update: { taskToken: string; expiresAt: string }): Promise<ApprovalRecord> {
    const record = await this.get(id);
    if (!record) throw new NotFoundError(`no approval ${id}`);
    if (record.decision) throw await this.alreadyDecided(id, record.bakeId);
    const { decision: _decision, message: _message, ...fields } = record;
    await writeJsonAtomic(this.file(id), { ...fields, ...update });
    // A decision made meanwhile may hold the old token: report it decided, as the conditional write in AWS would.
    if (await exists(this.file(id, '.decision'))) throw await this.alreadyDecided(id, record.bakeId);
    return { ...record, ...update };
  }

  async setMessage(id: string, message: ApprovalMessage): Promise<void> {
    if (!(await exists(this.file(id)))) throw new NotFoundError(`no approval ${id}`);
    await writeJsonAtomic(this.file(id, '.message'), message);
  }

  private async alreadyDecided(id: string, bakeId: string): Promise<AlreadyDecidedError> {
    const existing = await readJsonIfExists<ApprovalDecision>(this.file(id, '.decision'));
    return new AlreadyDecidedError(
      `approval ${id} (bake ${bakeId}) was already ${existing?.outcome ?? 'decided'}${existing ? ` by ${existing.by} at ${existing.at}` : ''}`,
    );
  }
}

export type TokenOutcome = { status: 'succeeded'; output: Json } | { status: 'failed'; error: string; cause: string };

/**
 * Task tokens of the local runner: `SendTaskSuccess`/`SendTaskFailure` write
 * `<home>/tokens/<token>.json` once; the runner waits for that file.
 */
export class LocalTaskCallbacks implements TaskCallbacks {
  private readonly dir: string;

  constructor(home: LocalHome) {
    this.dir = home.path('tokens');
  }

  private file(token: string): string {
    if (!/^[A-Za-z0-9_.-]+$/.test(token)) throw new Error(`bad task token ${token}`);
    return path.join(this.dir, `${token}.json`);
  }

  private async settle(token: string, outcome: TokenOutcome): Promise<void> {
    if (!(await createJsonExclusive(this.file(token), outcome))) {
      throw new AlreadyDecidedError(`task token ${token} was already used`);
    }
  }

  succeed(token: string, output: Json): Promise<void> {
    return this.settle(token, { status: 'succeeded', output });
  }

  fail(token: string, error: string, cause: string): Promise<void> {
    return this.settle(token, { status: 'failed', error, cause });
  }

  /** The token's outcome if it is settled already (a decision made while nobody waited). */
  settled(token: string): Promise<TokenOutcome | undefined> {
    return readJsonIfExists<TokenOutcome>(this.file(token));
  }

  /** Wait until the token is settled (polls; the file appears atomically). */
  async wait(token: string, signal?: AbortSignal, pollMs = 100): Promise<TokenOutcome> {
    const file = this.file(token);
    for (;;) {
      const outcome = await readJsonIfExists<TokenOutcome>(file);
      if (outcome) return outcome;
      if (signal?.aborted) throw signal.reason ?? new Error('aborted');
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  }
}
