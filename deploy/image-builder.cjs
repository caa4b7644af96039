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
 * Shape: `{ <recipe>: { version, components: { <document stem>: { data, version } } } }`,
 * e.g. `${file(./deploy/image-builder.cjs):node22.components.node22-runtime.data}`.
 */
const { createHash } = require('node:crypto');
const { readdirSync, readFileSync, existsSync } = require('node:fs');
const path = require('node:path');

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

function recipes() {
  const out = {};
  for (const name of readdirSync(LAYERS).sort()) {
    const recipeFile = path.join(LAYERS, name, 'recipe.yml');
    if (!existsSync(recipeFile)) continue;
    const componentsDir = path.join(LAYERS, name, 'components');
    const components = {};
    const digests = [sha256(readFileSync(recipeFile, 'utf8'))];
    for (const file of readdirSync(componentsDir).sort()) {
      if (!/\.ya?ml$/.test(file)) continue;
      const data = readFileSync(path.join(componentsDir, file), 'utf8');
      const digest = sha256(data);
      digests.push(digest);
      components[file.replace(/\.ya?ml$/, '')] = { data: literal(data), version: versionOf(digest) };
    }
    out[name] = { version: versionOf(sha256(digests.join('\n'))), components };
  }
  return out;
}

module.exports = recipes();
