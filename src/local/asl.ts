import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isTaskName, type TaskName } from '../tasks.ts';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BAKE_ASL = path.join(PROJECT_ROOT, 'statemachines', 'bake.asl.json');

export interface AslTask {
  state: string;
  task: TaskName;
  callback: boolean;
}

type Definition = { States: Record<string, { Type: string; Resource?: string; Parameters?: { FunctionName?: unknown } }> };

/** serverless.yml function key → the logical id its Lambda gets in CloudFormation. */
export const logicalIdOf = (key: string): string => `${key[0]?.toUpperCase()}${key.slice(1)}LambdaFunction`;

/**
 * Which task each Task state runs, read from the ASL itself: the function a state
 * invokes is named by `Fn::GetAtt` on its logical id, exactly what the deployment resolves.
 */
export function tasksOf(definition: Definition): AslTask[] {
  const out: AslTask[] = [];
  for (const [state, def] of Object.entries(definition.States)) {
    if (def.Type !== 'Task') continue;
    const ref = def.Parameters?.FunctionName as { 'Fn::GetAtt'?: [string, string] } | undefined;
    const logicalId = ref?.['Fn::GetAtt']?.[0];
    const key = logicalId?.replace(/LambdaFunction$/, '');
    const task = key ? `${key[0]?.toLowerCase()}${key.slice(1)}` : undefined;
    if (!task || !isTaskName(task))
      throw new Error(`state ${state} invokes ${logicalId ?? 'an unknown function'}, which is not a bakery task`);
    out.push({ state, task, callback: def.Resource?.endsWith('.waitForTaskToken') ?? false });
  }
  return out;
}

export async function loadDefinition(file = BAKE_ASL): Promise<Definition & Record<string, unknown>> {
  return JSON.parse(await readFile(file, 'utf8')) as Definition & Record<string, unknown>;
}
