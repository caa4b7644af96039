import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BakeSpecError } from '../errors.ts';
import type { AlarmMonitor } from '../ports/alarms.ts';
import type { LayerRegistry } from '../ports/lambda.ts';
import type { RecipeCatalog, SourceReader } from '../ports/sources.ts';
import type { ArtefactStore, Ledger } from '../ports/storage.ts';
import type { Clock, IdSource } from '../ports/system.ts';
import { resolveRecipe } from '../recipes/recipe.ts';
import { loadSpec } from '../spec.ts';
import type { BakeRequest, ResolvedFunction, StagedBake } from '../state.ts';
import { type CodeTree, inspectCode, type PreCheckDeps, refuse, runPreChecks } from './precheck.ts';

export interface ResolveDeps {
  sources: SourceReader;
  recipes: RecipeCatalog;
  artefacts: ArtefactStore;
  clock: Clock;
  ids: IdSource;
  /** For the pre-checks (release alarms, extra layers, the runtime layer's recorded size); each is skipped without its port. */
  alarms?: AlarmMonitor;
  layers?: LayerRegistry;
  ledger?: Ledger;
}

/** At most 80 characters: the limit of a Step Functions execution name. */
const MAX_BAKE_ID_LENGTH = 80;
/** What a bake id may be: it names files, S3 keys and the execution. */
export const BAKE_ID = new RegExp(`^[A-Za-z0-9_-]{1,${MAX_BAKE_ID_LENGTH}}$`);

/**
 * `hello-20261122T073000-3f9a`: sortable, readable, unique enough per spec. A spec
 * name may have 64 characters, more than fits beside the stamp, so it is shortened.
 */
export function newBakeId(specName: string, now: Date, random: string): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, '');
  const suffix = `-${stamp}-${random.slice(0, 4)}`;
  return `${specName.slice(0, MAX_BAKE_ID_LENGTH - suffix.length)}${suffix}`;
}

/**
 * Everything that can be checked about a bake's input without building anything: the
 * spec parses, its recipe exists and takes the given parameters, each code directory is
 * confined to the spec's directory and holds something to deploy, and every pre-check
 * (./precheck.ts) passes. The CLI runs it before it writes anything; ResolveBake runs it
 * for every bake. All problems are reported together.
 */
export async function checkBakeInput(
  specFile: string,
  recipes: RecipeCatalog,
  where = specFile,
  options: { deps?: PreCheckDeps; autoApprover?: string } = {},
) {
  const { spec, dir } = await loadSpec(specFile, where);
  const recipe = await resolveRecipe(recipes, spec.runtime.recipe, spec.runtime.parameters);
  const problems: string[] = [];
  const code: CodeTree[] = [];
  for (const [index, fn] of spec.functions.entries()) {
    const inspected = await inspectCode(dir, fn.code, `functions[${index}].code`, problems);
    if (inspected) code.push(inspected.tree);
  }
  refuse(where, problems);
  await runPreChecks(
    { spec, where, recipe, code, ...(options.autoApprover === undefined ? {} : { autoApprover: options.autoApprover }) },
    options.deps ?? {},
  );
  return { spec, dir, recipe, codeDirs: code.map((c) => c.dir) };
}

/** A bake's input as {@link checkBakeInput} read and checked it. */
export type CheckedBakeInput = Awaited<ReturnType<typeof checkBakeInput>>;

/** A bake's input read and checked (see {@link checkBakeInput}), its bake id chosen; nothing written yet. */
export interface InspectedBake {
  bakeId: string;
  now: Date;
  where: string;
  spec: CheckedBakeInput['spec'];
  recipe: CheckedBakeInput['recipe'];
  codeDirs: string[];
}

/**
 * The first half of ResolveBake: open the source, check the spec and its pre-checks, choose
 * the bake id. `checked`: the source's input as the caller has just checked it with these
 * pre-checks or more (`bakery bake`, before it writes anything), so it is not read twice.
 */
