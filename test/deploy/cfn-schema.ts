/**
 * A CloudFormation template checked against the resource schemas of
 * @aws-cdk/aws-service-spec (the AWS CloudFormation registry schemas, as the CDK builds
 * from them): each resource's type exists, its property names are the type's, its required
 * properties are there, each value has the property's type (and one of its allowed values,
 * where the schema lists them), and every Fn::GetAtt names an attribute the type has.
 * Intrinsic functions stand for a value of any type (CloudFormation resolves them at deploy
 * time), but what they reference is checked.
 *
 * Hand-written because no offline validator checks a template against these schemas (cfn-lint
 * is Python and downloads its schemas); this is the part of cfn-lint's E3002/E3003/E3012/E3030
 * rules the stack needs.
 */
import { loadAwsServiceSpecSync } from '@aws-cdk/aws-service-spec';
import type { PropertyType, Resource as SpecResource, TypeDefinition } from '@aws-cdk/service-spec-types';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const db = loadAwsServiceSpecSync();

const isObject = (v: Json | undefined): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `{ Ref }`, `{ Fn::* }`, `{ Condition }`: resolved by CloudFormation, of whatever type it yields. */
const isIntrinsic = (v: Json): boolean => {
  if (!isObject(v)) return false;
  const keys = Object.keys(v);
  return keys.length === 1 && (keys[0] === 'Ref' || keys[0] === 'Condition' || String(keys[0]).startsWith('Fn::'));
};

function resourceSpec(type: string): SpecResource | undefined {
  return db.lookup('resource', 'cloudFormationType', 'equals', type).only?.() as SpecResource | undefined;
}

function checkValue(value: Json, type: PropertyType, where: string, problems: string[]): void {
  if (isIntrinsic(value)) return;
  switch (type.type) {
    case 'string':
    case 'date-time':
      // CloudFormation turns numbers and booleans into strings where a string is expected.
      if (!['string', 'number', 'boolean'].includes(typeof value))
        problems.push(`${where}: expected a string, got ${JSON.stringify(value)}`);
      else if (type.type === 'string' && type.allowedValues?.length && !type.allowedValues.includes(String(value))) {
        problems.push(`${where}: ${JSON.stringify(value)} is not one of ${type.allowedValues.join(', ')}`);
      }
      return;
    case 'number':
    case 'integer':
      if (!(typeof value === 'number' || (typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value))))) {
        problems.push(`${where}: expected a number, got ${JSON.stringify(value)}`);
      } else {
        // Some numeric properties list their allowed values too (e.g. a log group's RetentionInDays).
        const allowed = (type as { allowedValues?: Array<string | number> }).allowedValues;
        if (allowed?.length && !allowed.map(String).includes(String(value))) {
          problems.push(`${where}: ${JSON.stringify(value)} is not one of ${allowed.join(', ')}`);
        }
      }
      return;
    case 'boolean':
      if (!(typeof value === 'boolean' || value === 'true' || value === 'false'))
        problems.push(`${where}: expected a boolean, got ${JSON.stringify(value)}`);
      return;
    case 'json':
      return;
    case 'null':
      if (value !== null) problems.push(`${where}: expected null`);
      return;
    case 'tag':
      if (!isObject(value) || !('Key' in value) || !('Value' in value)) problems.push(`${where}: expected a tag {Key, Value}`);
      return;
    case 'array':
      if (!Array.isArray(value)) problems.push(`${where}: expected a list, got ${JSON.stringify(value)}`);
      else for (const [i, item] of value.entries()) checkValue(item, type.element, `${where}[${i}]`, problems);
      return;
    case 'map':
      if (!isObject(value)) problems.push(`${where}: expected a map`);
      else for (const [k, v] of Object.entries(value)) checkValue(v, type.element, `${where}.${k}`, problems);
      return;
    case 'union': {
      const attempts = type.types.map((t) => {
        const p: string[] = [];
        checkValue(value, t, where, p);
        return p;
      });
      if (!attempts.some((p) => p.length === 0)) problems.push(...(attempts[0] ?? [`${where}: matches no type of the union`]));
      return;
    }
    case 'ref': {
      const def = db.get('typeDefinition', type.reference.$ref) as TypeDefinition;
      if (!isObject(value)) {
        problems.push(`${where}: expected an object (${def.name}), got ${JSON.stringify(value)}`);
        return;
      }
      checkProperties(value, def.properties, `${where}`, problems);
      return;
    }
    default:
      problems.push(`${where}: a type the checker does not know (${JSON.stringify(type)})`);
  }
}

function checkProperties(value: JsonObject, properties: TypeDefinition['properties'], where: string, problems: string[]): void {
  for (const [name, v] of Object.entries(value)) {
    const property = properties[name];
    if (!property) {
      problems.push(`${where}.${name}: no such property (known: ${Object.keys(properties).sort().join(', ')})`);
      continue;
    }
    checkValue(v, property.type, `${where}.${name}`, problems);
  }
  for (const [name, property] of Object.entries(properties)) {
    if (property.required && !(name in value)) problems.push(`${where}.${name}: required, missing`);
  }
}

/** Every Fn::GetAtt anywhere under `node`, as [logical id, attribute]. */
function getAtts(node: Json, out: Array<[string, string, string]> = [], where = ''): Array<[string, string, string]> {
  if (Array.isArray(node)) for (const [i, n] of node.entries()) getAtts(n, out, `${where}[${i}]`);
  else if (isObject(node)) {
    const att = node['Fn::GetAtt'];
    if (Array.isArray(att)) out.push([String(att[0]), String(att[1]), where]);
    else if (typeof att === 'string') {
      const [id = '', ...rest] = att.split('.');
      out.push([id, rest.join('.'), where]);
    }
    const sub = node['Fn::Sub'];
    const text = typeof sub === 'string' ? sub : Array.isArray(sub) && typeof sub[0] === 'string' ? sub[0] : undefined;
    for (const [, id, attribute] of text?.matchAll(/\$\{([A-Za-z0-9]+)\.([A-Za-z0-9.]+)\}/g) ?? [])
      out.push([String(id), String(attribute), where]);
    for (const [k, v] of Object.entries(node)) getAtts(v, out, `${where}.${k}`);
  }
  return out;
}

/** Every problem of `template` against the schemas; none means it validates. */
export function schemaProblems(template: { Resources: Record<string, { Type: string; Properties?: JsonObject }> }): string[] {
  const problems: string[] = [];
  for (const [id, r] of Object.entries(template.Resources)) {
    const spec = resourceSpec(r.Type);
    if (!spec) {
      problems.push(`${id}: no resource type ${r.Type}`);
      continue;
    }
    checkProperties(r.Properties ?? {}, spec.properties, `${id}`, problems);
  }
  for (const [id, attribute, where] of getAtts(template as unknown as Json)) {
    const r = template.Resources[id];
    if (!r) {
      problems.push(`${where}: Fn::GetAtt of no resource ${id}`);
      continue;
    }
    const spec = resourceSpec(r.Type);
    if (spec && !(attribute in spec.attributes))
      problems.push(`${where}: ${r.Type} has no attribute ${attribute} (Fn::GetAtt ${id}.${attribute})`);
  }
  return problems;
}
