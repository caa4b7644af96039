import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { BakeryError } from '../../errors.ts';
import { callAws } from './errors.ts';

/**
 * Only the CLI asks who it is (`approve`/`reject` with `--backend aws`), so the client lives
 * here rather than in ./clients.ts, which every Lambda bundle loads. GetCallerIdentity needs
 * no permission.
 */
export const stsClient = new STSClient({ customUserAgent: 'bakery' });

/**
 * The caller's identity as AWS verified it: the ARN of the credentials the SDK signs with
 * (`arn:aws:iam::…:user/ana`, or `arn:aws:sts::…:assumed-role/<role>/<session>` for a role).
 * What `bakery approve --backend aws` records as the approver.
 */
export class StsCallerIdentity {
  private readonly client: STSClient;

  constructor(options: { client?: STSClient } = {}) {
    this.client = options.client ?? stsClient;
  }

  async arn(): Promise<string> {
    const out = await callAws('GetCallerIdentity', () => this.client.send(new GetCallerIdentityCommand({})));
    if (!out.Arn) throw new BakeryError('GetCallerIdentity returned no ARN');
    return out.Arn;
  }
}
