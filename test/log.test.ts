/**
 * Log line format: nats-server style timestamps with microseconds, labels, pid prefix, colours
 * only on terminals, level filtering, and the JSON alternative.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createLogger, formatTimestamp, unixDate } from "../src/log.js";
import { peekClaims } from "../src/jwt/index.js";
import { accountJwt, createAccount, makeOperator } from "./helpers/fixtures.js";
import { startServer } from "./helpers/server.js";

const base = { time: true, debug: false, trace: false, colors: false, pid: false, json: false };
// 2019-05-31 18:00:26.327583 in local time.
const at = BigInt(new Date(2019, 4, 31, 18, 0, 26).getTime()) * 1000n + 327583n;

function capture(cfg: Partial<typeof base>, isTTY = false): { lines: string[]; log: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  const log = createLogger({ ...base, ...cfg }, { write: (l) => lines.push(l), nowMicros: () => at, pid: 57440, isTTY });
  return { lines, log };
}

describe("log - format", () => {
  it("timestamps as YYYY/MM/DD HH:MM:SS.micro", () => {
    assert.equal(formatTimestamp(at), "2019/05/31 18:00:26.327583");
  });

  it("writes the seed's line shape, with levels and an optional pid", () => {
    const { lines, log } = capture({});
    log.info("nats-account-server is running");
    log.error("failed to connect to NATS, nats: no servers available for connection");
    log.warn("w");
    log.debug("hidden");
    log.trace("hidden");
    assert.deepEqual(lines, [
      "2019/05/31 18:00:26.327583 [INF] nats-account-server is running\n",
      "2019/05/31 18:00:26.327583 [ERR] failed to connect to NATS, nats: no servers available for connection\n",
      "2019/05/31 18:00:26.327583 [WRN] w\n",
    ]);
    const p = capture({ pid: true, time: false, debug: true, trace: true });
    p.log.debug("d");
    p.log.trace("t");
    assert.deepEqual(p.lines, ["[57440] [DBG] d\n", "[57440] [TRC] t\n"]);
  });

  it("colours labels only when writing to a terminal", () => {
    const tty = capture({ colors: true }, true);
    tty.log.info("x");
    assert.match(tty.lines[0]!, /\x1b\[32m\[INF\]\x1b\[0m x/);
    const pipe = capture({ colors: true }, false);
    pipe.log.info("x");
    assert.doesNotMatch(pipe.lines[0]!, /\x1b/);
  });

  it("json: one object per line", () => {
    const { lines, log } = capture({ json: true, pid: true });
    log.error("boom");
    const rec = JSON.parse(lines[0]!);
    assert.equal(rec.level, "error");
    assert.equal(rec.msg, "boom");
    assert.equal(rec.pid, 57440);
    assert.match(rec.time, /^2019-05-31T/);
  });

  it("json: account, jti, source and code are fields of their own; text lines are unchanged", () => {
    const { lines, log } = capture({ json: true, time: false });
    log.warn("refused", { account: "AKEY", jti: "J1", source: "nats", code: "OLDER_JWT" });
    log.info("plain");
    assert.deepEqual(JSON.parse(lines[0]!), { level: "warn", msg: "refused", account: "AKEY", jti: "J1", source: "nats", code: "OLDER_JWT" });
    assert.deepEqual(JSON.parse(lines[1]!), { level: "info", msg: "plain" });
    const text = capture({ time: false });
    text.log.warn("refused", { account: "AKEY", code: "OLDER_JWT" });
    assert.deepEqual(text.lines, ["[WRN] refused\n"]);
  });

  it("server time is printed in Unix date format", () => {
    assert.match(unixDate(new Date(2019, 4, 31, 18, 0, 26)), /^Fri May 31 18:00:26 \S+ 2019$/);
    assert.match(unixDate(new Date(2019, 4, 1, 8, 0, 0)), /^Wed May  1 08:00:00 \S+ 2019$/);
  });
});

describe("log - fields from a running server (logging.json)", () => {
  it("an accepted upload carries account, jti and source; a refusal account, jti, source and code", async () => {
    const op = makeOperator();
    const t = await startServer({ operator: op, logging: { json: true } });
    try {
      const a = createAccount();
      const key = a.getPublicKey();
      const jwt = accountJwt(a, op.signer);
      assert.equal((await fetch(`${t.base}/jwt/v1/accounts/${key}`, { method: "POST", body: jwt })).status, 200);
      const selfSigned = accountJwt(a, a);
      assert.equal((await fetch(`${t.base}/jwt/v1/accounts/${key}`, { method: "POST", body: selfSigned })).status, 400);
      const recs = t.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
      const updated = recs.find((r) => String(r["msg"]).startsWith("updated JWT for account"));
      assert.deepEqual(
        { account: updated?.["account"], jti: updated?.["jti"], source: updated?.["source"] },
        { account: key, jti: peekClaims(jwt)!.jti, source: "http" },
      );
      const refused = recs.find((r) => r["code"] !== undefined);
      assert.deepEqual(
        { level: refused?.["level"], account: refused?.["account"], jti: refused?.["jti"], source: refused?.["source"], code: refused?.["code"] },
        { level: "error", account: key, jti: peekClaims(selfSigned)!.jti, source: "http", code: "SIGNING_NOT_ENABLED" },
      );
    } finally {
      await t.stop();
    }
  });
});
