import { makeProgram } from './program.ts';

const code = await makeProgram().run(process.argv.slice(2));
process.exitCode = code;
