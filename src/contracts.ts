// Moved to src/state.ts (the state contract); re-exported until every importer moves.
export { BakeRequestSchema, parseBakeRequest } from './state.ts';
