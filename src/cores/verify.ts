import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { InputError, NotFoundError } from '../errors.ts';
import type { FunctionRegistry, LayerRegistry } from '../ports/lambda.ts';
import type { ArtefactStore, Ledger } from '../ports/storage.ts';
import type { ArtefactRef } from '../state.ts';
import { sha256File } from '../util/fsx.ts';
import { unzippedSizeOf } from '../zip/inspect.ts';
import { manifestKey, type PinManifest } from './record.ts';
import { BAKE_ID } from './resolve.ts';

/** One comparison of something stored now with what the manifest recorded. */
export interface VerifyCheck {
  /** What was checked: `manifest`, `layer <arn>` or `<function>:<version>`. */
  subject: string;
  /** Which property: `sha256`, `exists`, `CodeSha256`, `content CodeSha256`, `layers`, … */
  property: string;
  expected: string;
  /** What is stored now; null when it could not be read at all. */
  actual: string | null;
  ok: boolean;
}

export interface VerifyResult {
  bakeId: string;
  status: PinManifest['status'];
  recordedAt: string;
  checks: VerifyCheck[];
  /** The checks that failed; empty when everything the bake pinned is as recorded. */
  mismatches: VerifyCheck[];
}

export interface VerifyDeps {
  ledger: Ledger;
  artefacts: ArtefactStore;
  layers: LayerRegistry;
  functions: FunctionRegistry;
}

const check = (subject: string, property: string, expected: string | number, actual: string | number | null): VerifyCheck => ({
  subject,
  property,
  expected: String(expected),
  actual: actual === null ? null : String(actual),
  ok: actual !== null && String(actual) === String(expected),
});

/**
 * Read the manifest of `bakeId`: through the ledger's reference when there is one, so
 * the manifest's own bytes are checked against the hash recorded when it was written.
 */
async function readManifest(bakeId: string, deps: VerifyDeps): Promise<{ manifest: PinManifest; checks: VerifyCheck[] }> {
  const entries = await deps.ledger.list();
  const ref = entries.flatMap((e): ArtefactRef[] => ('manifest' in e && e.bakeId === bakeId && e.manifest ? [e.manifest] : [])).at(-1);
  if (ref) {
    try {
      const file = await deps.artefacts.fetchFile(ref);
      const got = await sha256File(file);
      const manifest = JSON.parse(await readFile(file, 'utf8')) as PinManifest;
      return { manifest, checks: [check('manifest', 'sha256 (as in the ledger)', ref.sha256Hex, got.hex)] };
    } catch (error) {
      // Gone or altered (the S3 store refuses bytes whose hash is not the reference's): say so, and
      // go on with what the store holds, if anything, so the rest is still checked.
      const reason = error instanceof Error ? error.message : String(error);
      const manifest = await deps.artefacts.getJson<PinManifest>(manifestKey(bakeId));
      const failed = { ...check('manifest', 'sha256 (as in the ledger)', ref.sha256Hex, null), actual: reason };
      if (!manifest) throw new NotFoundError(`the manifest of bake ${bakeId} (${ref.uri}) cannot be read: ${reason}`);
      return { manifest, checks: [failed] };
    }
  }
  const manifest = await deps.artefacts.getJson<PinManifest>(manifestKey(bakeId));
  if (!manifest) {
    throw new NotFoundError(`no bake ${bakeId}: the ledger has no entry for it and there is no manifest ${manifestKey(bakeId)}`, {
      hint: '`bakery status` shows the bakes that released what is live.',
    });
  }
  return { manifest, checks: [] };
}

/**
 * `bakery verify`: fetch again what the bake pinned (the layer's bytes, each function
 * version's configuration and code), hash it, and compare with the pin manifest.
 */
export async function verifyBake(bakeId: string, deps: VerifyDeps): Promise<VerifyResult> {
  // The id becomes a key (manifests/<id>.json): only the shape bake ids have is looked up.
  if (!BAKE_ID.test(bakeId)) {
    throw new InputError(`bake id ${JSON.stringify(bakeId)} is not valid: bake ids have letters, digits, - and _ only (at most 80)`, {
      hint: '`bakery history` lists the bakes with their ids.',
    });
  }
  const { manifest, checks } = await readManifest(bakeId, deps);
  if (manifest.bakeId !== bakeId) checks.push(check('manifest', 'bakeId', bakeId, manifest.bakeId));
  const work = await mkdtemp(path.join(os.tmpdir(), 'bakery-verify-'));
  try {
    const layer = manifest.layer;
    if (layer) {
      const subject = `layer ${layer.arn}`;
      const info = await deps.layers.get(layer.arn);
      checks.push(check(subject, 'exists', 'yes', info ? 'yes' : 'no'));
      if (info) {
        checks.push(check(subject, 'CodeSha256 (as Lambda reports it)', layer.codeSha256, info.codeSha256));
        const file = path.join(work, 'layer.zip');
        if (await deps.layers.download(layer.arn, file)) {
          const got = await sha256File(file);
          checks.push(check(subject, 'content SHA-256', layer.codeSha256, got.base64));
          checks.push(check(subject, 'content size', layer.size, got.size));
          const unzipped = await unzippedSizeOf(file).catch(() => null);
          checks.push(check(subject, 'unzipped size', layer.unzippedSize, unzipped));
        } else {
          checks.push(check(subject, 'content', 'downloadable', null));
        }
      }
    }
    for (const [index, fn] of manifest.functions.entries()) {
      const subject = `${fn.name}:${fn.version}`;
      const version = await deps.functions.getVersion(fn.name, fn.version);
      checks.push(check(subject, 'exists', 'yes', version ? 'yes' : 'no'));
      if (!version) continue;
      checks.push(check(subject, 'CodeSha256 (as Lambda reports it)', fn.codeSha256, version.codeSha256));
      // Manifests written before the layers were recorded per function pinned the runtime layer only.
      const layers = fn.layers ?? (layer ? [layer.arn] : null);
      if (layers) checks.push(check(subject, 'layers (in order)', layers.join(', ') || '(none)', version.layers.join(', ') || '(none)'));
      // Every other field the manifest recorded (older manifests recorded fewer; a missing one is not checked).
      const runtime = fn.runtime ?? manifest.recipe?.runtime;
      if (runtime !== undefined) checks.push(check(subject, 'runtime', runtime, version.runtime));
      if (fn.handler !== undefined) checks.push(check(subject, 'handler', fn.handler, version.handler));
      if (fn.environmentNames) {
        const names = (list: string[]) => list.join(', ') || '(none)';
        checks.push(check(subject, 'environment names', names(fn.environmentNames), names(Object.keys(version.environment).sort())));
      }
      if (fn.memorySize !== undefined) checks.push(check(subject, 'memory size (MB)', fn.memorySize, version.memorySize ?? null));
      if (fn.timeout !== undefined) checks.push(check(subject, 'timeout (s)', fn.timeout, version.timeout ?? null));
      const file = path.join(work, `code-${index}.zip`);
      if (await deps.functions.downloadCode(fn.name, fn.version, file)) {
        checks.push(check(subject, 'code content SHA-256', fn.codeSha256, (await sha256File(file)).base64));
        await rm(file, { force: true });
      } else {
        checks.push(check(subject, 'code content', 'downloadable', null));
      }
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return {
    bakeId,
    status: manifest.status,
    recordedAt: manifest.recordedAt,
    checks,
    mismatches: checks.filter((c) => !c.ok),
  };
}
