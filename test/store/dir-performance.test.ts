/**
 * The directory store's two speed features keep its promises: the background load of a large
 * store answers exactly like a fully loaded one at every moment, and group-committed directory
 * fsyncs never acknowledge a write before an fsync that started after it.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { encodePublicKey } from "../../src/jwt/nkey.js";
import { createLogger } from "../../src/log.js";
import { DirStore, DirSyncer } from "../../src/store/dir.js";
import { tempDir } from "../helpers/processes.js";

function xorOf(values: Iterable<string>): Buffer {
  const acc = Buffer.alloc(32);
  for (const v of values) {
    const h = createHash("sha256").update(v).digest();
    for (let i = 0; i < 32; i++) acc[i]! ^= h[i]!;
  }
  return acc;
}

const newKey = (): string => encodePublicKey("account", randomBytes(32));

/** A sharded store directory written directly, as another server or nsc would leave it. */
function writeStore(n: number): { dir: string; files: Map<string, string> } {
  const dir = join(tempDir(), "s");
  const files = new Map<string, string>();
  for (let i = 0; i < n; i++) {
    const k = newKey();
    const jwt = `jwt-${i}-${k}`;
    mkdirSync(join(dir, k.slice(-2)), { recursive: true });
    writeFileSync(join(dir, k.slice(-2), `${k}.jwt`), jwt);
    files.set(k, jwt);
  }
  return { dir, files };
}

function capture(): { log: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  const log = createLogger(
    { time: false, debug: true, trace: false, colors: false, pid: false, json: false },
    { write: (l) => lines.push(l.trimEnd()), isTTY: false },
  );
  return { log, lines };
}

describe("store - directory loaded in the background", () => {
  it("answers get, size, entries and hash exactly while still loading, then says it is complete", async () => {
    const { dir, files } = writeStore(300);
    const { log, lines } = capture();
    const s = new DirStore({ dir, shard: true, readonly: false, log, backgroundLoadAbove: 0 });
    await s.open();
    assert.ok(s.loading, "the load goes on after open()");
    assert.ok(lines.some((l) => /indexing 300 account JWT file\(s\) in the background/.test(l)), lines.join("\n"));
    assert.equal(s.size, 300);
    // Any key, loaded or not, answers at once with its content.
    for (const [k, jwt] of [...files].slice(-20)) assert.equal(s.get(k)?.jwt, jwt);
    assert.equal(s.get(newKey()), undefined);
    // Walking the whole store sees all of it, with the same hash as a store read eagerly.
    assert.deepEqual(new Set([...s.entries()].map((e) => e.key)), new Set(files.keys()));
    assert.deepEqual(s.hash(), xorOf(files.values()));
    await s.loading;
    assert.equal(s.loading, undefined);
    const eager = new DirStore({ dir, shard: true, readonly: false });
    await eager.open();
    assert.equal(eager.loading, undefined);
    assert.deepEqual(s.hash(), eager.hash());
    await s.close();
  });

  it("reports the end of the load in the log, and the hash of a store never walked is right", async () => {
    const { dir, files } = writeStore(200);
    const { log, lines } = capture();
    const s = new DirStore({ dir, shard: true, readonly: false, log, backgroundLoadAbove: 0 });
    await s.open();
    await s.loading;
    assert.ok(lines.some((l) => /store index complete: 200 account JWT\(s\) loaded in \d+ ms/.test(l)), lines.join("\n"));
    assert.deepEqual(s.hash(), xorOf(files.values()));
  });

  it("writes, removals and tombstones of keys not loaded yet keep the hash and size exact", async () => {
    const { dir, files } = writeStore(100);
    const s = new DirStore({ dir, shard: true, readonly: false, backgroundLoadAbove: 0 });
    await s.open();
    const [a, b, c] = [...files.keys()].slice(-3) as [string, string, string];
    // None of these was read by anyone before the change.
    await s.put(a, "replaced");
    await s.remove(b);
    await s.tombstone(c);
    const extra = newKey();
    await s.put(extra, "new");
    const expected = new Map(files);
    expected.set(a, "replaced");
    expected.delete(b);
    expected.delete(c);
    expected.set(extra, "new");
    assert.equal(s.size, expected.size);
    assert.equal(s.get(a)?.jwt, "replaced");
    assert.equal(s.get(b), undefined);
    assert.equal(s.get(c), undefined);
    assert.equal(s.isDeleted(c), true);
    assert.deepEqual(s.hash(), xorOf(expected.values()));
    await s.loading;
    assert.deepEqual(s.hash(), xorOf(expected.values()));
    assert.equal(readFileSync(join(dir, a.slice(-2), `${a}.jwt`), "utf8"), "replaced");
    assert.ok(existsSync(join(dir, c.slice(-2), `${c}.jwt.deleted`)));
  });

  it("a file that disappears before it is loaded is simply not there", async () => {
    const { dir, files } = writeStore(50);
    const s = new DirStore({ dir, shard: true, readonly: false, backgroundLoadAbove: 0 });
    await s.open();
    const gone = [...files.keys()].at(-1)!;
    rmSync(join(dir, gone.slice(-2), `${gone}.jwt`));
    assert.equal(s.get(gone), undefined);
    assert.equal(s.size, 49);
    files.delete(gone);
    assert.deepEqual(s.hash(), xorOf(files.values()));
  });

  it("small stores and read-only directories are still read completely by open()", async () => {
    const { dir } = writeStore(20);
    const small = new DirStore({ dir, shard: true, readonly: false });
    await small.open();
    assert.equal(small.loading, undefined);
    const ro = new DirStore({ dir, shard: true, readonly: true, backgroundLoadAbove: 0 });
    await ro.open();
    assert.equal(ro.loading, undefined);
    assert.equal(ro.size, 20);
  });
});

