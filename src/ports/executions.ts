/**
 * Executions: what bakes that have not ended hold on to, so that `bakery prune` keeps it.
 * One adapter, the local journal of executions (src/local/journal.ts): in AWS, Step
 * Functions keeps the executions, and prune relies instead on the rules that need no
 * list of them (a version newer than every recorded bake stays, and so do the layers a
 * staying version uses; see docs/releases.md).
 */

export interface InFlightBake {
  bakeId: string;
  status: 'running' | 'waiting' | 'interrupted';
}

export interface ExecutionsInFlight {
  /** Layer versions such a bake published or reused. */
  layers: Array<InFlightBake & { arn: string }>;
  /** Function versions such a bake published or reused. */
  functions: Array<InFlightBake & { name: string; version: string }>;
  /**
   * Bakes inside PublishLayer or PublishVersion (entered, not returned): each may yet reuse
   * any version of these layers or functions.
   */
  publishing: Array<InFlightBake & { state: string; layers: string[]; functions: string[] }>;
}

export interface ExecutionRefs {
  inFlight(): Promise<ExecutionsInFlight>;
}
