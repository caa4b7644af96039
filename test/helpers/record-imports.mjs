// Loaded with `node --import`: records every module the process resolves (import and
// require alike) and writes their URLs, one a line, to $RECORD_IMPORTS_TO at exit.
import { writeFileSync } from 'node:fs';
import { registerHooks } from 'node:module';

const seen = new Set();
registerHooks({
  resolve(specifier, context, nextResolve) {
    const resolved = nextResolve(specifier, context);
    seen.add(resolved.url);
    return resolved;
  },
});
process.on('exit', () => writeFileSync(process.env.RECORD_IMPORTS_TO, [...seen].join('\n')));
