/**
 * Operator-signed deletion over HTTP (`DELETE /jwt/v1/accounts`, nsc's DELETE claim as body):
 * refusal reasons as nats-server words them, tombstones that survive restarts and sync.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { AccountServerError } from "../../src/errors.js";
import { accountJwt, createAccount, createOperator, makeOperator, newJti, nowSec, signJwt, type KeyPair } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/processes.js";
import { startServer, type TestServer } from "../helpers/server.js";

/** The claim exactly as nsc builds it: no type, no aud, sub = iss. */
function deleteClaim(signer: KeyPair, accounts: unknown, o: { sub?: string; exp?: number } = {}): string {
  const iss = signer.getPublicKey();
  return signJwt(
    { jti: newJti(), iat: nowSec(), iss, sub: o.sub ?? iss, ...(o.exp ? { exp: o.exp } : {}), nats: { accounts, version: 2 } },
    signer,
  );
}

async function del(t: TestServer, body: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await fetch(`${t.base}/jwt/v1/accounts`, { method: "DELETE", body });
  assert.equal(r.headers.get("content-type"), "application/json");
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
}

describe("http - account deletion", () => {
  const op = makeOperator();
  let t: TestServer;
  before(async () => {
    t = await startServer({ operator: op, systemAccount: true, store: { dir: join(tempDir(), "store"), shard: true } });
  });
  after(() => t.stop());

  it("refusals: not self signed, not trusted, malformed, system account", async () => {
    const a = createAccount().getPublicKey();
    const cases: Array<[string, string, number, RegExp]> = [
      ["garbage", "nope", 400, /bad JWT in request/],
      ["not self signed", deleteClaim(op.signer, [a], { sub: createOperator().getPublicKey() }), 400, /^not self signed$/],
      ["foreign operator", deleteClaim(createOperator(), [a]), 400, /^not trusted$/],
      ["account key signer", deleteClaim(createAccount(), [a]), 400, /^not trusted$/],
      ["no accounts", deleteClaim(op.signer, undefined), 400, /^malformed request$/],
      ["bad key", deleteClaim(op.signer, [a, "ANOTAKEY"]), 400, /^malformed request$/],
      ["expired", deleteClaim(op.signer, [a], { exp: nowSec() - 5 }), 400, /^malformed request$/],
      ["system account", deleteClaim(op.signer, [a, op.sys.getPublicKey()]), 400, /^not allowed to delete system account$/],
    ];
    for (const [name, body, status, re] of cases) {
      const r = await del(t, body);
      assert.equal(r.status, status, name);
      assert.match((r.json["error"] as { description: string }).description, re, name);
    }
  });

  it("deletes, tombstones on disk, 404 afterwards; sync never restores; a deliberate upload does", async () => {
    const a = createAccount();
    const k = a.getPublicKey();
    const jwt = accountJwt(a, op.signer);
    assert.equal((await fetch(`${t.base}/jwt/v1/accounts/${k}`, { method: "POST", body: jwt })).status, 200);
    const never = createAccount().getPublicKey();
    const r = await del(t, deleteClaim(op.signer, [k, never]));
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { code: 200, message: "deleted 2 accounts", accounts: [k, never] });
    assert.equal((await fetch(`${t.base}/jwt/v1/accounts/${k}`)).status, 404);
    const store = t.server.config.store.dir!;
    assert.ok(existsSync(join(store, k.slice(-2), `${k}.jwt.deleted`)));
    assert.ok(!existsSync(join(store, k.slice(-2), `${k}.jwt`)));
    assert.ok(t.logs.some((l) => l.endsWith(`[INF] deleted JWT for account - ${k.slice(0, 12)}`)));

    const newer = accountJwt(a, op.signer, { iat: nowSec() + 1 });
    for (const source of ["sync", "primary", "lookup"] as const) {
      await assert.rejects(
        t.server.registry.accept(newer, { source }),
        (e) => e instanceof AccountServerError && e.code === "ACCOUNT_DELETED",
      );
    }
    assert.equal((await fetch(`${t.base}/jwt/v1/accounts/${k}`, { method: "POST", body: newer })).status, 200);
    assert.equal(await (await fetch(`${t.base}/jwt/v1/accounts/${k}`)).text(), newer);
    assert.ok(!existsSync(join(store, k.slice(-2), `${k}.jwt.deleted`)));
  });

  it("tombstones survive a restart", async () => {
    const a = createAccount();
    const k = a.getPublicKey();
    await fetch(`${t.base}/jwt/v1/accounts/${k}`, { method: "POST", body: accountJwt(a, op.signer) });
    assert.equal((await del(t, deleteClaim(op.signer, [k]))).status, 200);
    const again = await startServer({ operator: op, store: { dir: t.server.config.store.dir!, shard: true } });
    try {
      assert.equal(again.server.registry.store.isDeleted(k), true);
      assert.equal((await fetch(`${again.base}/jwt/v1/accounts/${k}`)).status, 404);
    } finally {
      await again.stop();
    }
  });
});

describe("http - deletion disabled", () => {
  const op = makeOperator();
  let t: TestServer;
  before(async () => {
    t = await startServer({ operator: op, store: { allowDelete: false } });
  });
  after(() => t.stop());

  it("answers 405 with nats-server's reason", async () => {
    const r = await del(t, deleteClaim(op.signer, [createAccount().getPublicKey()]));
    assert.equal(r.status, 405);
    assert.match((r.json["error"] as { description: string }).description, /delete must be enabled in server config/);
  });
});

