/**
 * `fn` over `items` with at most `limit` calls in flight, results in the items' order;
 * the first rejection rejects the whole (calls already started still run to their end).
 * Hand-written (a dozen lines) rather than p-limit, which is only a transitive dependency
 * here: declaring it would change the lockfile for what this loop does.
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) results[i] = await fn(items[i] as T, i);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}
