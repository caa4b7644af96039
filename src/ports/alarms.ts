/** The alarms a gradual release checks between traffic steps (CloudWatch in AWS, a file locally). */

export type AlarmState = 'OK' | 'ALARM' | 'INSUFFICIENT_DATA';

/** The state of named alarms (CloudWatch in AWS, a file in the state directory locally). */
export interface AlarmMonitor {
  /** Every name asked for, with its state; `null` when no such alarm exists. */
  states(names: string[]): Promise<Array<{ name: string; state: AlarmState | null }>>;
}
