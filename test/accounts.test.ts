/**
 * The write path: check order, iat ordering under concurrency, and exactly one change event per
 * actual change, whatever the source.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { AccountRegistry, type AccountChange } from "../src/accounts.js";
import { AccountServerError } from "../src/errors.js";
import { decodeOperatorJwt, Trust } from "../src/jwt/index.js";
import { silentLogger } from "../src/log.js";
import { MemoryStore } from "../src/store/memory.js";
import { DirStore } from "../src/store/dir.js";
import { accountJwt, createAccount, makeOperator, nowSec } from "./helpers/fixtures.js";
import { tempDir } from "./helpers/processes.js";
import { storedJwt } from "./helpers/stored.js";
import { digestOf } from "../src/store/index.js";

function setup(store = new MemoryStore()) {
  const op = makeOperator();
  const registry = new AccountRegistry({ store, trust: new Trust(decodeOperatorJwt(op.operatorJwt)), log: silentLogger });
  const changes: AccountChange[] = [];
  registry.onChange((c) => changes.push(c));
  return { op, registry, changes };
}

const codeOf = (e: unknown): string => (e instanceof AccountServerError ? e.code : `not ours: ${String(e)}`);

describe("accounts - write path", () => {
  it("one change event per actual change; identical and same-jti uploads emit none", async () => {
    const { op, registry, changes } = setup();
    const a = createAccount();
    const v1 = accountJwt(a, op.signer);
    assert.equal((await registry.accept(v1, { source: "http", key: a.getPublicKey() })).changed, true);
    assert.equal((await registry.accept(v1, { source: "nats" })).changed, false);
    assert.equal(changes.length, 1);
    assert.equal(changes[0]!.source, "http");
    assert.equal(changes[0]!.jwt, v1);
    assert.equal(changes[0]!.previous, undefined);
    const v2 = accountJwt(a, op.signer, { name: "renamed" });
    await registry.accept(v2, { source: "sync" });
    assert.equal(changes.length, 2);
    assert.equal(changes[1]!.previous?.digest, digestOf(v1));
  });

  it("checks run in the legacy order: decode, key, subject, issuer kind, trust, validation, age", async () => {
    const { op, registry } = setup();
    const a = createAccount();
    const now = nowSec();
    // An expired self-signed JWT under the wrong key fails on the key first, then on the issuer.
    const bad = accountJwt(a, a, { exp: now - 10 });
    await assert.rejects(registry.accept(bad, { source: "http", key: createAccount().getPublicKey() }), (e) => codeOf(e) === "KEY_MISMATCH");
    await assert.rejects(registry.accept(bad, { source: "http" }), (e) => codeOf(e) === "SIGNING_NOT_ENABLED");
    await assert.rejects(
      registry.accept(accountJwt(a, op.signer, { exp: now - 10, iat: now - 100 }), { source: "http" }),
      (e) => codeOf(e) === "VALIDATION_FAILED",
    );
  });

  it("hundreds of concurrent versions: the newest iat is stored, losers get OLDER_JWT", async () => {
    const dir = tempDir();
    const { op, registry, changes } = setup(new DirStore({ dir, shard: true, readonly: false }) as never);
    await registry.store.open();
    const a = createAccount();
    const base = nowSec() - 1000;
    const versions = Array.from({ length: 200 }, (_, i) => accountJwt(a, op.signer, { iat: base + ((i * 37) % 200), name: `v${i}` }));
    const newest = versions[versions.findIndex((_, i) => (i * 37) % 200 === 199)]!;
    const results = await Promise.allSettled(versions.map((v) => registry.accept(v, { source: "http" })));
    const refused = results.filter((r) => r.status === "rejected");
    for (const r of refused) assert.equal(codeOf((r as PromiseRejectedResult).reason), "OLDER_JWT");
    assert.equal(await storedJwt(registry, a.getPublicKey()), newest);
    assert.equal(changes.at(-1)?.jwt, newest);
    assert.equal(changes.length, results.length - refused.length);
    // Every announced change was newer than the one before it.
    const iats = changes.map((c) => JSON.parse(Buffer.from(c.jwt!.split(".")[1]!, "base64url").toString()).iat as number);
    for (let i = 1; i < iats.length; i++) assert.ok(iats[i]! >= iats[i - 1]!);
  });

  it("a read-only store refuses uploads but adopts file changes", async () => {
    const dir = tempDir();
    const store = new DirStore({ dir, shard: false, readonly: true });
    await store.open();
    const { op, registry, changes } = setup(store as never);
    const a = createAccount();
    const jwt = accountJwt(a, op.signer);
    await assert.rejects(registry.accept(jwt, { source: "http" }), (e) => codeOf(e) === "READ_ONLY");
    await registry.accept(jwt, { source: "file", key: a.getPublicKey() });
    assert.equal(changes.length, 1);
    assert.equal(await storedJwt(registry, a.getPublicKey()), jwt);
  });
});
