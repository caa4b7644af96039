import { readFileSync } from 'node:fs';
import path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { S3ArtefactStore } from '../../src/adapters/aws/s3.ts';
import { aws, buildAwsDeps } from '../../src/compose/aws.ts';
import { ConfigError } from '../../src/errors.ts';

const s3 = mockClient(S3Client);

describe('buildAwsDeps', () => {
  afterEach(() => {
    s3.reset();
  });

  afterAll(() => {
    s3.restore();
  });

  it('builds every port without reading any configuration', () => {
    // Act
    const deps = buildAwsDeps({});

    // Assess
    expect(deps.artefacts).toBeInstanceOf(S3ArtefactStore);
    expect(Object.keys(deps).sort()).toEqual(
      [
        'alarms',
        'approvals',
        'artefacts',
        'callbacks',
        'clock',
        'functions',
        'ids',
        'imageBuilder',
        'invoker',
        'layers',
        'ledger',
        'notifier',
        'patches',
        'recipes',
        'sources',
      ].sort(),
    );
    expect(deps.ids.random()).toMatch(/^[0-9a-f]{16}$/);
    expect(deps.ids.random()).not.toBe(deps.ids.random());
  });

  it('fails with ConfigError naming the setting when a port is used unconfigured, before calling AWS', async () => {
    // Prepare
    const deps = buildAwsDeps({});

    // Act
    const put = deps.artefacts.putJson('manifests/x.json', {});

    // Assess
    await expect(put).rejects.toThrow(ConfigError);
    await expect(put).rejects.toThrow(/ARTEFACTS_BUCKET is not set/);
    expect(s3).not.toHaveReceivedAnyCommand();
  });

  it('reads recipes from RECIPES_DIR', async () => {
    const deps = buildAwsDeps({ RECIPES_DIR: path.resolve('layers') });

    await expect(deps.recipes.list()).resolves.toContain('node22');
    await expect(deps.recipes.find('node22')).resolves.toBe(path.resolve('layers', 'node22'));
  });

  it('is built once per container', () => {
    expect(aws.release()).toBe(aws.release());
  });
});

describe('the AWS composition', () => {
  it('has one dependency function for every function key of serverless.yml, and no other', () => {
    // Prepare
    const service = parse(readFileSync('serverless.yml', 'utf8'), { logLevel: 'error' }) as { functions: Record<string, unknown> };

    // Assess
    expect(Object.keys(aws).sort()).toEqual(Object.keys(service.functions).sort());
    for (const get of Object.values(aws)) expect(typeof get).toBe('function');
  });

  it('builds each composition once per container: the tasks share one, the triggers another', () => {
    expect(aws.resolveBake()).toBe(aws.release());
    expect(aws.driftCheck()).toBe(aws.release());
    expect(aws.startBake()).toBe(aws.scheduledRebake());
    expect(aws.startBake()).not.toBe(aws.release());
    expect(aws.slackCallback()).toBe(aws.slackCallback());
    expect(aws.imageBuildEvents()).toBe(aws.imageBuildEvents());
  });
});
