/**
 * Reading back what a store or registry holds for a key: the index keeps no bodies, so tests
 * read the JWT the way the server does (checked against the digest the index holds).
 */
import type { AccountRegistry } from "../../src/accounts.js";
import type { JwtStore } from "../../src/store/index.js";

export async function storedJwt(from: JwtStore | AccountRegistry, key: string): Promise<string | undefined> {
  const entry = from.get(key);
  if (entry === undefined) return undefined;
  return "body" in from ? from.body(entry) : from.read(entry);
}
