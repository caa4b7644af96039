/**
 * The paths each function of serverless.yml takes, as its core runs them on the real AWS
 * adapters over the fake account: what the account holds before (prepare) and the call
 * (run). Success paths must succeed; failure paths (fails: true) must fail, and the calls
 * made until they do are recorded like any other.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildCacheKey } from '../../src/adapters/aws/build-cache.ts';
import { approvalKey, bakeApprovalKey, LEDGER_PK } from '../../src/adapters/aws/dynamo.ts';
import { imageBuildTokenKey } from '../../src/adapters/aws/image-builder.ts';
import { DIRECT_UPLOAD_MAX_BYTES } from '../../src/adapters/aws/layers.ts';
import type { Deps, ImageEventDeps, SlackCallbackDeps, TriggerDeps } from '../../src/compose/deps.ts';
import { driftCheck } from '../../src/cores/drift.ts';
import { handleImageStateChange } from '../../src/cores/image-events.ts';
import { manifestKey } from '../../src/cores/record.ts';
import { handleSlackInteraction } from '../../src/cores/slack-callback.ts';
import { scheduledRebake, startS3Bake } from '../../src/cores/trigger.ts';
import { validationReportKey } from '../../src/cores/validate.ts';
import { PROJECT_ROOT } from '../../src/local/asl.ts';
import { APPROVE_ACTION, REJECT_ACTION } from '../../src/ports/notifier.ts';
import type { BuiltImage, ResolvedBake } from '../../src/state.ts';
import { TASKS } from '../../src/tasks.ts';
import { zipTree } from '../../src/zip/deterministic.ts';
import { approvalRecord, TASK_TOKEN } from '../adapters/aws/fixtures.ts';
import {
  builtImage,
  functionSpec,
  passedValidation,
  publishedLayer,
  publishedVersions,
  resolvedBake,
  resolvedFunction,
} from '../helpers/fixtures.ts';
import { BUCKET, type FakeAccount, IMAGE_ARN_PREFIX, LAYER_PREFIX, SOURCE_BUCKET, sha256 } from './fake-account.ts';

/** The runtime the current scenario's build uploaded (set by stageRuntime). */
let runtime: { image: BuiltImage; treeDir: string } | undefined;

/**
 * A built runtime in the artefacts bucket, as a build's test phase uploads it: a small tree,
 * or one whose zip is over the direct-upload limit (incompressible bytes). Random content,
 * so no earlier run's unpacked tree in the OS tmpdir stands in for the download.
 */
