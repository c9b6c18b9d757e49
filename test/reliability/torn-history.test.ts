/**
 * What a kill -9 leaves in the history log (found by the crash test): a torn last line must not
 * swallow the next version, and per-account files of earlier versions are taken over.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { AccountChange } from "../../src/accounts.js";
import { HistoryLog } from "../../src/store/history.js";
import { accountEntry } from "../../src/store/types.js";
import { accountJwt, createAccount, makeOperator } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/processes.js";

const change = (key: string, jwt: string): AccountChange => ({ key, entry: accountEntry(key, jwt), jwt, previous: undefined, source: "http", jti: "" });

describe("reliability - history log after a crash", () => {
  it("the version after a torn line is kept, and the segment is whole again", async () => {
    const op = makeOperator();
    const dir = join(tempDir(), "history");
    mkdirSync(dir);
    const key = createAccount().getPublicKey();
    const v1 = accountJwt(key, op.signer, { name: "v1" });
    const file = join(dir, "1.log");
    writeFileSync(file, `${key} 1 ${JSON.stringify({ stored: new Date().toISOString(), jwt: v1 })}\n${key} 2 {"sto`);

    const log = new HistoryLog({ dir, limit: 10 });
    await log.open();
    const v2 = accountJwt(key, op.signer, { name: "v2" });
    log.record(change(key, v2));
    const versions = await log.history(key);
    assert.deepEqual(versions.map((v) => [v.revision, v.jwt]), [[1, v1], [2, v2]]);
    await log.sync();
    // Every line is whole again; a fresh reader sees the same two versions.
    const lines = readFileSync(file, "utf8").split("\n");
    assert.equal(lines.pop(), "");
    for (const line of lines) JSON.parse(line.slice(line.indexOf(" ", 57) + 1));
    await log.close();
    const again = new HistoryLog({ dir, limit: 10 });
    assert.deepEqual((await again.history(key)).map((v) => v.jwt), [v1, v2]);
    await again.close();
  });

  it("per-account files of the previous format are imported once and removed, with their compaction leftovers", async () => {
    const op = makeOperator();
    const dir = join(tempDir(), "history");
    mkdirSync(dir);
    const key = createAccount().getPublicKey();
    const jwts = [1, 2, 3].map((i) => accountJwt(key, op.signer, { name: `v${i}` }));
    const stored = new Date().toISOString();
    writeFileSync(
      join(dir, `${key}.jsonl`),
      jwts.map((jwt, i) => JSON.stringify({ revision: i + 4, stored, jwt }) + "\n").join("") + '{"revision":7,"sto',
    );
    writeFileSync(join(dir, `.${key}.jsonl.0123456789ab.tmp`), "half a compaction");
    const log = new HistoryLog({ dir, limit: 10 });
    await log.open();
    assert.deepEqual(readdirSync(dir), ["1.log"]);
    assert.deepEqual((await log.history(key)).map((v) => [v.revision, v.jwt]), [[4, jwts[0]], [5, jwts[1]], [6, jwts[2]]]);
    log.record(change(key, accountJwt(key, op.signer, { name: "v7" })));
    assert.deepEqual((await log.history(key)).map((v) => v.revision), [4, 5, 6, 7]);
    await log.close();
  });
});
