// Setup of the `shared` project (vitest.config.ts), whose worker processes run file after file
// without isolation: what one file stubbed must not reach the next one.
import { createRequire } from 'node:module';
import { afterAll } from 'vitest';

// aws-sdk-client-mock's mockClient(Class) stubs Class.prototype.send on sinon's default
// sandbox (its dist/cjs/mockClient.js), so a file that never calls restore() would hand its
// stub to the next file's real client (the local S3 server tests use the real S3Client).
// vitest's restoreMocks only restores vi.fn/vi.spyOn. The require resolves the same sinon
// instance the library loads (it is CommonJS and has no exports map).
const sinon = createRequire(createRequire(import.meta.url).resolve('aws-sdk-client-mock'))('sinon') as { restore(): void };
afterAll(() => sinon.restore());