export async function inspectBake(request: BakeRequest, deps: ResolveDeps, checked?: CheckedBakeInput): Promise<InspectedBake> {
  const { specFile, where } = await deps.sources.open(request.source);
  const { spec, recipe, codeDirs } =
    checked ??
    (await checkBakeInput(specFile, deps.recipes, where, {
      deps: {
        artefacts: deps.artefacts,
        ...(deps.alarms ? { alarms: deps.alarms } : {}),
        ...(deps.layers ? { layers: deps.layers } : {}),
        ...(deps.ledger ? { ledger: deps.ledger } : {}),
      },
    }));
  if (request.bakeId !== undefined && !BAKE_ID.test(request.bakeId)) {
    throw new BakeSpecError(`bake id "${request.bakeId}" is not valid: use letters, digits, - and _ (at most 80)`);
  }
  const now = deps.clock.now();
  const bakeId = request.bakeId ?? newBakeId(spec.name, now, deps.ids.random());
  return { bakeId, now, where, spec, recipe, codeDirs };
}

/** The functions of a bake as the spec gives them, with the code `code(index)` names. */
export function resolvedFunctions(
  inspected: Pick<InspectedBake, 'spec'>,
  code: (index: number) => ResolvedFunction['code'],
  inputSha256?: (index: number) => string,
): ResolvedFunction[] {
  return inspected.spec.functions.map((fn, index) => ({
    name: fn.name,
    handler: fn.handler,
    memorySize: fn.memorySize,
    timeout: fn.timeout,
    environment: fn.environment,
    alias: fn.alias,
    code: code(index),
    ...(inputSha256 ? { inputSha256: inputSha256(index) } : {}),
  }));
}

/** A bake as staged, from what was inspected and its functions. */
export function stagedBake(request: BakeRequest, inspected: InspectedBake, functions: ResolvedFunction[]): StagedBake {
  const { spec } = inspected;
  return {
    bakeId: inspected.bakeId,
    requestedAt: inspected.now.toISOString(),
    trigger: request.trigger,
    rebuild: request.options?.rebuild ?? false,
    spec,
    recipe: inspected.recipe,
    functions,
    approval: { timeoutSeconds: spec.approval.timeoutSeconds, approvers: spec.approval.approvers },
  };
}

/** The second half of ResolveBake: zip each function's code reproducibly and store it as an artefact. */
export async function stageCode(inspected: InspectedBake, deps: Pick<ResolveDeps, 'artefacts'>): Promise<ResolvedFunction['code'][]> {
  // The zip writer loads only here: an up-to-date bake (src/cores/patch.ts) stages nothing.
  const { zipTree } = await import('../zip/deterministic.ts');
  const work = await mkdtemp(path.join(os.tmpdir(), 'bakery-code-'));
  try {
    const staged: ResolvedFunction['code'][] = [];
    for (const [index, fn] of inspected.spec.functions.entries()) {
      const codeDir = inspected.codeDirs[index] as string;
      const zipped = await zipTree(codeDir, path.join(work, `${fn.name}.zip`));
      if (zipped.entries === 0) throw new BakeSpecError(`${inspected.where}: functions[${index}].code: ${codeDir} is empty`);
      const ref = await deps.artefacts.putFile(`code/${fn.name}/${zipped.sha256Hex}.zip`, zipped.file);
      staged.push({ ...ref, sha256Base64: zipped.sha256Base64, unzippedSize: zipped.unzippedSize });
    }
    return staged;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * ResolveBake without the up-to-date decision: read and check the spec, find the recipe,
 * stage each function's code as a reproducible zip. ResolveBake's task
 * (src/cores/patch.ts) keys, patches and decides whether it is up to date first.
 */
export async function resolveBake(request: BakeRequest, deps: ResolveDeps): Promise<StagedBake> {
  const inspected = await inspectBake(request, deps);
  const code = await stageCode(inspected, deps);
  return stagedBake(
    request,
    inspected,
    resolvedFunctions(inspected, (i) => code[i] as ResolvedFunction['code']),
  );
}
