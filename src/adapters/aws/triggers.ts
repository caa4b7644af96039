import { ListObjectVersionsCommand, type ListObjectVersionsCommandOutput, type S3Client } from '@aws-sdk/client-s3';
import { type SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import type { BakeStarter, SourceCatalog, SourceObject } from '../../ports/triggers.ts';
import type { BakeRequest } from '../../state.ts';
import { s3Client, sfnClient } from './clients.ts';
import { resolveSetting, type Setting } from './config.ts';
import { callAws, hasName } from './errors.ts';

/**
 * How much earlier than the StartExecution call a returned start date must be to say the
 * execution was there already. Lambda's and Step Functions' clocks are both NTP-synced:
 * a second is far beyond their skew, and a duplicate event arrives later than that.
 */
export const EXISTING_EXECUTION_SLACK_MS = 1000;

/**
 * Starts bakes as executions of the bake state machine, named by the caller. Step
 * Functions keeps a Standard execution's name for 90 days after it ends: a second start
 * with the same name and the same input while it runs returns that execution (the call
 * is idempotent, with the execution's own start date), and any other second start fails
 * with ExecutionAlreadyExists. Both mean the bake was started already.
 */
export class SfnBakeStarter implements BakeStarter {
  private readonly client: SFNClient;
  private readonly stateMachineArn: Setting;
  private readonly now: () => Date;

  constructor(options: { stateMachineArn: Setting; client?: SFNClient; clock?: { now(): Date } }) {
    this.client = options.client ?? sfnClient;
    this.stateMachineArn = options.stateMachineArn;
    const clock = options.clock ?? { now: () => new Date() };
    this.now = () => clock.now();
  }

  async start(name: string, request: BakeRequest): Promise<{ started: boolean; executionArn: string | null }> {
    const stateMachineArn = resolveSetting(this.stateMachineArn);
    const asked = this.now().getTime();
    try {
      const out = await callAws(`StartExecution ${name}`, () =>
        this.client.send(new StartExecutionCommand({ stateMachineArn, name, input: JSON.stringify(request) })),
      );
      // The idempotent answer for a running execution carries its original start date: one
      // that began before this call was made is the same bake, asked for again (a duplicate
      // event while the bake runs), not a bake this call started.
      const startedAt = out.startDate?.getTime();
      const existed = startedAt !== undefined && startedAt < asked - EXISTING_EXECUTION_SLACK_MS;
      return { started: !existed, executionArn: out.executionArn ?? null };
    } catch (error) {
      if (hasName(error, 'ExecutionAlreadyExists')) {
        return { started: false, executionArn: `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${name}` };
      }
      throw error;
    }
  }
}

/**
 * The current version of every `.zip` under a prefix of the (versioned) source bucket:
 * ListObjectVersions, keeping the versions marked latest. A key whose latest version is
 * a delete marker has none, so a deleted source is not rebuilt.
 */
export class S3SourceCatalog implements SourceCatalog {
  private readonly client: S3Client;

  constructor(options: { client?: S3Client } = {}) {
    this.client = options.client ?? s3Client;
  }

  async latest(bucket: string, prefix: string): Promise<SourceObject[]> {
    const out: SourceObject[] = [];
    let keyMarker: string | undefined;
    let versionIdMarker: string | undefined;
    do {
      const page: ListObjectVersionsCommandOutput = await callAws(`ListObjectVersions s3://${bucket}/${prefix}`, () =>
        this.client.send(
          new ListObjectVersionsCommand({
            Bucket: bucket,
            Prefix: prefix,
            ...(keyMarker === undefined ? {} : { KeyMarker: keyMarker }),
            ...(versionIdMarker === undefined ? {} : { VersionIdMarker: versionIdMarker }),
          }),
        ),
      );
      for (const version of page.Versions ?? []) {
        if (!version.IsLatest || !version.Key?.toLowerCase().endsWith('.zip')) continue;
        // "null" is the version id S3 gives objects written before versioning was enabled.
        const versionId = version.VersionId && version.VersionId !== 'null' ? version.VersionId : null;
        out.push({ bucket, key: version.Key, versionId });
      }
      const more = page.IsTruncated === true;
      keyMarker = more ? page.NextKeyMarker : undefined;
      versionIdMarker = more ? page.NextVersionIdMarker : undefined;
    } while (keyMarker !== undefined);
    return out;
  }
}
