/**
 * The local runner checks the state machine definition with asl-validator before it runs
 * it, once per process per definition (src/local/runner.ts `checkDefinitionOnce`): a
 * definition that asl-validator refuses is refused on every run, before any state runs,
 * and a valid one still runs after it.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BAKE_ASL } from '../../src/local/asl.ts';
import { runBake } from '../../src/local/runner.ts';
import { makeWorkspace, type Workspace } from '../helpers/local-bake.ts';

let ws: Workspace | undefined;
afterEach(async () => {
  await ws?.cleanup();
  ws = undefined;
});

describe('the definition check of the local runner', () => {
  it('refuses a definition asl-validator refuses on every run, running no state, and runs the real one after', async () => {
    ws = await makeWorkspace();
    const definition = JSON.parse(await readFile(BAKE_ASL, 'utf8')) as { StartAt: string };
    // A StartAt that names no state: the schema check refuses it.
    const broken = path.join(ws.dir, 'broken.asl.json');
    await writeFile(broken, JSON.stringify({ ...definition, StartAt: 'NoSuchState' }));
    const entered: string[] = [];
    const options = {
      deps: ws.deps,
      approve: 'auto' as const,
      approver: 'tester',
      onEvent: (e: { type: string; state?: string }) => {
        if (e.type === 'entered' && e.state) entered.push(e.state);
      },
    };
    for (const bakeId of ['broken-1', 'broken-2']) {
      await expect(runBake(ws.request(bakeId), { ...options, definitionFile: broken })).rejects.toThrow(/NoSuchState|StartAt/);
    }
    expect(entered).toEqual([]);
    const outcome = await runBake(ws.request('real-1'), options);
    expect(outcome.status).toBe('succeeded');
    expect(entered[0]).toBe('ResolveBake');
  });
});
