/** Where a bake's pin manifest is stored; a module of its own so read commands (drift) need not load the record core. */
export const manifestKey = (bakeId: string): string => `manifests/${bakeId}.json`;

/**
 * Where the outcome of telling people about a bake's end is noted: beside the manifest,
 * not in it, because the ledger entry holds the manifest's SHA-256 and is written first.
 */
export const notificationKey = (bakeId: string): string => `manifests/${bakeId}.notification.json`;