/** An fsync whose completion the test controls. */
class ManualFsync {
  readonly calls: Array<{ dir: string; done: () => void; fail: (e: Error) => void }> = [];
  fsync = (dir: string): Promise<void> =>
    new Promise<void>((resolve, reject) => this.calls.push({ dir, done: resolve, fail: reject }));
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("store - group commit of directory fsyncs", () => {
  it("callers during a running fsync share the next one, and none resolves before an fsync that began after it", async () => {
    const f = new ManualFsync();
    const syncer = new DirSyncer(f.fsync);
    const resolved: string[] = [];
    const first = syncer.sync("/d").then(() => resolved.push("first"));
    assert.equal(f.calls.length, 1);
    // These arrive while the first fsync runs: it may have started before their renames.
    const later = ["a", "b", "c"].map((n) => syncer.sync("/d").then(() => resolved.push(n)));
    assert.equal(f.calls.length, 1, "no second fsync while one runs");
    f.calls[0]!.done();
    await first;
    await tick();
    assert.deepEqual(resolved, ["first"], "the later callers wait for an fsync of their own");
    assert.equal(f.calls.length, 2, "one shared fsync for the three");
    f.calls[1]!.done();
    await Promise.all(later);
    assert.deepEqual(resolved.sort(), ["a", "b", "c", "first"]);
    assert.equal(syncer.started, 2);
  });

  it("directories are synced independently, and a failed fsync fails every caller of its batch only", async () => {
    const f = new ManualFsync();
    const syncer = new DirSyncer(f.fsync);
    const x = syncer.sync("/x");
    const y = syncer.sync("/y");
    assert.deepEqual(f.calls.map((c) => c.dir), ["/x", "/y"]);
    const x2 = syncer.sync("/x");
    const x3 = syncer.sync("/x");
    f.calls[0]!.fail(new Error("EIO"));
    await assert.rejects(x, /EIO/);
    await tick();
    f.calls[1]!.done();
    await y;
    assert.equal(f.calls.length, 3);
    f.calls[2]!.fail(new Error("EIO again"));
    await assert.rejects(x2, /EIO again/);
    await assert.rejects(x3, /EIO again/);
    // The next caller gets a fresh fsync.
    const x4 = syncer.sync("/x");
    await tick();
    f.calls[3]!.done();
    await x4;
  });

  it("many concurrent puts into one directory are all durable and share directory fsyncs", async () => {
    const dir = join(tempDir(), "s");
    const s = new DirStore({ dir, shard: false, readonly: false });
    await s.open();
    const keys = Array.from({ length: 64 }, newKey);
    await Promise.all(keys.map((k, i) => s.put(k, `jwt-${i}`)));
    for (const [i, k] of keys.entries()) assert.equal(readFileSync(join(dir, `${k}.jwt`), "utf8"), `jwt-${i}`);
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith(".tmp")), []);
    assert.ok(s.dirFsyncs < keys.length, `${s.dirFsyncs} directory fsyncs for ${keys.length} puts`);
    const again = new DirStore({ dir, shard: false, readonly: false });
    await again.open();
    assert.deepEqual(again.hash(), xorOf(keys.map((_k, i) => `jwt-${i}`)));
  });
});
