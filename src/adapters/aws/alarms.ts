import { type CloudWatchClient, DescribeAlarmsCommand } from '@aws-sdk/client-cloudwatch';
import type { AlarmMonitor, AlarmState } from '../../ports/alarms.ts';
import { cloudWatchClient } from './clients.ts';
import { callAws } from './errors.ts';

/** DescribeAlarms takes at most 100 names per call. */
const NAMES_PER_CALL = 100;

const STATES = new Set<string>(['OK', 'ALARM', 'INSUFFICIENT_DATA']);

/** CloudWatch alarms by name, metric and composite alike (DescribeAlarms only returns metric alarms unless asked). */
export class CloudWatchAlarmMonitor implements AlarmMonitor {
  private readonly cloudWatch: CloudWatchClient;

  constructor(options: { client?: CloudWatchClient } = {}) {
    this.cloudWatch = options.client ?? cloudWatchClient;
  }

  async states(names: string[]): Promise<Array<{ name: string; state: AlarmState | null }>> {
    const found = new Map<string, AlarmState>();
    for (let i = 0; i < names.length; i += NAMES_PER_CALL) {
      const batch = names.slice(i, i + NAMES_PER_CALL);
      let token: string | undefined;
      do {
        const page = await callAws(`DescribeAlarms ${batch.join(', ')}`, () =>
          this.cloudWatch.send(
            new DescribeAlarmsCommand({
              AlarmNames: batch,
              AlarmTypes: ['MetricAlarm', 'CompositeAlarm'],
              ...(token ? { NextToken: token } : {}),
            }),
          ),
        );
        for (const alarm of [...(page.MetricAlarms ?? []), ...(page.CompositeAlarms ?? [])]) {
          if (alarm.AlarmName && alarm.StateValue && STATES.has(alarm.StateValue)) {
            found.set(alarm.AlarmName, alarm.StateValue as AlarmState);
          }
        }
        token = page.NextToken;
      } while (token);
    }
    return names.map((name) => ({ name, state: found.get(name) ?? null }));
  }
}
