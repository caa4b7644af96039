import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BAKERY_BIN, bakeryCommand } from '../../src/util/self-command.ts';

const PROJECT_ROOT = path.dirname(path.dirname(BAKERY_BIN));

describe('bakeryCommand', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'bakery-self-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('names bin/bakery.mjs relative to the project root, never `npx bakery`', () => {
    expect(bakeryCommand({ env: { PATH: '' }, cwd: PROJECT_ROOT })).toBe('node bin/bakery.mjs');
  });

  it('names the absolute path from outside the checkout', () => {
    expect(bakeryCommand({ env: { PATH: '' }, cwd: dir })).toBe(`node ${BAKERY_BIN}`);
  });

  it('says `bakery` when the first bakery on PATH is this checkout (npm link)', async () => {
    await symlink(BAKERY_BIN, path.join(dir, 'bakery'));
    expect(bakeryCommand({ env: { PATH: dir }, cwd: dir })).toBe('bakery');
  });

  it('does not trust another package named bakery earlier on PATH', async () => {
    const other = path.join(dir, 'other');
    await mkdir(other);
    await writeFile(path.join(other, 'bakery'), '#!/bin/sh\necho unrelated\n');
    await chmod(path.join(other, 'bakery'), 0o755);
    await symlink(BAKERY_BIN, path.join(dir, 'bakery'));
    expect(bakeryCommand({ env: { PATH: `${other}${path.delimiter}${dir}` }, cwd: PROJECT_ROOT })).toBe('node bin/bakery.mjs');
  });

  it('carries BAKERY_HOME along, absolute and quoted', () => {
    expect(bakeryCommand({ env: { PATH: '', BAKERY_HOME: 'my home' }, cwd: PROJECT_ROOT })).toBe(
      `BAKERY_HOME='${path.join(PROJECT_ROOT, 'my home')}' node bin/bakery.mjs`,
    );
  });
});
