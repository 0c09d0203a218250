/** Time-ordered, URL-safe random ids, e.g. "m3x9k2q1-7f3k2j9d0a1b". */
export function newId(): string {
  const random = crypto.getRandomValues(new Uint8Array(10));
  let tail = "";
  for (const byte of random) tail += (byte % 36).toString(36);
  return `${Date.now().toString(36)}-${tail}`;
}
