/**
 * The store contract, run against every backend (memory, flat and sharded directories), plus the
 * directory store's on-disk promises: layout, durable writes, leftovers, read-only watching.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DirStore } from "../../src/store/dir.js";
import { MemoryStore } from "../../src/store/memory.js";
import { digestOf, type ExternalChange, type JwtStore } from "../../src/store/types.js";
import { createAccount } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/processes.js";
import { storedJwt } from "../helpers/stored.js";

function xorOf(values: string[]): Buffer {
  const acc = Buffer.alloc(32);
  for (const v of values) {
    const h = createHash("sha256").update(v).digest();
    for (let i = 0; i < 32; i++) acc[i]! ^= h[i]!;
  }
  return acc;
}

const backends: Array<[string, () => JwtStore]> = [
  ["memory", () => new MemoryStore()],
  ["dir flat", () => new DirStore({ dir: join(tempDir(), "s"), shard: false, readonly: false })],
  ["dir sharded", () => new DirStore({ dir: join(tempDir(), "s"), shard: true, readonly: false })],
];

for (const [name, make] of backends) {
  describe(`store - ${name} contract`, () => {
    it("put, get, replace, remove, and an incremental XOR hash", async () => {
      const s = make();
      await s.open();
      assert.deepEqual(s.hash(), Buffer.alloc(32));
      const k1 = createAccount().getPublicKey();
      const k2 = createAccount().getPublicKey();
      await s.put(k1, "jwt-1");
      await s.put(k2, "jwt-2");
      assert.equal(await storedJwt(s, k1), "jwt-1");
      assert.equal(s.size, 2);
      assert.deepEqual(s.hash(), xorOf(["jwt-1", "jwt-2"]));
      await s.put(k1, "jwt-1b");
      assert.deepEqual(s.hash(), xorOf(["jwt-1b", "jwt-2"]));
      assert.deepEqual([...s.entries()].map((e) => e.key).sort(), [k1, k2].sort());
      await s.remove(k2);
      assert.equal(s.get(k2), undefined);
      assert.deepEqual(s.hash(), xorOf(["jwt-1b"]));
      await s.close();
    });
  });
}

describe("store - directory layout and durability", () => {
  it("flat: <dir>/<KEY>.jwt with the exact bytes; sharded: <dir>/<last 2>/<KEY>.jwt", async () => {
    for (const shard of [false, true]) {
      const dir = join(tempDir(), "s");
      const s = new DirStore({ dir, shard, readonly: false });
      await s.open();
      const k = createAccount().getPublicKey();
      await s.put(k, "abc\n");
      // Acknowledged once in the store's journal; the checkpoint has the file durable and drops the journal.
      assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith(".journal.")), [".journal.1"]);
      await s.journaled!.checkpoint();
      const path = shard ? join(dir, k.slice(-2), `${k}.jwt`) : join(dir, `${k}.jwt`);
      assert.equal(readFileSync(path, "utf8"), "abc\n");
      assert.equal(statSync(path).mode & 0o777, 0o640);
      await s.close();
      assert.deepEqual(readdirSync(shard ? join(dir, k.slice(-2)) : dir), [`${k}.jwt`]);
    }
  });

  it("reopening indexes what is on disk; stray files and foreign layouts are ignored", async () => {
    const dir = join(tempDir(), "s");
    const k1 = createAccount().getPublicKey();
    const k2 = createAccount().getPublicKey();
    const s = new DirStore({ dir, shard: true, readonly: false });
    await s.open();
    await s.put(k1, "one");
    await s.put(k2, "two");
    await s.close();
    writeFileSync(join(dir, "operator.jwt"), "op");
    writeFileSync(join(dir, `${k1}.jwt`), "flat file in a sharded store");
    mkdirSync(join(dir, "zz"), { recursive: true });
    writeFileSync(join(dir, "zz", `${k1}.jwt`), "wrong shard");
    writeFileSync(join(dir, k2.slice(-2), `${k2}.jwt.deleted`), "tombstone");
    const again = new DirStore({ dir, shard: true, readonly: false });
    await again.open();
    assert.equal(again.size, 2);
    assert.equal(await storedJwt(again, k1), "one");
    assert.deepEqual(again.hash(), xorOf(["one", "two"]));
  });

  it("temp files of interrupted writes are removed at start; none are left by writes", async () => {
    const dir = join(tempDir(), "s");
    mkdirSync(join(dir, "AB"), { recursive: true });
    const k = createAccount().getPublicKey();
    writeFileSync(join(dir, `.${k}.jwt.0badc0ffee00.tmp`), "torn");
    writeFileSync(join(dir, "AB", ".x.jwt.123.tmp"), "torn");
    const s = new DirStore({ dir, shard: true, readonly: false });
    await s.open();
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith(".tmp")), []);
    assert.deepEqual(readdirSync(join(dir, "AB")), []);
    await Promise.all(Array.from({ length: 20 }, (_, i) => s.put(k, `v${i}`)));
    await s.close();
    const files = readdirSync(join(dir, k.slice(-2)));
    assert.deepEqual(files, [`${k}.jwt`]);
  });

  it("a failed write is refused, leaves the previous content and no temp file, and is journaled as undone", async () => {
    const dir = join(tempDir(), "s");
    // No checkpoint while the test plays a crash: the journal must stay.
    const s = new DirStore({ dir, shard: false, readonly: false, checkpointMs: 3_600_000 });
    await s.open();
    const k = createAccount().getPublicKey();
    await s.put(k, "good");
    // Make the target a directory so the rename fails.
    rmSync(join(dir, `${k}.jwt`));
    mkdirSync(join(dir, `${k}.jwt`));
    writeFileSync(join(dir, `${k}.jwt`, "x"), "");
    await assert.rejects(s.put(k, "bad"));
    // The index still describes the previous version (its file is what the test broke).
    assert.equal(s.get(k)?.digest, digestOf("good"));
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith(".tmp")), []);
    // A replay (a crash now) restores "good", not the refused "bad".
    rmSync(join(dir, `${k}.jwt`), { recursive: true });
    const after = new DirStore({ dir, shard: false, readonly: false });
    await after.open();
    assert.equal(await storedJwt(after, k), "good");
    assert.equal(readFileSync(join(dir, `${k}.jwt`), "utf8"), "good");
    await after.close();
  });
});

describe("store - read-only directory", () => {
  /** Collects reported changes; `next(n)` waits until n have arrived. */
  class Collector {
    readonly changes: ExternalChange[] = [];
    private wake: (() => void) | undefined;
    push = (c: ExternalChange): void => {
      this.changes.push(c);
      this.wake?.();
    };
    async next(n: number): Promise<ExternalChange[]> {
      const deadline = Date.now() + 5000;
      while (this.changes.length < n) {
        if (Date.now() > deadline) throw new Error(`expected ${n} changes, got ${JSON.stringify(this.changes)}`);
        await new Promise<void>((r) => {
          this.wake = r;
          setTimeout(r, 100);
        });
      }
      return this.changes;
    }
  }

  for (const shard of [false, true]) {
    it(`${shard ? "sharded" : "flat"}: files created, edited, renamed in and removed are reported`, async () => {
      const dir = join(tempDir(), "ro");
      const k1 = createAccount().getPublicKey();
      const k2 = createAccount().getPublicKey();
      const p = (k: string): string => (shard ? join(dir, k.slice(-2), `${k}.jwt`) : join(dir, `${k}.jwt`));
      mkdirSync(dir, { recursive: true });
      if (shard) mkdirSync(join(dir, k1.slice(-2)), { recursive: true });
      writeFileSync(p(k1), "first");
      const s = new DirStore({ dir, shard, readonly: true });
      await s.open();
      assert.equal(s.writable, false);
      assert.equal(await storedJwt(s, k1), "first");
      const c = new Collector();
      s.watch(c.push);

      writeFileSync(p(k1), "second");
      assert.deepEqual((await c.next(1))[0], { key: k1, jwt: "second" });
      await s.put(k1, "second"); // the registry adopts it; a read-only put never writes

      // A git-style update: new shard folder, file written elsewhere and renamed in.
      if (shard) mkdirSync(join(dir, k2.slice(-2)), { recursive: true });
      const tmp = join(dir, "incoming.tmp");
      writeFileSync(tmp, "k2 content");
      renameSync(tmp, p(k2));
      const ch = await c.next(2);
      assert.deepEqual(ch[1], { key: k2, jwt: "k2 content" });
      await s.put(k2, "k2 content");

      rmSync(p(k1));
      assert.deepEqual((await c.next(3))[2], { key: k1, jwt: undefined });
      await s.remove(k1);
      assert.ok(!existsSync(p(k1)));
      assert.equal(readFileSync(p(k2), "utf8"), "k2 content");
      await s.close();
    });
  }
});
