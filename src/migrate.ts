/**
 * `nats-account-server migrate`: copies every account JWT from one store to another (directory
 * ↔ JetStream bucket) and verifies the copy by comparing each JWT's SHA-256 and the store hash.
 */
import type { NatsConfig } from "./config/types.js";
import type { Logger } from "./log.js";
import { DirStore, type JwtStore, KvStore, xorInto } from "./store/index.js";

export type StoreSpec =
  | { readonly kind: "dir"; readonly dir: string; readonly shard: boolean }
  | { readonly kind: "kv"; readonly bucket: string };

/** `dir:/path`, `dir+shard:/path` or `kv:<bucket>`. */
export function parseStoreSpec(text: string): StoreSpec {
  const m = /^(dir|dir\+shard|kv):(.+)$/.exec(text);
  if (!m) throw new Error(`bad store "${text}": expected dir:<path>, dir+shard:<path> or kv:<bucket>`);
  return m[1] === "kv" ? { kind: "kv", bucket: m[2]! } : { kind: "dir", dir: m[2]!, shard: m[1] === "dir+shard" };
}

export interface MigrateOptions {
  readonly from: StoreSpec;
  readonly to: StoreSpec;
  /** Connection for `kv:` stores. */
  readonly nats: NatsConfig;
  readonly replicas: number;
  readonly history: number;
  readonly log: Logger;
  /** How long a bucket may take to become available. */
  readonly readyTimeoutMs?: number;
}

export interface MigrateResult {
  readonly copied: number;
  readonly unchanged: number;
  /** Hex XOR of the SHA-256 of every migrated JWT, equal on both sides. */
  readonly hash: string;
}

function open(spec: StoreSpec, o: MigrateOptions): JwtStore {
  return spec.kind === "dir"
    ? new DirStore({ dir: spec.dir, shard: spec.shard, readonly: false, log: o.log })
    : new KvStore({ bucket: spec.bucket, replicas: o.replicas, history: o.history, nats: o.nats, log: o.log });
}

async function ready(store: JwtStore, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (store.ready === false) {
    if (Date.now() > deadline) throw new Error(`${store.description} did not become available`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function migrate(o: MigrateOptions): Promise<MigrateResult> {
  const source = open(o.from, o);
  const target = open(o.to, o);
  try {
    await source.open();
    await target.open();
    await ready(source, o.readyTimeoutMs ?? 30_000);
    await ready(target, o.readyTimeoutMs ?? 30_000);
    await source.loading;
    await target.loading;
    let copied = 0;
    let unchanged = 0;
    const want = Buffer.alloc(32);
    const got = Buffer.alloc(32);
    for (const e of [...source.entries()]) {
      xorInto(want, Buffer.from(e.digest, "latin1"));
      const jwt = await source.read(e);
      if (jwt === undefined) throw new Error(`${e.key} changed in ${source.description} while it was copied`);
      if (target.get(e.key)?.digest === e.digest) unchanged++;
      else {
        await target.put(e.key, jwt);
        copied++;
      }
      // Read back: what the target holds must be these very bytes.
      const t = target.get(e.key);
      if (!t || t.digest !== e.digest || (await target.read(t)) === undefined) throw new Error(`verification failed for ${e.key}`);
      xorInto(got, Buffer.from(t.digest, "latin1"));
    }
    if (!want.equals(got)) throw new Error("verification failed: store hashes differ");
    o.log.info(
      `migrated ${copied + unchanged} account JWT(s) from ${source.description} to ${target.description} ` +
        `(${copied} copied, ${unchanged} already there), hash ${want.toString("hex")} verified`,
    );
    return { copied, unchanged, hash: want.toString("hex") };
  } finally {
    await source.close();
    await target.close();
  }
}
