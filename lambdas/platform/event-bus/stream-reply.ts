/** Parsing of raw stream replies (sendCommand), shared by the consumer and the tail reader. */

export type RawEntry = [id: string, fields: string[] | null];

/** A stream reply with a shape Redis never sends. */
export class StreamReplyError extends Error {
  override name = 'StreamReplyError';
}

export function fieldValue(fields: readonly string[], name: string): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === name) return fields[i + 1];
  }
  return undefined;
}

export function parseEntries(raw: unknown): RawEntry[] {
  if (!Array.isArray(raw)) throw new StreamReplyError('stream entries are not an array');
  const entries: RawEntry[] = [];
  for (const item of raw) {
    // XAUTOCLAIM (Redis 6.2) may list deleted entries as nil; Redis 7 reports them separately.
    if (item === null) continue;
    if (!Array.isArray(item) || typeof item[0] !== 'string')
      throw new StreamReplyError('malformed stream entry');
    const fields = item[1];
    entries.push([item[0], Array.isArray(fields) ? fields.map(String) : null]);
  }
  return entries;
}

export function parseStreams(raw: unknown): Map<string, RawEntry[]> {
  const out = new Map<string, RawEntry[]>();
  if (raw === null || raw === undefined) return out;
  // RESP3 (node-redis 6 default) answers with a map of stream -> entries; RESP2 with pairs.
  const pairs: unknown[] = Array.isArray(raw)
    ? raw
    : raw instanceof Map
      ? [...raw.entries()]
      : typeof raw === 'object'
        ? Object.entries(raw)
        : [];
  if (pairs.length === 0 && typeof raw !== 'object') throw new StreamReplyError('malformed XREADGROUP reply');
  for (const stream of pairs) {
    if (!Array.isArray(stream) || typeof stream[0] !== 'string')
      throw new StreamReplyError('malformed stream');
    out.set(stream[0], parseEntries(stream[1]));
  }
  return out;
}
