/**
 * Building the directory store's index: list the layout, read each JWT file once and keep only
 * what the index needs. Runs on a worker thread (dir-index-worker.ts) so a big store costs requests nothing.
 */
import { readdirSync, readFileSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { isTempName } from "../durable.js";
import { decodeAccountJwt, isPublicKey, peekClaims } from "../jwt/index.js";
import { isJournalFile } from "./journal.js";
import { digestOf } from "./types.js";

export const JWT_SUFFIX = ".jwt";
export const TOMBSTONE_SUFFIX = ".jwt.deleted";

/**
 * One JWT file as the index keeps it: key, digest, size, iat (-1: does not decode), exp, iss, and
 * whether its signature holds (checked here, off the thread that answers GETs).
 */
export type IndexRecord = [key: string, digest: string, size: number, iat: number, exp: number, iss: string, signed: boolean];

export interface IndexBatch {
  readonly records: IndexRecord[];
  /** Keys with a tombstone (`<KEY>.jwt.deleted`). */
  readonly deleted: string[];
  /** Files that could not be read (logged by the receiver). */
  readonly errors: string[];
  /** Leftover temp files removed. */
  readonly removed: string[];
}

/** Files per batch handed to the receiver. */
const BATCH = 2048;
const READ_UTF8 = { encoding: "utf8", flag: "r" } as const;

export function keyOfFile(name: string, suffix = JWT_SUFFIX): string | undefined {
  if (!name.endsWith(suffix)) return undefined;
  const key = name.slice(0, -suffix.length);
  return isPublicKey(key, "account") ? key : undefined;
}

/** The index record of one JWT's bytes. */
export function recordOf(key: string, jwt: string): IndexRecord {
  const c = peekClaims(jwt);
  let signed = false;
  try {
    decodeAccountJwt(jwt);
    signed = true;
  } catch {
    // logged when the JWT is first read for an answer
  }
  return [key, digestOf(jwt), Buffer.byteLength(jwt), c ? c.iat : -1, c?.exp ?? 0, c?.iss ?? "", signed];
}

/**
 * Walk `<dir>` (flat, or `<dir>/<last 2 of KEY>/` when sharded) and hand every JWT file to
 * `onBatch`; `writable`: leftover temp files of interrupted writes are removed.
 */
export function indexDirectory(dir: string, shard: boolean, writable: boolean, onBatch: (b: IndexBatch) => void): void {
  let batch: IndexBatch = { records: [], deleted: [], errors: [], removed: [] };
  let n = 0;
  const flush = (): void => {
    onBatch(batch);
    batch = { records: [], deleted: [], errors: [], removed: [] };
    n = 0;
  };
  const consider = (sub: string, name: string, shardName: string | undefined): void => {
    if (shardName === undefined && isJournalFile(name)) return;
    if (isTempName(name)) {
      if (!writable) return;
      try {
        unlinkSync(join(sub, name));
        batch.removed.push(join(sub, name));
      } catch {
        // gone already
      }
      return;
    }
    const tomb = keyOfFile(name, TOMBSTONE_SUFFIX);
    const key = tomb ?? keyOfFile(name);
    // `<dir>/<KEY>.jwt` flat, `<dir>/<last 2 of KEY>/<KEY>.jwt` sharded.
    if (key === undefined || (shard ? shardName === undefined || !key.endsWith(shardName) : shardName !== undefined)) return;
    if (tomb) {
      batch.deleted.push(key);
      return;
    }
    const path = join(sub, name);
    try {
      batch.records.push(recordOf(flat(key), readFileSync(path, READ_UTF8)));
    } catch (e) {
      // Gone since it was listed: not part of the store.
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") batch.errors.push(`reading ${path} failed: ${(e as Error).message}`);
    }
    if (++n >= BATCH) flush();
  };
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    if (shard && d.isDirectory() && d.name.length === 2) {
      const sub = join(dir, d.name);
      for (const f of readdirSync(sub, { withFileTypes: true })) if (f.isFile()) consider(sub, f.name, d.name);
    } else if (d.isFile()) {
      consider(dir, d.name, undefined);
    }
  }
  flush();
}

/** A copy that does not keep the file name it was sliced from alive (a million keys: ~40 MB). */
function flat(s: string): string {
  return Buffer.from(s, "latin1").toString("latin1");
}
