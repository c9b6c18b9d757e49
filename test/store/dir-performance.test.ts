/**
 * The directory store's background load of a large store answers exactly like a fully loaded
 * one at every moment (the journal's group commit is tested in journal.test.ts).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { encodePublicKey } from "../../src/jwt/index.js";
import { createLogger } from "../../src/log.js";
import { DirStore, ReadPolicy } from "../../src/store/dir.js";
import { tempDir } from "../helpers/processes.js";
import { storedJwt } from "../helpers/stored.js";

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
  it("answers get exactly while still indexing; once loading resolves the walk and hash are whole", async () => {
    const { dir, files } = writeStore(3000);
    const { log, lines } = capture();
    const s = new DirStore({ dir, shard: true, readonly: false, log, backgroundLoadAbove: 0 });
    await s.open();
    assert.ok(lines.some((l) => /indexing the account JWT files in the background/.test(l)), lines.join("\n"));
    // Any key, indexed yet or not, answers at once with its content.
    for (const [k, jwt] of [...files].slice(-20)) assert.equal(await storedJwt(s, k), jwt);
    assert.equal(s.get(newKey()), undefined);
    await s.loading;
    assert.equal(s.loading, undefined);
    assert.equal(s.size, 3000);
    // Walking the whole store sees all of it, with the same hash as a store read eagerly.
    assert.deepEqual(new Set([...s.entries()].map((e) => e.key)), new Set(files.keys()));
    assert.deepEqual(s.hash(), xorOf(files.values()));
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
    assert.equal(await storedJwt(s, a), "replaced");
    assert.equal(s.get(b), undefined);
    assert.equal(s.get(c), undefined);
    assert.equal(s.isDeleted(c), true);
    await s.loading;
    // The indexer's stale records of the changed keys were not taken in.
    assert.equal(s.size, expected.size);
    assert.deepEqual(s.hash(), xorOf(expected.values()));
    assert.equal(readFileSync(join(dir, a.slice(-2), `${a}.jwt`), "utf8"), "replaced");
    assert.ok(existsSync(join(dir, c.slice(-2), `${c}.jwt.deleted`)));
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

describe("store - directory reads on the event loop while they are fast", () => {
  it("backs off to thread-pool reads after slow reads in a row, and tries again later", () => {
    let t = 0;
    const policy = new ReadPolicy(() => t);
    const read = (ms: number): void => policy.timed(() => void (t += ms));
    assert.ok(policy.sync());
    read(0.2);
    read(ReadPolicy.SLOW_READ_MS + 1); // one slow read: the thread was preempted, not the disk
    read(0.2);
    assert.ok(policy.sync());
    read(ReadPolicy.SLOW_READ_MS + 1);
    read(ReadPolicy.SLOW_READ_MS + 1);
    assert.ok(!policy.sync());
    t += ReadPolicy.BACK_OFF_MS - 1;
    assert.ok(!policy.sync());
    t += 1;
    assert.ok(policy.sync());
    // A read that throws is timed all the same.
    assert.throws(() => policy.timed(() => ((t += 5), assert.fail("gone"))));
    assert.throws(() => policy.timed(() => ((t += 5), assert.fail("gone"))));
    assert.ok(!policy.sync());
  });

  for (const [name, step] of [["fast reads (on the loop)", 0], ["slow reads (thread pool after two)", 3]] as const) {
    it(`serves exactly what the index describes with ${name}`, async () => {
      const { dir, files } = writeStore(6);
      let t = 0;
      const s = new DirStore({ dir, shard: true, readonly: false, clock: () => (t += step) });
      await s.open();
      const [a, b, c, ...others] = [...files.keys()];
      const rest = others.map((k) => [k, files.get(k)!] as const);
      const big = newKey();
      const bigJwt = "x".repeat(200_000);
      await s.put(big, bigJwt);
      for (const [k, jwt] of rest) assert.equal(await storedJwt(s, k), jwt);
      assert.equal(await storedJwt(s, big), bigJwt);
      const path = (k: string): string => join(dir, k!.slice(-2), `${k}.jwt`);
      // Changed behind the index's back: longer, same length, gone. None is served as the entry.
      writeFileSync(path(a!), files.get(a!)! + "more");
      writeFileSync(path(b!), files.get(b!)!.replace(/^jwt/, "JWT"));
      rmSync(path(c!));
      for (const k of [a!, b!, c!]) assert.equal(await storedJwt(s, k), undefined);
      writeFileSync(path(big), bigJwt.slice(1) + "y");
      assert.equal(await storedJwt(s, big), undefined);
      await s.close();
    });
  }
});
