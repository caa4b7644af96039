// Matchers such as toHaveReceivedCommandWith for aws-sdk-client-mock.
import 'aws-sdk-client-mock-vitest/extend';
// aws-local-stepfunctions needs Promise.withResolvers (Node >= 22).
import '../src/local/polyfill.ts';
