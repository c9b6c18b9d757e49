/**
 * Writes one share of a generated sharded store (bench/lib/store-cache.ts) in its own process:
 * signs `count` account JWTs, writes `<dir>/<last 2>/<KEY>.jwt`, lists their GET paths.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { accountJwt, identityFromSeed, randomAccountKey } from "./lib/identity.js";

export interface GenSpec {
  /** Raw seed (hex) of the operator signing key that signs every account. */
  readonly signerSeed: string;
  readonly dir: string;
  readonly count: number;
  /** File that receives one `/jwt/v1/accounts/<KEY>` line per account written. */
  readonly pathsFile: string;
}

const spec = JSON.parse(readFileSync(process.argv[2]!, "utf8")) as GenSpec;
const signer = identityFromSeed("operator", Buffer.from(spec.signerSeed, "hex"));
const shards = new Set<string>();
const paths: string[] = [];
let bytes = 0;
for (let i = 0; i < spec.count; i++) {
  const key = randomAccountKey();
  const jwt = accountJwt(key, signer);
  const shard = key.slice(-2);
  if (!shards.has(shard)) {
    mkdirSync(join(spec.dir, shard), { recursive: true });
    shards.add(shard);
  }
  writeFileSync(join(spec.dir, shard, `${key}.jwt`), jwt);
  paths.push(`/jwt/v1/accounts/${key}\n`);
  bytes += jwt.length;
}
writeFileSync(spec.pathsFile, paths.join(""));
process.stdout.write(JSON.stringify({ bytes }) + "\n");
