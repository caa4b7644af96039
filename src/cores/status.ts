import type { FunctionRegistry, LayerRegistry } from '../ports/lambda.ts';
import type { Ledger } from '../ports/storage.ts';

export interface FunctionStatus {
  name: string;
  alias: string;
  version: string | null;
  /** `sha256`: hex SHA-256 of the layer zip; `codeSha256`: the same digest in base64, as Lambda reports it. */
  layer: { arn: string; version: number | null; sha256: string | null; codeSha256: string | null } | null;
  bakeId: string | null;
  releasedAt: string | null;
}

/**
 * What is live: for every function the ledger has released, where its alias points,
 * the layer that version is pinned to, and the bake that released it.
 */
export async function status(deps: {
  ledger: Ledger;
  functions: FunctionRegistry;
  layers: LayerRegistry;
}): Promise<{ functions: FunctionStatus[] }> {
  const entries = await deps.ledger.list();
  const seen = new Map<string, { name: string; alias: string }>();
  for (const entry of entries) {
    if (entry.type !== 'released') continue;
    for (const move of entry.functions) seen.set(`${move.name}\0${move.alias}`, { name: move.name, alias: move.alias });
  }
  const out: FunctionStatus[] = [];
  for (const { name, alias } of [...seen.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    const target = await deps.functions.getAlias(name, alias);
    const version = target ? await deps.functions.getVersion(name, target.version) : undefined;
    const layerArn = version?.layers[0];
    const layer = layerArn ? await deps.layers.get(layerArn) : undefined;
    const releasedBy = [...entries]
      .reverse()
      .find((e) => e.type === 'released' && e.functions.some((m) => m.name === name && m.alias === alias && m.to === target?.version));
    out.push({
      name,
      alias,
      version: target?.version ?? null,
      layer: layerArn
        ? {
            arn: layerArn,
            version: layer?.version ?? null,
            sha256: layer ? Buffer.from(layer.codeSha256, 'base64').toString('hex') : null,
            codeSha256: layer?.codeSha256 ?? null,
          }
        : null,
      bakeId: releasedBy?.bakeId ?? null,
      releasedAt: releasedBy?.at ?? null,
    });
  }
  return { functions: out };
}
