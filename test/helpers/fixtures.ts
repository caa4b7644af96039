/** Typed state payloads for core tests: what the earlier states would have produced. */

import type { z } from 'zod';
import { bakeKey } from '../../src/cores/image.ts';
import { type FunctionSpec, FunctionSpecSchema, parseSpec, type ValidationCaseSchema } from '../../src/spec.ts';
import type { BuiltImage, PublishedLayer, PublishedVersions, ResolvedBake, ResolvedFunction, ValidationReport } from '../../src/state.ts';

/** A validation case as written in a spec (defaults not applied yet). */
export type CaseInput = Partial<z.input<typeof ValidationCaseSchema>> & { name: string };

export function functionSpec(name: string, cases: CaseInput[], extra: Partial<FunctionSpec> = {}) {
  return FunctionSpecSchema.parse({
    name,
    code: `./${name}`,
    handler: 'index.handler',
    validation: { cases: cases.map((c) => ({ event: {}, expect: { result: null }, ...c })) },
    ...extra,
  });
}

export function resolvedFunction(name: string, overrides: Partial<ResolvedFunction> = {}): ResolvedFunction {
  return {
    name,
    handler: 'index.handler',
    memorySize: 256,
    timeout: 10,
    environment: {},
    alias: 'live',
    code: { uri: `mem://code/${name}.zip`, sha256Hex: 'ab'.repeat(32), size: 1000, sha256Base64: `code-${name}-b64` },
    ...overrides,
  };
}

export function resolvedBake(options: { bakeId?: string; functions?: FunctionSpec[]; resolved?: ResolvedFunction[] } = {}): ResolvedBake {
  const fnSpecs = options.functions ?? [functionSpec('hello', [{ name: 'says hello', expect: { result: { ok: true }, match: 'exact' } }])];
  const spec = parseSpec(
    {
      version: 1,
      name: 'hello',
      runtime: { recipe: 'node22' },
      layer: { name: 'hello-node22' },
      functions: fnSpecs,
      approval: { approvers: [], timeoutSeconds: 3600 },
    },
    'fixture',
  );
  const recipe: ResolvedBake['recipe'] = {
    name: 'node22',
    runtime: 'provided.al2023',
    architecture: 'x86_64',
    documents: [{ path: 'components/node22-runtime.yml', sha256Hex: 'cd'.repeat(32) }],
    parameters: { NodeVersion: '22.23.3', NodeSha256: 'ef'.repeat(32) },
    contentSha256Hex: '01'.repeat(32),
  };
  return {
    bakeId: options.bakeId ?? 'hello-20261122T073000-abcd',
    requestedAt: '2026-11-22T07:30:00.000Z',
    trigger: { type: 'cli', user: 'tester' },
    rebuild: false,
    spec,
    recipe,
    functions: options.resolved ?? fnSpecs.map((f) => resolvedFunction(f.name, { alias: f.alias })),
    approval: { timeoutSeconds: 3600, approvers: [] },
    // What every ResolveBake adds: the bake key of the recipe; not up to date (nothing live to equal).
    bakeKey: bakeKey(recipe),
    upToDate: false,
    upToDateWith: [],
    patched: [],
  };
}

export function builtImage(runtimeUri: string): BuiltImage {
  return {
    bakeKey: '42'.repeat(32),
    cacheHit: false,
    imageArn: null,
    runtime: { uri: runtimeUri, sha256Hex: '43'.repeat(32), size: 100 },
    buildRecord: {
      recipe: 'node22',
      bakeKey: '42'.repeat(32),
      documents: [],
      parameters: {},
      sources: {},
      tools: {},
      startedAt: '2026-11-22T07:30:01.000Z',
      finishedAt: '2026-11-22T07:30:02.000Z',
    },
  };
}

export function publishedLayer(overrides: Partial<PublishedLayer> = {}): PublishedLayer {
  return {
    name: 'hello-node22',
    arn: 'arn:aws:lambda:test:000000000000:layer:hello-node22:3',
    version: 3,
    codeSha256: 'bGF5ZXI=',
    size: 2000,
    sha256Hex: '6c61796572',
    unzippedSize: 5000,
    reused: false,
    ...overrides,
  };
}

export function publishedVersions(...fns: Array<[name: string, version: string]>): PublishedVersions {
  return { functions: fns.map(([name, version]) => ({ name, version, codeSha256: `code-${name}-b64`, alias: 'live' })) };
}

export function passedValidation(versions: PublishedVersions): ValidationReport {
  return {
    passed: true,
    functions: versions.functions.map((f) => ({
      name: f.name,
      version: f.version,
      passed: true,
      initDurationMs: 5,
      initError: null,
      cases: [{ name: 'says hello', passed: true, durationMs: 3, failure: null }],
      selfContained: { checked: false, passed: null, reason: 'not checked in this fixture', cases: [] },
    })),
  };
}
