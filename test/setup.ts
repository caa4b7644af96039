// Matchers such as toHaveReceivedCommandWith for aws-sdk-client-mock.
import 'aws-sdk-client-mock-vitest/extend';
// aws-local-stepfunctions needs Promise.withResolvers (Node >= 22).
import '../src/local/polyfill.ts';
import { afterEach } from 'vitest';
import { removeScratch } from './helpers/scratch.ts';

// Files the fakes wrote for a test (MemoryArtefactStore.fetchFile) go with it.
afterEach(removeScratch);
