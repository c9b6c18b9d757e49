/**
 * Pack sync against a real full-mode nats-server 2.9.10: both sides end up with every JWT, the
 * newer JWT wins everywhere, an older one never does, deletions stick, divergence backs off.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { accountJwt, createAccount, createOperator, makeOperator, nowSec } from "../helpers/fixtures.js";
import { startNatsServer, tempDir, writeFile, type NatsServer } from "../helpers/processes.js";
import type { TestServer } from "../helpers/server.js";
import type { SyncResult } from "../../src/nats/sync.js";
import { connectSys, get, nscDeleteClaim, post, resolverConf, resolverFile, startPeer, until } from "./kit.js";
import { storedJwt } from "../helpers/stored.js";

describe("nats sync - our server and a full-mode nats-server converge", () => {
  const op = makeOperator();
  const a1 = createAccount();
  const a2 = createAccount();
  const k1 = a1.getPublicKey();
  const k2 = a2.getPublicKey();
  const t0 = nowSec() - 1000;
  const a1v1 = accountJwt(a1, op.signer, { iat: t0, name: "A1" });
  const a2v1 = accountJwt(a2, op.signer, { iat: t0, name: "A2" });
  let dir: string;
  let jwtDir: string;
  let conf: string;
  let ns: NatsServer;
  let t: TestServer;
  let sys: NatsConnection | undefined;
  /** Outcome of every pull our server made. */
  const results: SyncResult[] = [];

  /** Restart the nats-server after changing its directory (what a server that was away holds). */
  async function restartWith(files: Record<string, string | null>, serverConf = conf): Promise<void> {
    await sys?.close();
    sys = undefined;
    await ns.stop();
    for (const [name, content] of Object.entries(files)) {
      if (content === null) rmSync(join(jwtDir, name), { force: true });
      else writeFile(jwtDir, name, content);
    }
    ns = await startNatsServer(serverConf, { port: ns.port, dir });
  }

  before(async () => {
    dir = tempDir();
    jwtDir = join(dir, "jwt");
    conf = resolverConf(op, dir, { type: "full", jwtDir, interval: "1s" });
    // The nats-server holds A2, our store directory holds A1: neither has told the other.
    writeFile(jwtDir, `${k2}.jwt`, a2v1);
    const store = join(dir, "store");
    mkdirSync(store, { recursive: true });
    writeFile(store, `${k1}.jwt`, a1v1);
    ns = await startNatsServer(conf, { dir });
    t = await startPeer(op, ns.url, dir, { syncInterval: 300, store: { dir: store } });
    t.server.packSync!.onResult((r) => results.push(r));
  });
  after(async () => {
    await sys?.close();
    await t?.stop();
    await ns?.stop();
  });

  it("within a few intervals both hold both", async () => {
    await until("us to hold A2", async () => (await get(t, k2)).body === a2v1);
    await until("the nats-server to hold A1", () => resolverFile(jwtDir, k1) === a1v1);
    // The system account preloaded into the nats-server came over too, then the stores agree.
    await until("us to hold the system account", async () => (await storedJwt(t.server.registry.store, op.sys.getPublicKey())) === op.sysJwt);
    await until("the stores to agree", async () => (await t.server.packSync!.syncOnce()).outcome === "in-sync");
  });

  it("a newer JWT uploaded to us wins on the nats-server", async () => {
    const a2v2 = accountJwt(a2, op.signer, { iat: t0 + 10, name: "A2 v2" });
    assert.equal(await post(t, k2, a2v2), 200);
    await until("the nats-server to hold A2 v2", () => resolverFile(jwtDir, k2) === a2v2);
  });

  it("a newer JWT held by the nats-server wins with us", async () => {
    const a1v2 = accountJwt(a1, op.signer, { iat: t0 + 10, name: "A1 v2" });
    await restartWith({ [`${k1}.jwt`]: a1v2 });
    await until("us to take A1 v2", async () => (await get(t, k1)).body === a1v2);
    assert.equal(resolverFile(jwtDir, k1), a1v2);
  });

  it("an older JWT never wins: not from the nats-server's directory, not from an update subject", async () => {
    const current1 = (await get(t, k1)).body;
    const current2 = (await get(t, k2)).body;
    const older1 = accountJwt(a1, op.signer, { iat: t0 + 5, name: "A1 older" });
    // This time the nats-server does not pull by itself: our sync alone has to set it right.
    await restartWith({ [`${k1}.jwt`]: older1 }, resolverConf(op, dir, { type: "full", jwtDir, interval: "1m" }));
    await until("our sync to refuse the older A1", () => results.some((x) => x.outcome === "merged" && x.refused.get(k1) === "OLDER_JWT"));
    // Refused, and ours announced: the nats-server takes ours back.
    await until("the nats-server to hold the newer A1 again", () => resolverFile(jwtDir, k1) === current1);
    assert.equal((await get(t, k1)).body, current1);

    // Published where every nats-server applies it without comparing iat.
    sys = await connectSys(ns.url, op);
    const older2 = accountJwt(a2, op.signer, { iat: t0 + 5, name: "A2 older" });
    await sys.request("$SYS.REQ.CLAIMS.UPDATE", older2, { timeout: 2000 }).catch(() => undefined);
    await until("the nats-server to hold the newer A2 again", () => resolverFile(jwtDir, k2) === current2);
    assert.equal((await get(t, k2)).body, current2);
    await until("the stores to agree", async () => (await t.server.packSync!.syncOnce()).outcome === "in-sync");
  });

  it("a deleted account stays deleted across pack syncs, even when a full server still has it", async () => {
    const del = await fetch(`${t.base}/jwt/v1/accounts`, { method: "DELETE", body: nscDeleteClaim(op.signer, [k1]) });
    assert.equal(del.status, 200);
    // Forwarded: the nats-server locks it out too.
    await until("the nats-server to rename A1", () => resolverFile(jwtDir, k1, ".jwt.deleted") !== undefined);
    assert.equal(resolverFile(jwtDir, k1), undefined);
    for (let i = 0; i < 3; i++) await t.server.packSync!.syncOnce();
    assert.equal((await get(t, k1)).status, 404);

    // A full server that missed the deletion keeps offering A1 in every pack.
    const stale = resolverFile(jwtDir, k1, ".jwt.deleted")!;
    const warnsBefore = t.logs.filter((l) => /keeps differing/.test(l)).length;
    await restartWith({ [`${k1}.jwt`]: stale, [`${k1}.jwt.deleted`]: null });
    for (let i = 0; i < 4; i++) {
      const r = await until("a pack answer", async () => {
        const x = await t.server.packSync!.syncOnce();
        return x.outcome === "merged" ? x : undefined;
      });
      assert.equal(r.changed, 0);
      assert.equal(r.refused.get(k1), "ACCOUNT_DELETED");
    }
    assert.equal((await get(t, k1)).status, 404);
    // The divergence is logged once and the interval backs off instead of re-pulling at full pace.
    assert.equal(t.logs.filter((l) => /keeps differing/.test(l)).length, warnsBefore + 1);
    assert.ok(t.server.packSync!.currentIntervalMs >= 4 * 300, `interval ${t.server.packSync!.currentIntervalMs}`);
    // A real change resets it.
    const b = createAccount();
    assert.equal(await post(t, b.getPublicKey(), accountJwt(b, op.signer)), 200);
    assert.equal(t.server.packSync!.currentIntervalMs, 300);

    // Deleting over NATS reaches that server as well.
    sys ??= await connectSys(ns.url, op);
    await sys.request("$SYS.REQ.CLAIMS.DELETE", nscDeleteClaim(op.operator, [k1]), { timeout: 2000 });
    await until("the nats-server to rename A1 again", () => resolverFile(jwtDir, k1) === undefined);
  });

  it("untrusted JWTs a full server accepted are never taken over", async () => {
    const c = createAccount();
    const foreign = accountJwt(c, createOperator());
    sys ??= await connectSys(ns.url, op);
    await sys.request("$SYS.REQ.CLAIMS.UPDATE", foreign, { timeout: 2000 }).catch(() => undefined);
    await until("the nats-server to write it (it does not check trust)", () => resolverFile(jwtDir, c.getPublicKey()) === foreign);
    const r = await until("a pack answer", async () => {
      const x = await t.server.packSync!.syncOnce();
      return x.outcome === "merged" ? x : undefined;
    });
    assert.equal(r.refused.get(c.getPublicKey()), "UNTRUSTED_ISSUER");
    assert.equal((await get(t, c.getPublicKey())).status, 404);
  });

  it("a second account server joining the bus converges too", async () => {
    const t2 = await startPeer(op, ns.url, tempDir(), { syncInterval: 300 });
    try {
      for (const e of t.server.registry.store.entries()) {
        await until(`the second server to hold ${e.key.slice(0, 8)}`, async () => (await storedJwt(t2.server.registry, e.key)) === (await storedJwt(t.server.registry, e.key)));
      }
      // Nothing deleted or untrusted travelled.
      assert.equal(t2.server.registry.get(k1), undefined);
      assert.equal(t2.server.registry.store.size, t.server.registry.store.size);
    } finally {
      await t2.stop();
    }
  });
});
