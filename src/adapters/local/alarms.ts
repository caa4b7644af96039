import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { InputError } from '../../errors.ts';
import type { AlarmMonitor, AlarmState } from '../../ports/alarms.ts';
import { readJsonIfExists, writeJsonAtomic } from '../../util/fsx.ts';
import type { LocalHome } from './home.ts';

export const ALARM_STATES: readonly AlarmState[] = ['OK', 'ALARM', 'INSUFFICIENT_DATA'];

export interface LocalAlarm {
  name: string;
  state: AlarmState;
  reason: string | null;
  updatedAt: string;
}

/**
 * The local stand-in for CloudWatch alarms: one file per alarm under `<home>/alarms/`,
 * set with `bakery alarm set <name> ALARM|OK|INSUFFICIENT_DATA`, so a gradual release
 * can be watched and failed on this machine. One file each: two terminals setting two
 * alarms never overwrite each other.
 */
export class LocalAlarms implements AlarmMonitor {
  private readonly dir: string;

  constructor(home: LocalHome) {
    this.dir = home.path('alarms');
  }

  private file(name: string): string {
    return path.join(this.dir, `${encodeURIComponent(name)}.json`);
  }

  async states(names: string[]): Promise<Array<{ name: string; state: AlarmState | null }>> {
    return Promise.all(names.map(async (name) => ({ name, state: (await readJsonIfExists<LocalAlarm>(this.file(name)))?.state ?? null })));
  }

  async set(name: string, state: string, reason: string | null, at: Date): Promise<LocalAlarm> {
    if (!(ALARM_STATES as readonly string[]).includes(state)) {
      throw new InputError(`alarm state must be one of ${ALARM_STATES.join(', ')}, not ${state}`);
    }
    if (name.length < 1 || name.length > 255) throw new InputError('an alarm name has 1 to 255 characters');
    const alarm: LocalAlarm = { name, state: state as AlarmState, reason, updatedAt: at.toISOString() };
    await writeJsonAtomic(this.file(name), alarm);
    return alarm;
  }

  async list(): Promise<LocalAlarm[]> {
    const files = await readdir(this.dir).catch(() => [] as string[]);
    const alarms = await Promise.all(
      files.filter((f) => f.endsWith('.json') && !f.startsWith('.')).map((f) => readJsonIfExists<LocalAlarm>(path.join(this.dir, f))),
    );
    return alarms.filter((a): a is LocalAlarm => a !== undefined).sort((a, b) => a.name.localeCompare(b.name));
  }
}
