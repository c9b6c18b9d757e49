/**
 * The bounded response cache over the compact index: it never holds more than its budget, an
 * evicted account is served byte-identical, and every change replaces or drops exactly its entry.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AccountRegistry } from "../../src/accounts.js";
import { ExpirySweeper } from "../../src/expiry.js";
import { decodeOperatorJwt, encodePublicKey, Trust } from "../../src/jwt/index.js";
import { silentLogger } from "../../src/log.js";
import { CACHE_ENTRY_OVERHEAD, ViewCache } from "../../src/store/cache.js";
import { DirStore } from "../../src/store/dir.js";
import { accountJwt, makeOperator, nowSec, type OperatorSetup } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/processes.js";

describe("bounded cache - ViewCache", () => {
  it("counts bytes plus a fixed overhead, evicts least recently used first, never exceeds the budget", () => {
    const c = new ViewCache<string>(3 * (100 + CACHE_ENTRY_OVERHEAD));
    c.set("a", "A", 100);
    c.set("b", "B", 100);
    c.set("c", "C", 100);
    assert.equal(c.bytes, 3 * (100 + CACHE_ENTRY_OVERHEAD));
    assert.equal(c.get("a"), "A"); // a is now the most recent
    c.set("d", "D", 100);
    assert.equal(c.peek("b"), undefined, "b was the least recently used");
    assert.deepEqual(["a", "c", "d"].map((k) => c.peek(k)), ["A", "C", "D"]);
    assert.equal(c.evictions, 1);
    // A value larger than the whole budget is not cached at all (and evicts nothing).
    c.set("huge", "H", 10_000);
    assert.equal(c.peek("huge"), undefined);
    assert.equal(c.size, 3);
    // Replacing a key re-counts it; deleting frees it.
    c.set("a", "A2", 50);
    assert.equal(c.bytes, 2 * (100 + CACHE_ENTRY_OVERHEAD) + 50 + CACHE_ENTRY_OVERHEAD);
    c.delete("a");
    c.delete("missing");
    assert.equal(c.bytes, 2 * (100 + CACHE_ENTRY_OVERHEAD));
    for (let i = 0; i < 1000; i++) {
      c.set(`k${i}`, "v", i % 300);
      assert.ok(c.bytes <= c.budget, `over budget after ${i}`);
    }
  });

  it("a budget of 0 caches nothing", () => {
    const c = new ViewCache<string>(0);
    c.set("a", "A", 0);
    assert.equal(c.size, 0);
    assert.equal(c.bytes, 0);
  });
});

/** A registry over a directory store whose cache holds `fits` views of `size`-byte JWTs. */
async function setup(o: { readonly?: boolean; fits: number; size: number; dir?: string; op?: OperatorSetup; clock?: { ms: number } }) {
  const op = o.op ?? makeOperator();
  const dir = o.dir ?? join(tempDir("cache-"), "store");
  const store = new DirStore({ dir, shard: true, readonly: o.readonly === true });
  await store.open();
  const clock = o.clock ?? { ms: Date.now() };
  const registry = new AccountRegistry({
    store,
    trust: new Trust(decodeOperatorJwt(op.operatorJwt)),
    log: silentLogger,
    now: () => clock.ms,
    cacheBytes: o.fits * (o.size + CACHE_ENTRY_OVERHEAD),
  });
  return { op, dir, store, registry, clock };
}

/** Account JWTs of equal length (same name length, same claims), so a budget fits an exact count. */
function sameSizeJwts(op: OperatorSetup, n: number, o: { exp?: number } = {}): Array<{ key: string; jwt: string }> {
  const out = [];
  for (let i = 0; i < n; i++) {
    // A random public key is all a subject needs (creating key pairs is slow).
    const key = encodePublicKey("account", randomBytes(32));
    out.push({ key, jwt: accountJwt(key, op.signer, { name: `acct-${String(i).padStart(6, "0")}`, iat: nowSec() - 10, ...o }) });
  }
  const len = out[0]!.jwt.length;
  assert.ok(out.every((x) => x.jwt.length === len), "fixture JWTs differ in length");
  return out;
}

