/**
 * What `nsc push -u nats://…`, `nsc push --prune` and `nsc pull -A` do over NATS, step by step
 * and with nsc's acceptance rules, against our server plus a full and a cache nats-server.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { goAccountJwt as accountJwt, createAccount, makeOperator, nowSec, userCreds } from "../helpers/fixtures.js";
import { freePort, startNatsServer, tempDir, type NatsServer } from "../helpers/processes.js";
import type { TestServer } from "../helpers/server.js";
import { collect, connectCreds, get, nscMultiRequest, nscPrune, nscPull, nscPush, resolverConf, resolverFile, startPeer, until } from "./kit.js";

describe("nsc over NATS against our server and a full + cache nats-server cluster", () => {
  const op = makeOperator();
  const a = createAccount();
  const b = createAccount();
  const jwtA = accountJwt(a, op.signer, { name: "A" });
  const jwtB = accountJwt(b, op.signer, { name: "B" });
  let full: NatsServer;
  let cache: NatsServer;
  let t: TestServer;
  let fullDir: string;

  before(async () => {
    const dir = tempDir();
    fullDir = join(dir, "full-jwt");
    const [r1, r2] = [await freePort(), await freePort()];
    const cluster = (name: string, own: number, other: number): string =>
      `server_name: ${name}\ncluster { name: nas, listen: "127.0.0.1:${own}", routes: ["nats-route://127.0.0.1:${other}"] }`;
    full = await startNatsServer(resolverConf(op, dir, { type: "full", jwtDir: fullDir, extra: cluster("full", r1, r2) }));
    const cdir = tempDir();
    cache = await startNatsServer(resolverConf(op, cdir, { type: "cache", jwtDir: join(cdir, "jwt"), extra: cluster("cache", r2, r1) }));
    await full.proc.waitFor(/Route connection created/);
    await cache.proc.waitFor(/Route connection created/);
    t = await startPeer(op, full.url, dir, { syncInterval: 500 });
    // Our subscriptions must have reached the cache server through the route.
    await until("our server to be reachable from the cache server", async () => {
      const nc = await connectCreds(cache.url, userCreds(op.sys).creds, { reconnect: false });
      try {
        const replies = await collect(nc, "$SYS.REQ.CLAIMS.LIST", "", 300);
        return replies.some((r) => r.server.name === "nats-account-server");
      } finally {
        await nc.close();
      }
    });
  });
  after(async () => {
    await t?.stop();
    await cache?.stop();
    await full?.stop();
  });

  it("nsc push -u nats://: every server (the two nats-servers and ours) answers with success", async () => {
    for (const jwt of [op.sysJwt, jwtA, jwtB]) {
      const r = await nscPush(cache.url, op, jwt);
      assert.deepEqual(r.errors, []);
      assert.equal(r.ok.length, 3, `answered by ${r.ok.join(", ")}`);
      assert.ok(r.ok.includes("nats-account-server"));
    }
    assert.equal((await get(t, a.getPublicKey())).body, jwtA);
    assert.equal((await get(t, b.getPublicKey())).body, jwtB);
    assert.equal(resolverFile(fullDir, a.getPublicKey()), jwtA);
    // A user of A connects through the cache server.
    const nc = await connectCreds(cache.url, userCreds(a).creds, { reconnect: false });
    await nc.close();
  });

  it("nsc push twice within one second (same iat and jti, as nsc issues them): the second is kept", async () => {
    const e = createAccount();
    const iat = nowSec();
    const e1 = accountJwt(e, op.signer, { name: "E", iat, limits: { conn: 4 } });
    const e2 = accountJwt(e, op.signer, { name: "E", iat, limits: { conn: 3 } });
    for (const jwt of [e1, e2]) {
      const r = await nscPush(cache.url, op, jwt);
      assert.deepEqual(r.errors, []);
      assert.ok(r.ok.includes("nats-account-server"), `answered by ${r.ok.join(", ")}`);
    }
    assert.equal((await get(t, e.getPublicKey())).body, e2);
    await until("the full server to hold the second edit", () => resolverFile(fullDir, e.getPublicKey()) === e2);
    // Pack syncs with the full server leave it so.
    await t.server.packSync!.syncOnce();
    assert.equal((await get(t, e.getPublicKey())).body, e2);
  });

  it("nsc push --prune: LIST then DELETE, as many DELETE replies as LIST replies", async () => {
    const local = new Set([op.sys.getPublicKey(), a.getPublicKey()]);
    const r = await nscPrune(cache.url, op, local, op.operator);
    assert.deepEqual(r.errors, []);
    assert.equal(r.list.ok.length, 3);
    assert.ok(r.deleted.includes(b.getPublicKey()));
    assert.ok(!r.deleted.includes(a.getPublicKey()));
    assert.equal(r.del?.ok.length, 3);
    assert.equal((await get(t, b.getPublicKey())).status, 404);
    await until("the full server to rename B", () => resolverFile(fullDir, b.getPublicKey(), ".jwt.deleted") !== undefined);
    // A second prune finds nothing left to delete (once every server has applied the first: on
    // a loaded machine the cache server can still list them for a moment).
    const sys = await connectCreds(cache.url, userCreds(op.sys).creds, { reconnect: false });
    try {
      await until("no server to list a deleted account", async () => {
        const list = await nscMultiRequest(sys, "$SYS.REQ.CLAIMS.LIST", undefined);
        return list.ok.length === 3 && list.data.every((d) => (d as string[]).every((k) => local.has(k)));
      });
    } finally {
      await sys.close();
    }
    const again = await nscPrune(cache.url, op, local, op.operator);
    assert.deepEqual(again.errors, []);
    assert.deepEqual(again.deleted, []);
  });

  it("nsc pull -A over HTTP finds the operator at /jwt/v2/operator as well as v1", async () => {
    for (const v of ["v2", "v1"]) {
      const r = await fetch(`${t.base}/jwt/${v}/operator`);
      assert.equal(r.status, 200, v);
      assert.equal(r.headers.get("content-type"), "application/jwt");
      assert.equal(await r.text(), op.operatorJwt);
    }
  });

  it("nsc pull -A over NATS reads the pack to its end marker, deleted accounts stay out", async () => {
    // Whoever of the full server and ours answers (queue group), the content is the same.
    for (let i = 0; i < 4; i++) {
      const r = await nscPull(cache.url, op);
      assert.deepEqual(r.errors, []);
      assert.equal(r.jwts.get(a.getPublicKey()), jwtA);
      assert.equal(r.jwts.get(op.sys.getPublicKey()), op.sysJwt);
      assert.ok(!r.jwts.has(b.getPublicKey()));
    }
    // Several pack syncs later B is still deleted with us.
    await t.server.packSync!.syncOnce();
    await t.server.packSync!.syncOnce();
    assert.equal((await get(t, b.getPublicKey())).status, 404);
  });
});
