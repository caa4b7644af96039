/** The clock and the random ids cores use, so tests can fix both. Plain objects, no adapter modules. */

export interface Clock {
  now(): Date;
}

export interface IdSource {
  /** A short random id (approval ids, tokens). */
  random(): string;
}