describe("bounded cache - every change invalidates exactly its entry", () => {
  it("upload, deletion and expiry replace or drop the changed key's view and leave the others", async () => {
    const clock = { ms: Date.now() };
    const op = makeOperator();
    const accounts = sameSizeJwts(op, 6, { exp: nowSec() + 3600 });
    const { registry, store } = await setup({ fits: 4, size: accounts[0]!.jwt.length, op, clock });
    for (const a of accounts.slice(0, 4)) await registry.accept(a.jwt, { source: "http" });
    const [a, b, c, d] = accounts;
    const viewOf = (k: string) => registry.cache.peek(k);
    const bView = viewOf(b!.key)!;
    const dView = viewOf(d!.key)!;
    assert.ok(bView && dView);

    // Upload: a's view becomes the new version's; nothing else moves.
    const a2 = accountJwt(a!.key, op.signer, { name: "acct-00000a", iat: nowSec() });
    await registry.accept(a2, { source: "http" });
    assert.equal(viewOf(a!.key)?.jwt, a2);
    assert.equal(viewOf(b!.key), bView);
    assert.equal(viewOf(d!.key), dView);

    // Deletion: c's view goes, the others stay.
    const { nscDeleteClaim } = await import("../nats/kit.js");
    await registry.deleteAccounts(nscDeleteClaim(op.operator, [c!.key]), "http");
    assert.equal(viewOf(c!.key), undefined);
    assert.equal(viewOf(b!.key), bView);
    assert.equal(await registry.load(c!.key), undefined);

    // Expiry: only d is due (b was re-uploaded without exp).
    const b2 = accountJwt(b!.key, op.signer, { name: "acct-00000b", iat: nowSec() });
    await registry.accept(b2, { source: "http" });
    const b2View = viewOf(b!.key)!;
    const sweeper = new ExpirySweeper({ registry, log: silentLogger, intervalMs: 0, now: () => clock.ms });
    sweeper.start();
    clock.ms += 3601_000;
    // a and b were replaced by versions without `exp`, c is deleted: only d expires.
    assert.equal(await sweeper.sweep(), 1);
    sweeper.stop();
    assert.equal(viewOf(d!.key), undefined);
    assert.equal(viewOf(b!.key), b2View);
    assert.equal(store.get(d!.key), undefined);
    await store.close();
  });

  it("a file edited in a read-only directory replaces exactly its view", async () => {
    const op = makeOperator();
    const accounts = sameSizeJwts(op, 3);
    const base = join(tempDir("cache-ro-"), "store");
    // Written by "someone else" before the server starts.
    const fileOf = (k: string) => join(base, k.slice(-2), `${k}.jwt`);
    const { mkdirSync } = await import("node:fs");
    for (const a of accounts) {
      mkdirSync(join(base, a.key.slice(-2)), { recursive: true });
      writeFileSync(fileOf(a.key), a.jwt);
    }
    const { registry, store } = await setup({ readonly: true, fits: 3, size: accounts[0]!.jwt.length, op, dir: base });
    store.watch((change) => void registry.applyExternal(change, "file"));
    for (const a of accounts) assert.equal((await registry.load(a.key))?.jwt, a.jwt);
    const [x, y] = accounts;
    const yView = registry.cache.peek(y!.key)!;
    const x2 = accountJwt(x!.key, op.signer, { name: "acct-edited", iat: nowSec() });
    writeFileSync(fileOf(x!.key), x2);
    const deadline = Date.now() + 10_000;
    while (registry.view(x!.key)?.jwt !== x2) {
      assert.ok(Date.now() < deadline, "the edit was not picked up");
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(registry.cache.peek(y!.key), yView);
    assert.equal(readFileSync(fileOf(x!.key), "utf8"), x2);
    await store.close();
  });

  it("ordering (409), trust and a single change event hold for an account that is not cached", async () => {
    const op = makeOperator();
    const accounts = sameSizeJwts(op, 30);
    const { registry, store } = await setup({ fits: 2, size: accounts[0]!.jwt.length, op });
    for (const a of accounts) await registry.accept(a.jwt, { source: "http" });
    const cold = accounts[0]!;
    assert.equal(registry.cache.peek(cold.key), undefined, "the first account should have been evicted");
    const events: string[] = [];
    registry.onChange((c) => events.push(c.key));
    const older = accountJwt(cold.key, op.signer, { name: "acct-older", iat: nowSec() - 100 });
    await assert.rejects(registry.accept(older, { source: "http" }), { code: "OLDER_JWT" });
    const stranger = makeOperator();
    const untrusted = accountJwt(cold.key, stranger.signer, { name: "acct-strnge", iat: nowSec() });
    await assert.rejects(registry.accept(untrusted, { source: "http" }), { code: "UNTRUSTED_ISSUER" });
    // Same bytes again: no change at all, even though nothing of it is in memory.
    assert.equal((await registry.accept(cold.jwt, { source: "http" })).changed, false);
    assert.deepEqual(events, []);
    const newer = accountJwt(cold.key, op.signer, { name: "acct-newer", iat: nowSec() });
    await registry.accept(newer, { source: "http" });
    assert.deepEqual(events, [cold.key]);
    assert.equal((await registry.load(cold.key))?.jwt, newer);
    await store.close();
  });
});

describe("bounded cache - a 10,000-account store with a cache that fits 100 entries", () => {
  const N = 10_000;
  const FITS = 100;

  it("serves every account byte-identical over HTTP, the pack and NATS LOOKUP/PACK, within budget", async () => {
    const { startNatsServer } = await import("../helpers/processes.js");
    const { resolverConf, startPeer, connectSys } = await import("../nats/kit.js");
    const { etagOf } = await import("../helpers/http.js");
    const { mkdirSync } = await import("node:fs");
    const { createInbox } = await import("@nats-io/transport-node");
    const op = makeOperator();
    const dir = tempDir("cache-10k-");
    const storeDir = join(dir, "store");
    const accounts = sameSizeJwts(op, N);
    const byKey = new Map(accounts.map((a) => [a.key, a.jwt]));
    // Written straight to disk, as a store carried over from another server would be.
    for (const a of accounts) {
      mkdirSync(join(storeDir, a.key.slice(-2)), { recursive: true });
      writeFileSync(join(storeDir, a.key.slice(-2), `${a.key}.jwt`), a.jwt);
    }
    const size = accounts[0]!.jwt.length;
    const budget = FITS * (size + CACHE_ENTRY_OVERHEAD);
    const ns = await startNatsServer(resolverConf(op, dir, { type: "cache", jwtDir: join(dir, "ns-jwt") }));
    const t = await startPeer(op, ns.url, dir, { name: "AS", store: { dir: storeDir, shard: true, cache: budget } });
    const nc = await connectSys(ns.url, op);
    try {
      const cache = t.server.registry.cache;
      assert.equal(cache.budget, budget);
      // Every account once, 50 at a time: each answer is the file, byte for byte.
      const keys = [...byKey.keys()];
      for (let i = 0; i < keys.length; i += 50) {
        await Promise.all(
          keys.slice(i, i + 50).map(async (k) => {
            const r = await fetch(`${t.base}/jwt/v1/accounts/${k}`);
            assert.equal(r.status, 200);
            assert.equal(await r.text(), byKey.get(k));
            assert.equal(r.headers.get("etag"), etagOf(byKey.get(k)!));
          }),
        );
        assert.ok(cache.bytes <= budget && cache.size <= FITS, `cache over budget: ${cache.bytes} bytes, ${cache.size} entries`);
      }
      assert.ok(cache.evictions >= N - FITS, `only ${cache.evictions} evictions`);

      // An evicted account answers every GET variant as a cached one does.
      const k0 = keys[0]!;
      assert.equal(cache.peek(k0), undefined);
      const head = await fetch(`${t.base}/jwt/v1/accounts/${k0}`, { method: "HEAD" });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get("content-length"), String(size));
      assert.equal(cache.peek(k0)?.jwt, byKey.get(k0), "the cold read entered the cache");
      for (let i = 1; i <= FITS; i++) await (await fetch(`${t.base}/jwt/v1/accounts/${keys[i]}`)).arrayBuffer();
      assert.equal(cache.peek(k0), undefined);
      assert.equal(await (await fetch(`${t.base}/jwt/v1/accounts/${k0}?text=true`)).text(), byKey.get(k0));
      assert.match(await (await fetch(`${t.base}/jwt/v1/accounts/${keys[1]}?decode=true`)).text(), /acct-000001/);
      const nm = await fetch(`${t.base}/jwt/v1/accounts/${keys[2]}`, { headers: { "If-None-Match": etagOf(byKey.get(keys[2]!)!) } });
      assert.equal(nm.status, 304);
      assert.equal((await fetch(`${t.base}/jwt/v1/accounts/${keys[3]}?check=true`)).status, 200);

      // The replication pack holds all of them.
      const pack = await (await fetch(`${t.base}/jwt/v1/pack?max=${N}`)).text();
      const lines = pack.split("\n").filter((l) => l !== "");
      assert.equal(lines.length, N);
      for (const l of lines) {
        const bar = l.indexOf("|");
        assert.equal(l.slice(bar + 1), byKey.get(l.slice(0, bar)));
      }

      // LOOKUP of accounts that are not cached (the cache holds the last ones read).
      for (const k of keys.slice(200, 500)) {
        const m = await nc.request(`$SYS.REQ.ACCOUNT.${k}.CLAIMS.LOOKUP`, "", { timeout: 5000 });
        assert.equal(m.string(), byKey.get(k));
      }

      // PACK over NATS: every account, then the empty terminator.
      const inbox = createInbox();
      const sub = nc.subscribe(inbox);
      nc.publish("$SYS.REQ.CLAIMS.PACK", new Uint8Array(32), { reply: inbox });
      const packed = new Map<string, string>();
      const timer = setTimeout(() => sub.unsubscribe(), 20_000);
      for await (const m of sub) {
        const s = m.string();
        if (s === "") break;
        const bar = s.indexOf("|");
        packed.set(s.slice(0, bar), s.slice(bar + 1));
      }
      clearTimeout(timer);
      sub.unsubscribe();
      assert.equal(packed.size, N);
      for (const [k, jwt] of packed) assert.equal(jwt, byKey.get(k));
      assert.ok(cache.bytes <= budget && cache.size <= FITS);
    } finally {
      await nc.close();
      await t.stop();
      await ns.stop();
    }
  });
});
