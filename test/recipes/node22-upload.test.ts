/**
 * The upload the node22 document's test phase makes in AWS, run here with stand-ins for
 * the two things only an Image Builder test instance has: the instance metadata service
 * (`curl`) and the AWS CLI (`aws`). Everything else is the real document and the real
 * tools: the tree is built, zipped by the same script, and its SHA-256 computed. The
 * node binary is a stand-in that runs the project's Node 22 (test/helpers/fixture-runtime.ts):
 * what is tested is the upload, not the 120 MB binary.
 */
import { createHash } from 'node:crypto';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RUNTIME_PREFIX, runtimeKey } from '../../src/adapters/aws/image-builder.ts';
import { treeSha256 } from '../../src/adapters/local/image-builder.ts';
import { PROJECT_ROOT } from '../../src/local/asl.ts';
import { loadRecipe, resolveLocalSources } from '../../src/recipes/recipe.ts';
import { runDocument, type StepEvent } from '../../src/recipes/toe.ts';
import { unzipTo } from '../../src/zip/deterministic.ts';
import { tempDir } from '../adapters/aws/fixtures.ts';
import { standInNodeBinary } from '../helpers/fixture-runtime.ts';

const AMI = 'ami-0a1b2c3d4e5f67890';
const DOCUMENT = path.join(PROJECT_ROOT, 'layers/node22/components/node22-runtime.yml');

/** IMDSv2 as the instance sees it: a token for the PUT, then metadata only with that token. */
const FAKE_CURL = `#!/usr/bin/env bash
set -euo pipefail
url="\${@: -1}"
case "$*" in
  *"-X PUT"*api/token*) echo -n imds-token; exit 0 ;;
esac
[[ "$*" == *"X-aws-ec2-metadata-token: imds-token"* ]] || { echo 'no IMDSv2 token' >&2; exit 22; }
case "$url" in
  */meta-data/ami-id) echo -n ${AMI} ;;
  */meta-data/placement/region) echo -n eu-west-1 ;;
  *) echo "unexpected $url" >&2; exit 22 ;;
esac
`;

/** Records its arguments and keeps a copy of --body, as S3 would. */
const fakeAws = (record: string) => `#!/usr/bin/env bash
set -euo pipefail
printf '%s\\n' "$@" > '${record}/args'
while [ $# -gt 0 ]; do
  if [ "$1" = --body ]; then cp "$2" '${record}/uploaded.zip'; fi
  shift
done
echo '{"ETag":"\\"x\\""}'
`;

describe('the node22 test phase in AWS', () => {
  let work: { dir: string; remove: () => Promise<void> };
  let events: StepEvent[];
  let layerRoot: string;
  let record: string;
  let node: { NodeSource: string; NodeSha256: string };

  beforeAll(async () => {
    work = await tempDir('bakery-node22-upload-');
    const bin = path.join(work.dir, 'bin');
    record = path.join(work.dir, 'record');
    layerRoot = path.join(work.dir, 'layer');
    await mkdir(bin, { recursive: true });
    await mkdir(record, { recursive: true });
    await writeFile(path.join(bin, 'curl'), FAKE_CURL);
    await writeFile(path.join(bin, 'aws'), fakeAws(record));
    await chmod(path.join(bin, 'curl'), 0o755);
    await chmod(path.join(bin, 'aws'), 0o755);
    node = await standInNodeBinary(work.dir);

    const recipe = await loadRecipe(path.join(PROJECT_ROOT, 'layers/node22'));
    events = [];
    await runDocument(
      DOCUMENT,
      {
        ...recipe.parameters,
        ...resolveLocalSources(recipe, PROJECT_ROOT),
        ...node,
        LayerRoot: layerRoot,
        WorkDir: path.join(work.dir, 'work'),
        RuntimeUpload: `s3://bakery-dev-artefacts/${RUNTIME_PREFIX}`,
      },
      { cwd: work.dir, env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` }, onStep: (e) => events.push(e) },
    );
  }, 120_000);

  afterAll(async () => {
    await work?.remove();
  });

  it('uploads the tested tree last, with one PUT to <prefix><AMI id>/runtime.zip carrying its SHA-256', async () => {
    const finished = events.filter((e) => e.status !== 'started');
    expect(finished.at(-1)).toMatchObject({ phase: 'test', step: 'UploadRuntime', status: 'succeeded' });
    const zip = await readFile(path.join(record, 'uploaded.zip'));
    const digest = createHash('sha256').update(zip).digest();
    const args = (await readFile(path.join(record, 'args'), 'utf8')).trimEnd().split('\n');
    expect(args).toEqual([
      's3api',
      'put-object',
      '--region',
      'eu-west-1',
      '--bucket',
      'bakery-dev-artefacts',
      '--key',
      runtimeKey(AMI),
      '--body',
      path.join(work.dir, 'work', 'runtime.zip'),
      '--content-type',
      'application/zip',
      '--checksum-sha256',
      digest.toString('base64'),
      '--metadata',
      `sha256=${digest.toString('hex')}`,
    ]);
    expect(finished.at(-1)?.output).toContain(
      `uploaded s3://bakery-dev-artefacts/${runtimeKey(AMI)} (${zip.length} bytes, SHA-256 ${digest.toString('hex')})`,
    );
  });

  it('zips exactly the layer tree, modes included, in a form the artefact store unpacks', async () => {
    const unpacked = path.join(work.dir, 'unpacked');
    await unzipTo(path.join(record, 'uploaded.zip'), unpacked);
    const [got, built] = [await treeSha256(unpacked), await treeSha256(layerRoot)];
    expect(got).toEqual(built);
    expect(got.files).toBe(3);
    await rm(unpacked, { recursive: true, force: true });
  });

  it('refuses an upload location that is not an S3 prefix', async () => {
    const recipe = await loadRecipe(path.join(PROJECT_ROOT, 'layers/node22'));
    const failed = await runDocument(
      DOCUMENT,
      {
        ...recipe.parameters,
        ...resolveLocalSources(recipe, PROJECT_ROOT),
        ...node,
        LayerRoot: layerRoot,
        WorkDir: path.join(work.dir, 'work2'),
        RuntimeUpload: '/tmp/somewhere',
      },
      { cwd: work.dir, phases: ['test'] },
    ).catch((error: unknown) => error as Error);
    expect(failed).toBeInstanceOf(Error);
    expect((failed as Error).message).toContain('test › UploadRuntime failed (exit 1)');
    expect((failed as Error).message).toContain('RuntimeUpload must be s3://<bucket>/<prefix>/ or none, not /tmp/somewhere');
  });
});