async function stageRuntime(aws: FakeAccount, size: 'small' | 'big'): Promise<void> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'bakery-iam-runtime-'));
  try {
    const tree = path.join(work, 'tree');
    await mkdir(path.join(tree, 'bin'), { recursive: true });
    await writeFile(path.join(tree, 'bootstrap'), '#!/bin/sh\nexec /opt/bin/node /opt/runtime/index.mjs\n', { mode: 0o755 });
    await writeFile(path.join(tree, 'bin', 'node'), randomBytes(size === 'big' ? DIRECT_UPLOAD_MAX_BYTES + 1024 * 1024 : 4096), {
      mode: 0o755,
    });
    const zip = await zipTree(tree, path.join(work, 'runtime.zip'));
    const key = `builds/images/ami-0000000000000000${size === 'big' ? 'b' : 'a'}/runtime.zip`;
    aws.putObject(key, await readFile(zip.file));
    const image = builtImage(`s3://${BUCKET}/${key}`);
    image.runtime = { uri: `s3://${BUCKET}/${key}`, sha256Hex: zip.sha256Hex, size: zip.size };
    runtime = { image, treeDir: path.join(os.tmpdir(), 'bakery-trees', zip.sha256Hex) };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Run with the staged runtime, and remove its unpacked tree after. */
async function withRuntime<T>(run: (image: BuiltImage) => Promise<T>): Promise<T> {
  const staged = runtime;
  if (!staged) throw new Error('no runtime staged');
  try {
    return await run(staged.image);
  } finally {
    await rm(staged.treeDir, { recursive: true, force: true });
    runtime = undefined;
  }
}

/** The bake archive of examples/hello with managed names, uploaded under bakes/ in the source bucket. */
async function stageSource(aws: FakeAccount): Promise<void> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'bakery-iam-source-'));
  try {
    const spec = JSON.parse(await readFile(path.join(PROJECT_ROOT, 'examples', 'hello', 'bake.json'), 'utf8'));
    spec.functions[0].name = FN;
    spec.layer.name = LAYER_NAME;
    await mkdir(path.join(work, 'tree', 'src'), { recursive: true });
    await writeFile(path.join(work, 'tree', 'bake.json'), JSON.stringify(spec));
    await writeFile(
      path.join(work, 'tree', 'src', 'index.mjs'),
      await readFile(path.join(PROJECT_ROOT, 'examples', 'hello', 'src', 'index.mjs')),
    );
    const zip = await zipTree(path.join(work, 'tree'), path.join(work, 'hello.zip'));
    aws.putObject('bakes/hello.zip', await readFile(zip.file), SOURCE_BUCKET);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export interface Scenario {
  fn: string;
  name: string;
  fails?: boolean;
  prepare: (aws: FakeAccount) => Promise<void> | void;
  run: (ctx: { deps: Deps; slack: SlackCallbackDeps; images: ImageEventDeps; triggers: TriggerDeps; aws: FakeAccount }) => Promise<unknown>;
  /** What outside HTTP answers (Slack, layer downloads, nodejs.org); Slack's "ok" by default. */
  fetch?: (url: string | URL | Request) => Promise<Response>;
}

const FN = 'baked-hello';
const BAKE_ID = 'hello-20261122T073000-abcd';
const LAYER_NAME = 'baked-hello-node22';
const LAYER_ARN = `${LAYER_PREFIX}${LAYER_NAME}:3`;
/** An extension layer AWS publishes from its own account, listed in a spec's `functions[].layers`. */
const AWS_EXTENSION_LAYER = 'arn:aws:lambda:eu-west-1:580247275435:layer:LambdaInsightsExtension:53';

/** The staged code zip of FN: its key and reference (the bytes are `code`). */
const staged = (code: Buffer) => {
  const hex = sha256(code).toString('hex');
  const key = `code/${FN}/${hex}.zip`;
  return { key, ref: { uri: `s3://${BUCKET}/${key}`, sha256Hex: hex, size: code.length, sha256Base64: sha256(code).toString('base64') } };
};
const CODE = Buffer.from('code zip');
/** Just over the direct-upload limit: Lambda gets it from S3. */
const BIG_CODE = Buffer.alloc(DIRECT_UPLOAD_MAX_BYTES + 1, 1);

const bake = (options: { layers?: string[]; code?: Buffer } = {}): ResolvedBake => {
  const b = resolvedBake({
    bakeId: BAKE_ID,
    functions: [
      functionSpec(
        FN,
        [{ name: 'says hello', expect: { result: { ok: true }, match: 'exact' } }],
        options.layers ? { layers: options.layers } : {},
      ),
    ],
    resolved: [resolvedFunction(FN, { code: staged(options.code ?? CODE).ref })],
  });
  // Layers too are named with the managed prefix.
  return { ...b, spec: { ...b.spec, layer: { ...b.spec.layer, name: LAYER_NAME } } };
};
const layer = () => publishedLayer({ name: LAYER_NAME, arn: LAYER_ARN, version: 3 });
const versions = () => publishedVersions([FN, '8']);

const json = (value: unknown) => new Response(JSON.stringify(value), { status: 200, headers: { 'content-type': 'application/json' } });

/** What a released bake leaves behind: its ledger entry and manifest, the function on the version. */
function released(aws: FakeAccount, layerArn = LAYER_ARN) {
  const manifest = JSON.stringify({
    bakeId: 'b1',
    layer: {
      arn: layerArn,
      version: 3,
      codeSha256: sha256('layer zip').toString('base64'),
      sha256Hex: sha256('layer zip').toString('hex'),
      size: 9,
    },
    functions: [
      {
        name: FN,
        version: '5',
        codeSha256: 'code=',
        alias: 'live',
        layers: [layerArn],
        runtime: 'provided.al2023',
        handler: 'index.handler',
        environment: [],
      },
    ],
  });
  aws.putObject(manifestKey('b1'), manifest);
  aws.putItem({
    pk: LEDGER_PK,
    sk: '2026-11-22T07:30:00.000Z#b1#0001',
    type: 'released',
    entry: {
      type: 'released',
      bakeId: 'b1',
      at: '2026-11-22T07:30:00.000Z',
      trigger: { type: 'cli', user: 'ana' },
      layer: { arn: layerArn, version: 3, codeSha256: 'l=' },
      functions: [{ name: FN, alias: 'live', from: null, to: '5', changed: true }],
      manifest: { uri: `s3://${BUCKET}/${manifestKey('b1')}`, sha256Hex: sha256(manifest).toString('hex'), size: manifest.length },
    },
  });
  aws.addFunction(FN, [{ version: '5', codeSha256: 'code=', layers: [layerArn] }]);
  aws.addLayerVersion(LAYER_NAME, Buffer.from('layer zip'));
  aws.addLayerVersion(LAYER_NAME, Buffer.from('layer zip'));
  aws.addLayerVersion(LAYER_NAME, Buffer.from('layer zip'));
}

function signedClick(secret: string, value: string, action = APPROVE_ACTION) {
  const payload = {
    type: 'block_actions',
    user: { id: 'U0ALICE01', username: 'alice', team_id: 'T0TEAM' },
    channel: { id: 'C0RELEASES', name: 'releases' },
    container: { type: 'message', channel_id: 'C0RELEASES', message_ts: '1732262400.000100' },
    response_url: 'https://hooks.slack.com/actions/T0TEAM/1/abc',
    actions: [{ action_id: action, block_id: 'bakery_approval', value, type: 'button' }],
  };
  const body = `payload=${encodeURIComponent(JSON.stringify(payload))}`;
  const timestamp = String(Math.floor(Date.now() / 1000));
  const hmac = createHmac('sha256', secret).update(`v0:${timestamp}:`).update(body).digest('hex');
  return {
    headers: {
      'x-slack-request-timestamp': timestamp,
      'x-slack-signature': `v0=${hmac}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    rawBody: Buffer.from(body),
  };
}

const waitingApproval = (aws: FakeAccount) => {
  const record = approvalRecord({
    bakeId: BAKE_ID,
    approvers: [],
    expiresAt: '2099-01-01T00:00:00.000Z',
    message: { channel: 'C0RELEASES', ts: '1732262400.000100' },
  });
  const { pk: _pk, sk: _sk, ...rest } = { ...approvalKey(record.id), ...record };
  aws.putItem({ ...approvalKey(record.id), ...rest });
  aws.putItem({ ...bakeApprovalKey(BAKE_ID), approvalId: record.id });
  return record;
};

export const scenarios: Scenario[] = [
  // ------------------------------------------------------------ ResolveBake
  {
    fn: 'resolveBake',
    name: 'an upload (a version of the source object): the spec read, the code staged, the base image resolved',
    prepare: (aws) => stageSource(aws),
    run: ({ deps }) =>
      TASKS.resolveBake(
        {
          source: { type: 's3', bucket: SOURCE_BUCKET, key: 'bakes/hello.zip', versionId: 'v1' },
          trigger: { type: 's3', bucket: SOURCE_BUCKET, key: 'bakes/hello.zip', versionId: 'v1' },
        },
        deps,
      ),
  },
  {
    fn: 'resolveBake',
    name: 'the scheduled rebuild of an unversioned source: compared with the release live now',
    prepare: async (aws) => {
      await stageSource(aws);
      released(aws);
    },
    run: ({ deps }) =>
      TASKS.resolveBake(
        {
          source: { type: 's3', bucket: SOURCE_BUCKET, key: 'bakes/hello.zip', versionId: null },
          trigger: { type: 'schedule', scheduleArn: null },
        },
        deps,
      ),
    // nodejs.org's index names no newer Node.js 22 than the pinned one: nothing to download.
    fetch: async () => json([{ version: 'v22.23.3', files: ['linux-x64', 'linux-arm64'] }]),
  },

  // ------------------------------------------------------------ BuildImage
  {
    fn: 'buildImage',
    name: 'a new bake key: its recipe version, the distribution, the image, the task token stored',
    prepare: () => {},
    run: ({ deps }) => TASKS.buildImage({ bake: bake(), taskToken: TASK_TOKEN }, deps),
  },
  {
    fn: 'buildImage',
    name: 'a retried task of a key whose recipe version exists: the recipe is read and reused',
    prepare: () => {},
    run: async ({ deps }) => {
      await TASKS.buildImage({ bake: bake(), taskToken: TASK_TOKEN }, deps);
      return TASKS.buildImage({ bake: bake(), taskToken: `${TASK_TOKEN}-retry` }, deps);
    },
  },
  {
    fn: 'buildImage',
    name: 'a cached bake key: the runtime zip is checked, the bake noted, the task resumed at once',
    prepare: (aws) => {
      const b = bake();
      const zip = Buffer.from('runtime zip');
      aws.putObject('builds/images/ami-00000000000000001/runtime.zip', zip);
      aws.putItem({
        ...buildCacheKey(b.bakeKey),
        imageArn: `${IMAGE_ARN_PREFIX}bakery-dev-node22-by-key/1.0.1/1`,
        image: {
          ...builtImage(`s3://${BUCKET}/builds/images/ami-00000000000000001/runtime.zip`),
          bakeKey: b.bakeKey,
          imageArn: `${IMAGE_ARN_PREFIX}bakery-dev-node22-by-key/1.0.1/1`,
          runtime: {
            uri: `s3://${BUCKET}/builds/images/ami-00000000000000001/runtime.zip`,
            sha256Hex: sha256(zip).toString('hex'),
            size: zip.length,
          },
        },
      });
    },
    run: ({ deps }) => TASKS.buildImage({ bake: bake(), taskToken: TASK_TOKEN }, deps),
  },

  // ------------------------------------------------------------ PublishLayer
  {
    fn: 'publishLayer',
    name: 'a new runtime: zipped, published inline, its zip facts recorded',
    prepare: (aws) => stageRuntime(aws, 'small'),
    run: ({ deps }) => withRuntime((image) => TASKS.publishLayer({ bake: bake(), image }, deps)),
  },
  {
    fn: 'publishLayer',
    name: 'a runtime zipped before: the layer version with its CodeSha256 is found and reused',
    prepare: (aws) => stageRuntime(aws, 'small'),
    run: ({ deps }) =>
      withRuntime(async (image) => {
        await TASKS.publishLayer({ bake: bake(), image }, deps);
        return TASKS.publishLayer({ bake: bake(), image }, deps);
      }),
  },
  {
    fn: 'publishLayer',
    name: 'a layer zip over the direct-upload limit: staged in S3, published from there',
    prepare: (aws) => stageRuntime(aws, 'big'),
    run: ({ deps }) => withRuntime((image) => TASKS.publishLayer({ bake: bake(), image }, deps)),
  },

  // ------------------------------------------------------------ PublishVersion
  {
    fn: 'publishVersion',
    name: 'a new function on the baked layer and an AWS-published extension layer',
    prepare: (aws) => {
      aws.putObject(staged(CODE).key, CODE);
      aws.addLayerVersion(LAYER_NAME, Buffer.from('layer zip'));
    },
    run: ({ deps }) => TASKS.publishVersion({ bake: bake({ layers: [AWS_EXTENSION_LAYER] }), layer: layer() }, deps),
  },
  {
    fn: 'publishVersion',
    name: 'an existing function, its code over the direct-upload limit (through S3)',
    prepare: (aws) => {
      aws.putObject(staged(BIG_CODE).key, BIG_CODE);
      aws.addFunction(FN, [{ version: '5' }]);
    },
    run: async ({ deps }) => {
      try {
        return await TASKS.publishVersion({ bake: bake({ code: BIG_CODE }), layer: layer() }, deps);
      } finally {
        // The artefact store keeps what it fetched (a Lambda's /tmp goes with it); 49 MiB should not stay here.
        await rm(path.join(os.tmpdir(), 'bakery-artefacts', staged(BIG_CODE).ref.sha256Hex), { recursive: true, force: true });
      }
    },
  },

  // ------------------------------------------------------------ Validate
  {
    fn: 'validate',
    name: 'every case passes; the report is stored',
    prepare: (aws) => {
      aws.addFunction(FN, [{ version: '8' }]);
      aws.answers.set(FN, { ok: true });
    },
    run: ({ deps }) => TASKS.validate({ bake: bake(), versions: versions() }, deps),
  },
  {
    fn: 'validate',
    name: 'a case fails: ValidationFailedError, the report is stored',
    fails: true,
    prepare: (aws) => {
      aws.addFunction(FN, [{ version: '8' }]);
      aws.answers.set(FN, { ok: false });
    },
    run: ({ deps }) => TASKS.validate({ bake: bake(), versions: versions() }, deps),
  },

  // ------------------------------------------------------------ RequestApproval
  {
    fn: 'requestApproval',
    name: 'stores the approval with its token and asks in Slack',
    prepare: (aws) => aws.addFunction(FN, [{ version: '5' }]),
    run: ({ deps }) =>
      TASKS.requestApproval(
        { bake: bake(), layer: layer(), versions: versions(), validation: passedValidation(versions()), taskToken: TASK_TOKEN },
        deps,
      ),
  },
  {
    fn: 'requestApproval',
    name: 'a retried request finds the approval and hands it its new token',
    prepare: (aws) => {
      aws.addFunction(FN, [{ version: '5' }]);
    },
    run: async ({ deps }) => {
      const input = { bake: bake(), layer: layer(), versions: versions(), validation: passedValidation(versions()), taskToken: TASK_TOKEN };
      await TASKS.requestApproval(input, deps);
      return TASKS.requestApproval({ ...input, taskToken: `${TASK_TOKEN}-retry` }, deps);
    },
  },

  // ------------------------------------------------------------ Release, ShiftTraffic, UndoRelease
  {
    fn: 'release',
    name: 'moves the alias from the version the approval saw',
    prepare: (aws) => aws.addFunction(FN, [{ version: '5' }, { version: '8' }]),
    run: ({ deps, aws }) => {
      const live = aws.functions.get(FN)?.aliases.get('live');
      if (live) live.version = '5';
      return TASKS.release({ versions: versions() }, deps);
    },
  },
  {
    fn: 'release',
    name: 'a gradual release checks its alarms, and creates an alias that was not there',
    prepare: (aws) => {
      aws.addFunction(FN, [{ version: '5' }, { version: '8' }], 'other');
    },
    run: ({ deps }) => {
      const gradual = bake();
      const spec = { ...gradual.spec, release: { steps: [{ weight: 10, minutes: 1 }], alarms: ['baked-hello-errors'] } };
      return TASKS.release({ versions: versions(), bake: { ...gradual, spec } }, deps);
    },
  },
  {
    fn: 'release',
    name: 'a later move fails: the alias this release created is removed again',
    fails: true,
    prepare: (aws) => {
      aws.addFunction(FN, [{ version: '5' }, { version: '8' }], 'other');
      // baked-bye's alias is on version 2; moving it to 3 is refused.
      aws.addFunction('baked-bye', [{ version: '3' }, { version: '2' }]);
      aws.refuseAliasUpdates.add('baked-bye');
    },
    run: ({ deps }) =>
      TASKS.release(
        { versions: { functions: [...versions().functions, { name: 'baked-bye', version: '3', codeSha256: 'c=', alias: 'live' }] } },
        deps,
      ),
  },
  {
    fn: 'shiftTraffic',
    name: 'the alarms are quiet: the next step',
    prepare: (aws) => {
      aws.addFunction(FN, [{ version: '5' }, { version: '8' }]);
      const live = aws.functions.get(FN)?.aliases.get('live');
      if (live) Object.assign(live, { version: '5', weights: { '8': 0.1 } });
    },
    run: ({ deps }) =>
      TASKS.shiftTraffic(
        {
          release: {
            functions: [{ name: FN, alias: 'live', from: '5', to: '8', changed: true }],
            gradual: {
              step: 0,
              steps: [
                { weight: 10, seconds: 60 },
                { weight: 50, seconds: 60 },
              ],
              alarms: ['baked-hello-errors'],
              waitSeconds: 60,
              done: false,
              functions: [{ name: FN, alias: 'live', from: '5', to: '8', revisionId: 'rev-1' }],
            },
          },
        },
        deps,
      ),
  },
  {
    fn: 'shiftTraffic',
    name: 'an alarm fires: the weights move back, and the alias the release created is removed',
    fails: true,
    prepare: (aws) => {
      aws.addFunction(FN, [{ version: '5' }, { version: '8' }]);
      const live = aws.functions.get(FN)?.aliases.get('live');
      if (live) Object.assign(live, { version: '5', weights: { '8': 0.1 } });
      aws.addFunction('baked-bye', [{ version: '3' }]);
      aws.alarming.add('baked-hello-errors');
    },
    run: ({ deps }) =>
      TASKS.shiftTraffic(
        {
          release: {
            functions: [
              { name: FN, alias: 'live', from: '5', to: '8', changed: true },
              { name: 'baked-bye', alias: 'live', from: null, to: '3', changed: true },
            ],
            gradual: {
              step: 0,
              steps: [
                { weight: 10, seconds: 60 },
                { weight: 50, seconds: 60 },
              ],
              alarms: ['baked-hello-errors'],
              waitSeconds: 60,
              done: false,
              functions: [{ name: FN, alias: 'live', from: '5', to: '8', revisionId: 'rev-1' }],
            },
          },
        },
        deps,
      ),
  },
  {
    fn: 'undoRelease',
    name: 'moves the alias back, and removes the alias the release created',
    prepare: (aws) => {
      aws.addFunction(FN, [{ version: '5' }, { version: '8' }]);
      aws.addFunction('baked-bye', [{ version: '3' }]);
    },
    run: ({ deps }) =>
      TASKS.undoRelease(
        {
          release: {
            functions: [
              { name: FN, alias: 'live', from: '5', to: '8', changed: true },
              { name: 'baked-bye', alias: 'live', from: null, to: '3', changed: true },
            ],
            gradual: null,
          },
        },
        deps,
      ),
  },

  // ------------------------------------------------------------ RecordSuccess, RecordFailure
  {
    fn: 'recordSuccess',
    name: 'the manifest and the ledger entry; a retry appends nothing',
    prepare: () => {},
    run: async ({ deps }) => {
      const input = {
        bake: bake(),
        layer: layer(),
        versions: versions(),
        release: { functions: [{ name: FN, alias: 'live', from: '5', to: '8', changed: true }], gradual: null },
      };
      await TASKS.recordSuccess(input, deps);
      return TASKS.recordSuccess(input, deps);
    },
  },
  {
    fn: 'recordFailure',
    name: 'Validate failed: the stored report, the aliases as they are, the ledger, the manifest, Slack',
    prepare: (aws) => {
      aws.addFunction(FN, [{ version: '5' }, { version: '8' }]);
      aws.putObject(validationReportKey(BAKE_ID), JSON.stringify({ ...passedValidation(versions()), passed: false }));
    },
    run: ({ deps }) =>
      TASKS.recordFailure(
        {
          bake: bake(),
          layer: layer(),
          versions: versions(),
          errors: { Validate: { Error: 'ValidationFailedError', Cause: 'baked-hello says hello: expected ok' } },
        },
        deps,
      ),
  },
  {
    fn: 'recordFailure',
    name: 'the approval timed out: it is closed as expired, then recorded',
    prepare: (aws) => {
      aws.addFunction(FN, [{ version: '5' }, { version: '8' }]);
      waitingApproval(aws);
    },
    run: ({ deps }) =>
      TASKS.recordFailure(
        {
          bake: bake(),
          layer: layer(),
          versions: versions(),
          errors: { RequestApproval: { Error: 'ApprovalTimedOutError', Cause: 'no decision in 3600 s' } },
        },
        deps,
      ),
  },
  {
    fn: 'recordFailure',
    name: 'a retry of a recorded failure appends nothing',
    prepare: (aws) => aws.addFunction(FN, [{ version: '5' }]),
    run: async ({ deps }) => {
      const input = { bake: bake(), errors: { PublishLayer: { Error: 'LayerPublishError', Cause: 'denied' } } };
      await TASKS.recordFailure(input, deps);
      return TASKS.recordFailure(input, deps);
    },
  },

  // ------------------------------------------------------------ the Slack callback
  {
    fn: 'slackCallback',
    name: 'an approver clicks Approve: the decision once, the bake resumed, the message updated',
    prepare: (aws) => {
      waitingApproval(aws);
    },
    run: async ({ slack }) => {
      const secret = await slack.signingSecret();
      const result = await handleSlackInteraction(signedClick(secret, approvalRecord().id), slack);
      await result.followUp;
      if (result.response.statusCode !== 200) throw new Error(`answered ${result.response.statusCode}`);
      return result;
    },
  },

  {
    fn: 'slackCallback',
    name: 'an approver clicks Reject: the bake fails with the rejection',
    prepare: (aws) => {
      waitingApproval(aws);
    },
    run: async ({ slack }) => {
      const secret = await slack.signingSecret();
      const result = await handleSlackInteraction(signedClick(secret, approvalRecord().id, REJECT_ACTION), slack);
      await result.followUp;
      if (result.response.statusCode !== 200) throw new Error(`answered ${result.response.statusCode}`);
      return result;
    },
  },

  // ------------------------------------------------------------ the drift check
  {
    fn: 'driftCheck',
    name: 'what is live is what was released, its layer included (an AWS extension layer beside it)',
    prepare: (aws) => released(aws),
    run: ({ deps }) => driftCheck(deps),
    fetch: async (url) =>
      String(url).includes('-layers.') ? new Response(Buffer.from('layer zip')) : json({ ok: true, ts: '1.0', channel: 'C1' }),
  },

  {
    fn: 'driftCheck',
    name: 'the alias was moved by hand: Slack is told',
    prepare: (aws) => {
      released(aws);
      const live = aws.functions.get(FN)?.aliases.get('live');
      if (live) live.version = '4';
      aws.functions.get(FN)?.versions.unshift({
        version: '4',
        codeSha256: 'old=',
        layers: [],
        environment: {},
        handler: 'index.handler',
        runtime: 'provided.al2023',
      });
    },
    run: ({ deps }) => driftCheck(deps),
    fetch: async (url) =>
      String(url).includes('-layers.') ? new Response(Buffer.from('layer zip')) : json({ ok: true, ts: '1.0', channel: 'C1' }),
  },

  // ------------------------------------------------------------ triggers
  {
    fn: 'startBake',
    name: 'an upload starts its bake; a duplicate event starts nothing',
    prepare: () => {},
    run: ({ triggers }) => startS3Bake({ bucket: SOURCE_BUCKET, key: 'bakes/hello.zip', versionId: 'v1', sequencer: null }, triggers),
  },
  {
    fn: 'scheduledRebake',
    name: 'every current source under the prefix is baked again',
    prepare: (aws) => aws.putObject('bakes/hello.zip', 'zip', SOURCE_BUCKET),
    run: ({ triggers }) =>
      scheduledRebake(
        {
          scheduleArn: 'arn:aws:scheduler:eu-west-1:123456789012:schedule/default/bakery-dev-patch-rebuild',
          scheduledTime: '2026-11-23T00:00:00Z',
        },
        { bucket: triggers.source.bucket(), prefix: triggers.source.prefix() },
        triggers,
      ),
  },

  // ------------------------------------------------------------ image build events
  {
    fn: 'imageBuildEvents',
    name: 'a build is AVAILABLE: the token is marked, the build cached, the bake resumed',
    prepare: (aws) => {
      const arn = `${IMAGE_ARN_PREFIX}bakery-dev-node22-by-key/1.0.1/1`;
      aws.images.set(arn, { arn, ami: 'ami-00000000000000001', status: 'AVAILABLE' });
      aws.putObject('builds/images/ami-00000000000000001/runtime.zip', 'runtime zip');
      aws.putItem({
        ...imageBuildTokenKey(arn),
        taskToken: TASK_TOKEN,
        bakeId: BAKE_ID,
        bakeKey: '42'.repeat(32),
        recipe: 'node22',
        createdAt: '2026-11-22T07:30:00.000Z',
      });
    },
    run: ({ images }) =>
      handleImageStateChange(
        {
          buildId: `${IMAGE_ARN_PREFIX}bakery-dev-node22-by-key/1.0.1/1`,
          status: 'AVAILABLE',
          reason: null,
          at: '2026-11-22T08:00:00Z',
          claim: 'event-1',
        },
        images,
      ),
  },
  {
    fn: 'imageBuildEvents',
    name: 'a build FAILED: the bake fails with the reason',
    prepare: (aws) => {
      const arn = `${IMAGE_ARN_PREFIX}bakery-dev-node22-by-key/1.0.1/2`;
      aws.images.set(arn, { arn, ami: 'ami-00000000000000002', status: 'FAILED' });
      aws.putItem({
        ...imageBuildTokenKey(arn),
        taskToken: TASK_TOKEN,
        bakeId: BAKE_ID,
        bakeKey: '42'.repeat(32),
        recipe: 'node22',
        createdAt: '2026-11-22T07:30:00.000Z',
      });
    },
    run: ({ images }) =>
      handleImageStateChange(
        {
          buildId: `${IMAGE_ARN_PREFIX}bakery-dev-node22-by-key/1.0.1/2`,
          status: 'FAILED',
          reason: 'component failed',
          at: '2026-11-22T08:00:00Z',
          claim: 'event-2',
        },
        images,
      ),
  },
];

export { AWS_EXTENSION_LAYER };
