/**
 * Expiry sweeper on a real directory store with a fake clock: expired JWTs leave the store in
 * expiry order, updates re-arm or disarm it, a file that cannot be removed never stalls the sweep.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, rmdirSync, rmSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { AccountRegistry, type AccountChange } from "../src/accounts.js";
import { decodeOperatorJwt, Trust } from "../src/jwt/index.js";
import { createLogger } from "../src/log.js";
import { defaultConfig } from "../src/config/types.js";
import { DirStore } from "../src/store/dir.js";
import { DEFAULT_CLEANUP_INTERVAL_MS, ExpirySweeper } from "../src/expiry.js";
import { accountJwt, createAccount, createOperator, makeOperator, nowSec } from "./helpers/fixtures.js";
import { tempDir, writeFile } from "./helpers/processes.js";
import { startServer } from "./helpers/server.js";

const signer = createOperator();
const op = { ...makeOperator({ extraSigningKeys: [signer.getPublicKey()] }), signer };

async function setup(o: { intervalMs?: number; files?: string[] } = {}) {
  const dir = tempDir("nas-expiry-");
  for (const jwt of o.files ?? []) {
    writeFile(dir, `${JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString()).sub}.jwt`, jwt);
  }
  let clock = Date.now();
  const logs: string[] = [];
  const log = createLogger({ ...defaultConfig().logging, colors: false, debug: true }, { write: (l) => logs.push(l.trimEnd()) });
  const store = new DirStore({ dir, shard: false, readonly: false, log });
  await store.open();
  const registry = new AccountRegistry({ store, trust: new Trust(decodeOperatorJwt(op.operatorJwt)), log, now: () => clock });
  const changes: AccountChange[] = [];
  registry.onChange((c) => changes.push(c));
  const sweeper = new ExpirySweeper({ registry, log, intervalMs: o.intervalMs ?? 0, now: () => clock });
  return {
    dir,
    store,
    registry,
    sweeper,
    logs,
    changes,
    /** Move the fake clock forward. */
    advance: (ms: number) => {
      clock += ms;
    },
    nowSec: () => Math.floor(clock / 1000),
    async put(exp?: number) {
      const a = createAccount();
      const jwt = accountJwt(a, op.signer, exp !== undefined ? { exp } : {});
      await registry.accept(jwt, { source: "http" });
      return a.getPublicKey();
    },
    close: async () => {
      sweeper.stop();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe("expiry sweeper", () => {
  it("0 means the legacy one-minute interval", async () => {
    const t = await setup({ intervalMs: 0 });
    assert.equal(t.sweeper.intervalMs, DEFAULT_CLEANUP_INTERVAL_MS);
    assert.equal(DEFAULT_CLEANUP_INTERVAL_MS, 60_000);
    await t.close();
  });

  it("removes expired JWTs in expiry order, file and index, without touching the others", async () => {
    const t = await setup();
    const now = t.nowSec();
    const soon = await t.put(now + 10);
    const later = await t.put(now + 20);
    const never = await t.put();
    t.sweeper.start();
    assert.equal(await t.sweeper.sweep(), 0);

    t.advance(15_000);
    assert.equal(await t.sweeper.sweep(), 1);
    assert.equal(t.store.get(soon), undefined);
    assert.equal(existsSync(join(t.dir, `${soon}.jwt`)), false);
    assert.ok(t.store.get(later));

    t.advance(10_000);
    assert.equal(await t.sweeper.sweep(), 1);
    assert.equal(t.store.get(later), undefined);
    assert.ok(t.store.get(never));
    assert.ok(existsSync(join(t.dir, `${never}.jwt`)));

    const removals = t.changes.filter((c) => !c.entry);
    assert.deepEqual(removals.map((c) => [c.key, c.source]), [[soon, "expiry"], [later, "expiry"]]);
    assert.ok(t.logs.some((l) => l.includes(`[INF] JWT for account - ${soon.slice(0, 12)} - expired at`)));
    await t.close();
  });

  it("JWTs already in the store at start are tracked; only expiring ones are indexed", async () => {
    const now = nowSec();
    const a = createAccount();
    const b = createAccount();
    const files = Array.from({ length: 20 }, () => accountJwt(createAccount(), op.signer));
    files.push(accountJwt(a, op.signer, { exp: now + 5 }), accountJwt(b, op.signer, { exp: now + 6 }));
    // Written before the store opens: the sweeper learns them from the index, not from changes.
    const t = await setup({ files });
    t.sweeper.start();
    assert.equal(t.sweeper.tracked, 2);
    assert.equal(t.sweeper.nextExpiry, (now + 5) * 1000);
    t.advance(7_000);
    assert.equal(await t.sweeper.sweep(), 2);
    assert.equal(t.store.get(a.getPublicKey()), undefined);
    assert.equal(t.store.get(b.getPublicKey()), undefined);
    assert.equal(t.store.size, 20);
    await t.close();
  });

  it("follows updates: a newer JWT without exp is kept, one that adds exp expires", async () => {
    const t = await setup();
    t.sweeper.start();
    const now = t.nowSec();
    const a = createAccount();
    const b = createAccount();
    await t.registry.accept(accountJwt(a, op.signer, { exp: now + 10, iat: now - 5 }), { source: "http" });
    await t.registry.accept(accountJwt(a, op.signer, { iat: now }), { source: "http" });
    await t.registry.accept(accountJwt(b, op.signer, { iat: now - 5 }), { source: "http" });
    await t.registry.accept(accountJwt(b, op.signer, { exp: now + 10, iat: now }), { source: "http" });
    t.advance(11_000);
    assert.equal(await t.sweeper.sweep(), 1);
    assert.ok(t.store.get(a.getPublicKey()), "the newer JWT without exp stays");
    assert.equal(t.store.get(b.getPublicKey()), undefined);
    await t.close();
  });

  it("a file that cannot be removed is logged and skipped, the sweep goes on and retries it later", async () => {
    const t = await setup();
    const now = t.nowSec();
    const stuck = await t.put(now + 1);
    const next = await t.put(now + 2);
    t.sweeper.start();
    // A directory where the file was: unlink fails (EISDIR) even for root.
    const file = join(t.dir, `${stuck}.jwt`);
    unlinkSync(file);
    mkdirSync(file);
    t.advance(3_000);
    assert.equal(await t.sweeper.sweep(), 1);
    assert.equal(t.store.get(next), undefined, "the JWT behind the stuck one expired");
    assert.ok(t.logs.some((l) => l.includes(`[ERR] could not remove expired JWT for account - ${stuck.slice(0, 12)}`)));
    // Retried on every sweep until the obstacle is gone.
    assert.equal(await t.sweeper.sweep(), 0);
    rmdirSync(file);
    assert.equal(await t.sweeper.sweep(), 1);
    assert.equal(t.store.get(stuck), undefined);
    await t.close();
  });

  it("an undecodable file is logged and never expires, the others still do", async () => {
    const dir = tempDir("nas-expiry-bad-");
    const bad = createAccount().getPublicKey();
    writeFile(dir, `${bad}.jwt`, "not a jwt at all");
    const good = createAccount();
    writeFile(dir, `${good.getPublicKey()}.jwt`, accountJwt(good, op.signer, { exp: nowSec() + 1 }));
    const logs: string[] = [];
    const log = createLogger({ ...defaultConfig().logging, colors: false }, { write: (l) => logs.push(l) });
    const store = new DirStore({ dir, shard: false, readonly: false, log });
    await store.open();
    let clock = Date.now();
    const registry = new AccountRegistry({ store, trust: new Trust(decodeOperatorJwt(op.operatorJwt)), log, now: () => clock });
    const sweeper = new ExpirySweeper({ registry, log, intervalMs: 1000, now: () => clock });
    sweeper.start();
    assert.ok(logs.some((l) => l.includes(`[WRN] JWT for account - ${bad.slice(0, 12)} - does not decode`)));
    clock += 5_000;
    assert.equal(await sweeper.sweep(), 1);
    assert.equal(store.get(good.getPublicKey()), undefined);
    assert.ok(store.get(bad));
    sweeper.stop();
    await store.close();
  });

  it("a JWT replaced while its removal waits is not removed", async () => {
    const t = await setup();
    t.sweeper.start();
    const now = t.nowSec();
    const a = createAccount();
    await t.registry.accept(accountJwt(a, op.signer, { exp: now + 1, iat: now - 5 }), { source: "http" });
    t.advance(2_000);
    // The update is queued on the key before the sweep's removal, so it wins.
    const update = t.registry.accept(accountJwt(a, op.signer, { iat: now }), { source: "http" });
    const swept = t.sweeper.sweep();
    await update;
    assert.equal(await swept, 0);
    assert.ok(t.store.get(a.getPublicKey()));
    await t.close();
  });
});

describe("expiry in the server", () => {
  it("store.cleanupinterval drives the sweep on the server's clock; GET answers 404 afterwards", async () => {
    let clock = Date.now();
    const t = await startServer({ operator: op, store: { dir: join(tempDir(), "store"), cleanupInterval: 20 }, now: () => clock });
    try {
      const a = createAccount();
      const key = a.getPublicKey();
      const jwt = accountJwt(a, op.signer, { exp: Math.floor(clock / 1000) + 60 });
      const post = await fetch(`${t.base}/jwt/v1/accounts/${key}`, { method: "POST", body: jwt });
      assert.equal(post.status, 200);
      assert.equal((await fetch(`${t.base}/jwt/v1/accounts/${key}`)).status, 200);
      clock += 61_000;
      const deadline = Date.now() + 5000;
      while (!t.logs.some((l) => l.includes(`JWT for account - ${key.slice(0, 12)} - expired`))) {
        assert.ok(Date.now() < deadline, `no expiry within 5 s:\n${t.logs.join("\n")}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal((await fetch(`${t.base}/jwt/v1/accounts/${key}`)).status, 404);
    } finally {
      await t.stop();
    }
  });
});
