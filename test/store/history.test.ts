/**
 * Version history for the directory store: every change recorded in the state directory, bounded,
 * surviving a restart, and served by the history endpoints.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { HistoryLog } from "../../src/store/history.js";
import { makeEntry } from "../../src/store/types.js";
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

  it("the log file stays bounded: past twice the limit it is compacted to the last N versions", async () => {
    const op = makeOperator();
    const dir = join(tempDir("hist-bound-"), "history");
    const log = new HistoryLog({ dir, limit: 3 });
    await log.open();
    const a = createAccount();
    const k = a.getPublicKey();
    for (let i = 0; i < 10; i++) {
      log.record({ key: k, entry: makeEntry(k, accountJwt(a, op.signer, { name: `v${i}` })), previous: undefined, source: "http", jti: "" });
    }
    const versions = await log.history(k);
    assert.deepEqual(versions.map((v) => v.revision), [8, 9, 10]);
    const lines = readFileSync(join(dir, `${k}.jsonl`), "utf8").split("\n").filter((l) => l !== "");
    assert.ok(lines.length <= 6, `${lines.length} lines on disk`);
    // A fresh reader (another process after a restart) continues the numbering.
    const again = new HistoryLog({ dir, limit: 3 });
    await again.open();
    again.record({ key: k, entry: makeEntry(k, accountJwt(a, op.signer, { name: "v10" })), previous: undefined, source: "http", jti: "" });
    assert.deepEqual((await again.history(k)).map((v) => v.revision), [9, 10, 11]);
  });
});
