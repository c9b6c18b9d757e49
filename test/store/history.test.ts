/**
 * Version history for the directory store: every change recorded in the state directory, bounded,
 * surviving a restart, and served by the history endpoints.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { defaultConfig } from "../../src/config/types.js";
import { createLogger } from "../../src/log.js";
import { HistoryLog } from "../../src/store/history.js";
import { Journal } from "../../src/store/journal.js";
import { accountEntry } from "../../src/store/types.js";
import { accountJwt, createAccount, makeOperator, newJti, nowSec, signJwt } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/processes.js";
import { startServer } from "../helpers/server.js";

describe("history - directory store", () => {
  it("records each version (and deletions), keeps the last N, survives a restart", async () => {
    const op = makeOperator();
    const dir = tempDir("hist-");
    const store = { dir: join(dir, "store"), shard: true, history: 3 };
    const a = createAccount();
    const k = a.getPublicKey();
    const versions = Array.from({ length: 5 }, (_, i) => accountJwt(a, op.signer, { iat: nowSec() + i, name: `v${i}` }));
    let t = await startServer({ operator: op, dir, store });
    for (const v of versions) assert.equal((await fetch(`${t.base}/jwt/v1/accounts/${k}`, { method: "POST", body: v })).status, 200);
    const opKey = op.signer.getPublicKey();
    const del = signJwt({ jti: newJti(), iat: nowSec(), iss: opKey, sub: opKey, nats: { accounts: [k], version: 2 } }, op.signer);
    assert.equal((await fetch(`${t.base}/jwt/v1/accounts`, { method: "DELETE", body: del })).status, 200);
    await t.stop();
    // The store directory itself holds only the layout's files.
    assert.deepEqual(readdirSync(join(dir, "store", k.slice(-2))), [`${k}.jwt.deleted`]);

    t = await startServer({ operator: op, dir, store });
    try {
      const r = await fetch(`${t.base}/jwt/v1/accounts/${k}/history`);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get("content-type"), "application/json");
      const h = (await r.json()) as { account: string; versions: Array<{ revision: number; jti?: string; deleted?: boolean; size?: number }> };
      assert.equal(h.account, k);
      assert.deepEqual(h.versions.map((v) => v.revision), [4, 5, 6]);
      assert.equal(h.versions[2]!.deleted, true);
      const v5 = await fetch(`${t.base}/jwt/v1/accounts/${k}/history/5`);
      assert.equal(await v5.text(), versions[4]);
      assert.equal((await fetch(`${t.base}/jwt/v1/accounts/${k}/history/1`)).status, 404);
      const none = await fetch(`${t.base}/jwt/v1/accounts/${createAccount().getPublicKey()}/history`);
      assert.equal(none.status, 404);
      assert.equal(none.headers.get("content-type"), "application/json");
    } finally {
      await t.stop();
    }
  });

  it("a change replayed from the journal after a crash is in the history too", async () => {
    const op = makeOperator();
    const dir = tempDir("hist-crash-");
    const store = { dir: join(dir, "store"), shard: true, history: 5 };
    const a = createAccount();
    const k = a.getPublicKey();
    const v1 = accountJwt(a, op.signer, { iat: nowSec(), name: "v1" });
    const v2 = accountJwt(a, op.signer, { iat: nowSec() + 1, name: "v2" });
    let t = await startServer({ operator: op, dir, store });
    assert.equal((await fetch(`${t.base}/jwt/v1/accounts/${k}`, { method: "POST", body: v1 })).status, 200);
    await t.stop();
    // What a kill -9 right after v2's journal line was synced leaves: no file, no history line.
    const journal = new Journal(store.dir, createLogger(defaultConfig().logging, { write: () => {}, isTTY: false }));
    await journal.recover();
    await journal.append({ op: "put", key: k, jwt: v2 });
    await journal.close();
    t = await startServer({ operator: op, dir, store });
    try {
      assert.equal(await (await fetch(`${t.base}/jwt/v1/accounts/${k}`)).text(), v2);
      const h = (await (await fetch(`${t.base}/jwt/v1/accounts/${k}/history`)).json()) as { versions: Array<{ revision: number }> };
      assert.deepEqual(h.versions.map((v) => v.revision), [1, 2]);
      assert.equal(await (await fetch(`${t.base}/jwt/v1/accounts/${k}/history/2`)).text(), v2);
    } finally {
      await t.stop();
    }
    // A clean restart adds nothing.
    t = await startServer({ operator: op, dir, store });
    try {
      const h = (await (await fetch(`${t.base}/jwt/v1/accounts/${k}/history`)).json()) as { versions: unknown[] };
      assert.equal(h.versions.length, 2);
    } finally {
      await t.stop();
    }
  });

  it("the log stays bounded: closed segments that are mostly old versions are compacted away", async () => {
    const op = makeOperator();
    const dir = join(tempDir("hist-bound-"), "history");
    const segmentBytes = 4096;
    const log = new HistoryLog({ dir, limit: 3, segmentBytes });
    await log.open();
    const accounts = [createAccount(), createAccount()];
    const latest = new Map<string, string[]>();
    for (let i = 0; i < 60; i++) {
      const a = accounts[i % 2]!;
      const k = a.getPublicKey();
      const jwt = accountJwt(a, op.signer, { name: `v${i}` });
      latest.set(k, [...(latest.get(k) ?? []), jwt].slice(-3));
      log.record({ key: k, entry: accountEntry(k, jwt), jwt, previous: undefined, source: "http", jti: "" });
      if (i % 7 === 0) await log.sync();
    }
    await log.sync();
    for (const a of accounts) {
      const k = a.getPublicKey();
      const versions = await log.history(k);
      assert.deepEqual(versions.map((v) => v.revision), [28, 29, 30]);
      assert.deepEqual(versions.map((v) => v.jwt), latest.get(k));
    }
    // 60 versions of ~700 bytes were written; what stays is about the live 6 plus open segments.
    const bytes = readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
    assert.ok(bytes < 4 * segmentBytes + 6 * 1000, `${bytes} bytes on disk in ${readdirSync(dir).length} segment(s)`);
    // A fresh reader (another process after a restart) sees the same and continues the numbering.
    const again = new HistoryLog({ dir, limit: 3, segmentBytes });
    await again.open();
    const k0 = accounts[0]!.getPublicKey();
    assert.deepEqual((await again.history(k0)).map((v) => v.jwt), latest.get(k0));
    const next = accountJwt(accounts[0]!, op.signer, { name: "next" });
    again.record({ key: k0, entry: accountEntry(k0, next), jwt: next, previous: undefined, source: "http", jti: "" });
    assert.deepEqual((await again.history(k0)).map((v) => v.revision), [29, 30, 31]);
    await log.close();
    await again.close();
  });
});
