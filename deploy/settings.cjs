'use strict';
/**
 * Deploy settings checked at package time, for serverless.yml, e.g.
 * `${file(./deploy/settings.cjs):stage}`.
 *
 * Why a file resolver: serverless.yml can pass a `--stage` or `--param` through, but it cannot
 * refuse one or turn an empty string into "leave the property out". A bad value here fails
 * `osls package` (and deploy) with a message that names it and the fix, before anything reaches
 * CloudFormation, instead of a stack that deploys and then never works.
 */

/** A deploy setting is wrong: the message names it and how to fix it. */
class DeploySettingError extends Error {
  constructor(message) {
    super(message);
    this.name = 'DeploySettingError';
    // osls prints `error.stack`: a stack trace of this file would only hide the message.
    this.stack = `${this.name}: ${message}`;
  }
}

/**
 * Image Builder lower-cases the names in its ARNs (recipe `bakery-Prod-node22` builds images
 * `…:image/bakery-prod-node22/…`), while the image state-change rule, the IAM resources and the
 * recipe names are built from the stage as given, so a stage with capitals would never resume
 * a bake. Only lower-case stages are accepted; other AWS names (state machine, schedule, SSM
 * parameters) take them as they are.
 */
const STAGE = /^[a-z][a-z0-9-]{0,15}$/;

const SUBNET = /^subnet-[0-9a-f]{8,17}$/;
const SECURITY_GROUP = /^sg-[0-9a-f]{8,17}$/;
const INSTANCE_TYPE = /^[a-z][a-z0-9-]*\.[a-z0-9]+$/;

/** A comma-separated param as a list, blanks dropped. */
const listOf = (text) =>
  String(text ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);

const param = (resolveVariable, name) => resolveVariable(`param:${name}`).then((value) => String(value ?? '').trim());

/** The `--stage` (or `dev`), refused unless lower-case. */
async function stage({ options }) {
  const value = options.stage ?? 'dev';
  if (!STAGE.test(value)) {
    throw new DeploySettingError(
      `stage "${value}" is not allowed: use lower-case letters, digits and "-", starting with a letter, at most 16 characters (e.g. --stage ${
        String(value)
          .toLowerCase()
          .replace(/[^a-z0-9-]/g, '-') || 'dev'
      }). Image Builder lower-cases the names in its ARNs, so the rule that resumes a bake would never match a stage with capitals.`,
    );
  }
  return value;
}

/** The build instance's network: `{ subnetId, securityGroupIds }`, both or neither. */
async function network({ resolveVariable }) {
  const subnetId = await param(resolveVariable, 'buildSubnetId');
  const securityGroupIds = listOf(await param(resolveVariable, 'buildSecurityGroupIds'));
  if (subnetId && !SUBNET.test(subnetId)) {
    throw new DeploySettingError(
      `buildSubnetId "${subnetId}" is not a subnet id: pass --param="buildSubnetId=subnet-0123456789abcdef0", or leave it empty for the default VPC.`,
    );
  }
  const bad = securityGroupIds.filter((id) => !SECURITY_GROUP.test(id));
  if (bad.length) {
    throw new DeploySettingError(
      `buildSecurityGroupIds: ${bad.map((id) => `"${id}"`).join(', ')} not a security group id: pass a comma-separated list such as --param="buildSecurityGroupIds=sg-0123456789abcdef0,sg-0fedcba9876543210".`,
    );
  }
  // Security groups belong to a VPC: without a subnet the instance would start in the default
  // VPC, where groups of another VPC are refused; with a subnet, say which groups let it out.
  if (subnetId && !securityGroupIds.length) {
    throw new DeploySettingError(
      `buildSubnetId is set but buildSecurityGroupIds is empty: pass --param="buildSecurityGroupIds=sg-…" with groups of the subnet's VPC that allow outbound HTTPS (see docs/deploying.md#the-build-network).`,
    );
  }
  if (!subnetId && securityGroupIds.length) {
    throw new DeploySettingError(
      `buildSecurityGroupIds is set but buildSubnetId is empty: pass --param="buildSubnetId=subnet-…" in the groups' VPC, or leave both empty for the default VPC.`,
    );
  }
  return { subnetId, securityGroupIds };
}

const NO_VALUE = { Ref: 'AWS::NoValue' };

/** `SubnetId` of the infrastructure configuration: left out (default VPC) when not set. */
const buildSubnetId = async (context) => (await network(context)).subnetId || NO_VALUE;

/** `SecurityGroupIds` of the infrastructure configuration: left out (default VPC) when not set. */
async function buildSecurityGroupIds(context) {
  const { securityGroupIds } = await network(context);
  return securityGroupIds.length ? securityGroupIds : NO_VALUE;
}

/** `InstanceTypes`: Image Builder picks one by availability, so a type short in a zone does not stop a build. */
async function buildInstanceTypes({ resolveVariable }) {
  const types = listOf(await param(resolveVariable, 'buildInstanceTypes'));
  const bad = types.filter((type) => !INSTANCE_TYPE.test(type));
  if (!types.length || bad.length) {
    throw new DeploySettingError(
      `buildInstanceTypes ${types.length ? `has ${bad.map((t) => `"${t}"`).join(', ')}, not an instance type` : 'is empty'}: pass a comma-separated list such as --param="buildInstanceTypes=c7i.large,c6i.large,m7i.large".`,
    );
  }
  return types;
}

module.exports = { stage, buildSubnetId, buildSecurityGroupIds, buildInstanceTypes };
