/**
 * What a kill -9 leaves in the history log (found by the crash test): a torn last line must not
 * swallow the next version, and temp files of an interrupted compaction are removed at start.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { AccountChange } from "../../src/accounts.js";
import { HistoryLog } from "../../src/store/history.js";
import { makeEntry } from "../../src/store/types.js";
import { accountJwt, createAccount, makeOperator } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/processes.js";

describe("reliability - history log after a crash", () => {
  it("the version after a torn line is kept, and the file is whole again", async () => {
    const op = makeOperator();
    const dir = join(tempDir(), "history");
    mkdirSync(dir);
    const key = createAccount().getPublicKey();
    const file = join(dir, `${key}.jsonl`);
    const v1 = accountJwt(key, op.signer, { name: "v1" });
    writeFileSync(file, `${JSON.stringify({ revision: 1, stored: new Date().toISOString(), jwt: v1 })}\n{"revision":2,"sto`);
    writeFileSync(join(dir, `.${key}.jsonl.0123456789ab.tmp`), "half a compaction");

    const log = new HistoryLog({ dir, limit: 10 });
    await log.open();
    assert.deepEqual(readdirSync(dir), [`${key}.jsonl`]);
    const v2 = accountJwt(key, op.signer, { name: "v2" });
    const change: AccountChange = { key, entry: makeEntry(key, v2), previous: undefined, source: "http", jti: "" };
    log.record(change);
    const versions = await log.history(key);
    assert.deepEqual(versions.map((v) => [v.revision, v.jwt]), [[1, v1], [2, v2]]);
    // Every line of the file parses again; a fresh reader sees the same two versions.
    for (const line of readFileSync(file, "utf8").split("\n").slice(0, -1)) JSON.parse(line);
    const again = await new HistoryLog({ dir, limit: 10 }).history(key);
    assert.deepEqual(again.map((v) => v.jwt), [v1, v2]);
  });
});
