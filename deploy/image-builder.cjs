'use strict';
/**
 * Image Builder inputs for serverless.yml, read from the recipes under `layers/`.
 *
 * Why a file resolver: `${file(x.yml)}` parses YAML into an object, but
 * AWS::ImageBuilder::Component takes its document as a string, so the documents are
 * passed through verbatim here. Components and image recipes are immutable in Image
 * Builder: a changed document needs a new version, so every version is derived from
 * the content (`1.0.<first 28 bits of its SHA-256>`), and CloudFormation replaces the
 * resource exactly when the content changes.
 *
 * Serverless also scans resolved strings for `${...}` variables, and component documents
 * hold shell and JavaScript `${...}`: a document that does is passed as an `Fn::Join` of
 * pieces split between `$` and `{`, which CloudFormation joins back into the same text.
 *
 * The recipe's own files (a `recipe:<dir>` source locally, such as node22's bootstrap and
 * runtime loop) must be on the build instance, at the source's `aws` path. They travel
 * inside the deployment: a generated component (`files`) writes each with CreateFile and
 * checks its SHA-256, and runs before the recipe's documents. So a deployed pipeline
 * builds from exactly the files of the deployed recipe, versioned with them, with no
 * upload step of its own; the recipe's documents stay as written and run locally as they
 * are, reading the files in place. (An S3 download would need the files uploaded by
 * something first, and keeping that copy in step with the pipeline.)
 *
 * Shape: `{ <recipe>: { version, components: { <document stem>: { data, version } },
 * files: { name, data, version } | null } }`,
 * e.g. `${file(./deploy/image-builder.cjs):node22.components.node22-runtime.data}`.
 */
const { createHash } = require('node:crypto');
const { readdirSync, readFileSync, existsSync, statSync } = require('node:fs');
const path = require('node:path');
const YAML = require('yaml');

const LAYERS = path.join(__dirname, '..', 'layers');

const sha256 = (text) => createHash('sha256').update(text).digest('hex');
/** Semantic version Image Builder accepts (each part < 2^30) that changes with the content. */
const versionOf = (hex) => `1.0.${Number.parseInt(hex.slice(0, 7), 16)}`;

/** `text` as a CloudFormation string value in which no piece contains `${`. */
function literal(text) {
  if (!text.includes('${')) return text;
  const parts = text.split('${');
  return { 'Fn::Join': ['', parts.map((part, i) => `${i === 0 ? '' : '{'}${part}${i === parts.length - 1 ? '' : '$'}`)] };
}

/** Image Builder's limit on a component's inline data, in characters. */
const MAX_DATA = 16_000;

/** Every regular file under `dir`, as sorted POSIX paths relative to it. */
function filesUnder(dir, prefix = '') {
  const out = [];
  for (const entry of readdirSync(path.join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...filesUnder(dir, rel));
    else if (entry.isFile()) out.push(rel);
    else throw new Error(`${path.join(dir, rel)}: only regular files can be shipped in a component`);
  }
  return out.sort();
}

/**
 * The component that recreates a recipe's `recipe:` sources on the build instance, or
 * null when it has none. Each source's destination is a parameter defaulting to its
 * `aws` location, so the document also runs elsewhere (the deploy test runs it locally).
 */
function filesComponent(name, recipe, dir) {
  const parameters = [];
  const create = [];
  const checks = [];
  const local = recipe.sources?.local ?? {};
  const aws = recipe.sources?.aws ?? {};
  for (const [key, location] of Object.entries(local).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (typeof location !== 'string' || !location.startsWith('recipe:')) continue;
    const target = aws[key];
    if (typeof target !== 'string' || !target.startsWith('/')) {
      throw new Error(
        `layers/${name}/recipe.yml: sources.aws.${key} must be an absolute path on the build instance, to ship ${location} there`,
      );
    }
    const sourceDir = path.join(dir, location.slice('recipe:'.length));
    parameters.push({ [key]: { type: 'string', default: target, description: `Where ${location} of the ${name} recipe is written.` } });
    const lines = [];
    for (const rel of filesUnder(sourceDir)) {
      const file = path.join(sourceDir, rel);
      const bytes = readFileSync(file);
      const content = bytes.toString('utf8');
      if (!Buffer.from(content, 'utf8').equals(bytes)) throw new Error(`${file} is not UTF-8 text: CreateFile cannot ship it`);
      // AWSTOE substitutes {{ … }} in inputs, so such text would not arrive as written.
      if (content.includes('{{')) throw new Error(`${file} contains "{{", which AWSTOE would substitute`);
      const mode = (statSync(file).mode & 0o777).toString(8).padStart(4, '0');
      create.push({ path: `{{ ${key} }}/${rel}`, content, permissions: mode });
      lines.push(`${sha256(bytes)}  ${rel}`);
    }
    checks.push(`cd '{{ ${key} }}'`, `sha256sum --check --strict <<'SUMS'\n${lines.join('\n')}\nSUMS`);
  }
  if (create.length === 0) return null;
  const docName = `bakery-${name}-recipe-files`;
  const header = [
    `name: ${docName}`,
    `description: The files of the ${name} recipe its documents install, as deployed with it (generated by deploy/image-builder.cjs).`,
    'schemaVersion: 1.0',
  ].join('\n');
  const body = YAML.stringify(
    {
      parameters,
      phases: [
        {
          name: 'build',
          steps: [
            { name: 'CreateRecipeFiles', action: 'CreateFile', inputs: create },
            // The text went through YAML twice (here and on the instance): prove it is unchanged.
            { name: 'VerifyRecipeFiles', action: 'ExecuteBash', inputs: { commands: ['set -euo pipefail', ...checks] } },
          ],
        },
      ],
    },
    { lineWidth: 0 },
  );
  const data = `${header}\n${body}`;
  if (data.length > MAX_DATA) {
    throw new Error(
      `${docName}: ${data.length} characters, over the ${MAX_DATA} Image Builder takes inline; ship the files through S3 instead`,
    );
  }
  return { name: docName, text: data, data: literal(data), version: versionOf(sha256(data)) };
}

function recipes() {
  const out = {};
  for (const name of readdirSync(LAYERS).sort()) {
    const recipeFile = path.join(LAYERS, name, 'recipe.yml');
    if (!existsSync(recipeFile)) continue;
    const componentsDir = path.join(LAYERS, name, 'components');
    const components = {};
    const recipeText = readFileSync(recipeFile, 'utf8');
    const digests = [sha256(recipeText)];
    for (const file of readdirSync(componentsDir).sort()) {
      if (!/\.ya?ml$/.test(file)) continue;
      const data = readFileSync(path.join(componentsDir, file), 'utf8');
      const digest = sha256(data);
      digests.push(digest);
      components[file.replace(/\.ya?ml$/, '')] = { data: literal(data), version: versionOf(digest) };
    }
    const files = filesComponent(name, YAML.parse(recipeText), path.join(LAYERS, name));
    if (files) digests.push(sha256(files.text));
    out[name] = { version: versionOf(sha256(digests.join('\n'))), components, files };
  }
  return out;
}

module.exports = recipes();
