import { describe, expect, it } from 'vitest';
import { fromEnv, readSettings, recipesDir } from '../../../src/adapters/aws/config.ts';
import { ConfigError } from '../../../src/errors.ts';

describe('readSettings', () => {
  it('returns the requested settings', () => {
    // Prepare
    const env = { ARTEFACTS_BUCKET: 'bakery-artefacts', TABLE_NAME: 'bakery' };

    // Act
    const settings = readSettings(['ARTEFACTS_BUCKET', 'TABLE_NAME'], env);

    // Assess
    expect(settings).toEqual({ ARTEFACTS_BUCKET: 'bakery-artefacts', TABLE_NAME: 'bakery' });
  });

  it('fails once with a named error listing every missing or malformed setting', () => {
    // Prepare
    const env = { TABLE_NAME: '', FUNCTION_ROLE_ARN: 'bakery-role' };

    // Act
    const read = () => readSettings(['ARTEFACTS_BUCKET', 'TABLE_NAME', 'FUNCTION_ROLE_ARN'], env);

    // Assess
    expect(read).toThrow(ConfigError);
    expect(read).toThrow(/ARTEFACTS_BUCKET is not set, TABLE_NAME is not set, FUNCTION_ROLE_ARN: expected an ARN/);
    try {
      read();
    } catch (error) {
      expect((error as Error).name).toBe('ConfigError');
    }
  });

  it('reads only what is asked: Slack settings are not needed to read the bucket', () => {
    // Prepare
    const env = { ARTEFACTS_BUCKET: 'b' };

    // Act + Assess
    expect(readSettings(['ARTEFACTS_BUCKET'], env)).toEqual({ ARTEFACTS_BUCKET: 'b' });
  });
});

describe('fromEnv', () => {
  it('reads the variable when called, not when created', () => {
    // Prepare
    const env: NodeJS.ProcessEnv = {};
    const bucket = fromEnv('ARTEFACTS_BUCKET', env);

    // Act
    env.ARTEFACTS_BUCKET = 'set-later';

    // Assess
    expect(bucket()).toBe('set-later');
  });
});

describe('recipesDir', () => {
  it('prefers RECIPES_DIR and defaults to the layers/ of the task root', () => {
    expect(recipesDir({ RECIPES_DIR: '/opt/recipes', LAMBDA_TASK_ROOT: '/var/task' })).toBe('/opt/recipes');
    expect(recipesDir({ LAMBDA_TASK_ROOT: '/var/task' })).toBe('/var/task/layers');
    expect(() => recipesDir({})).toThrow(ConfigError);
  });
});
