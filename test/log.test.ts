/**
 * Log line format: nats-server style timestamps with microseconds, labels, pid prefix, colours
 * only on terminals, level filtering, the JSON alternative, and misses rate-limited with a count.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createLogger, formatTimestamp, limitRepeats, MAX_LOG_BACKLOG, unixDate } from "../src/log.js";
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

describe("log - repeated misses are rate-limited with a count", () => {
  const miss = (key: string) => ({ account: key, source: "http", code: "NOT_FOUND" });
  function limited(json = false) {
    const lines: string[] = [];
    let clock = 1_000_000;
    const timers: Array<() => void> = [];
    const log = limitRepeats(
      createLogger({ ...base, time: false, json }, { write: (l) => lines.push(l.trimEnd()) }),
      { codes: ["NOT_FOUND"], intervalMs: 1000, burst: 2, now: () => clock, schedule: (fn) => void timers.push(fn) },
    );
    return { lines, log, timers, advance: (ms: number) => (clock += ms) };
  }

  it("writes `burst` lines per window, then the last one with the count of the others when it closes", () => {
    const { lines, log, timers, advance } = limited();
    for (let i = 0; i < 7; i++) log.error(`K${i} - no matching account JWT - K${i}`, miss(`K${i}`));
    log.error("K9 - bad JWT in request", { account: "K9", source: "http", code: "BAD_JWT" });
    log.info("unrelated");
    assert.deepEqual(lines, [
      "[ERR] K0 - no matching account JWT - K0",
      "[ERR] K1 - no matching account JWT - K1",
      "[ERR] K9 - bad JWT in request",
      "[INF] unrelated",
    ]);
    assert.equal(timers.length, 1, "one timer per window with suppressed lines");
    advance(1000);
    timers.shift()!();
    assert.deepEqual(lines.slice(4), ["[ERR] K6 - no matching account JWT - K6 (4 similar lines suppressed)"]);
    // The next miss opens a new window: written in full again.
    log.error("K7 - no matching account JWT - K7", miss("K7"));
    assert.equal(lines.at(-1), "[ERR] K7 - no matching account JWT - K7");
  });

  it("a window also closes on the next line after it ended, or on flush; one suppressed line is just written late", () => {
    const { lines, log, advance } = limited();
    for (let i = 0; i < 4; i++) log.error(`K${i}`, miss(`K${i}`));
    advance(1000);
    log.error("K4", miss("K4"));
    assert.deepEqual(lines, ["[ERR] K0", "[ERR] K1", "[ERR] K3 (1 similar line suppressed)", "[ERR] K4"]);
    log.error("K5", miss("K5"));
    log.error("K6", miss("K6"));
    log.flush();
    assert.deepEqual(lines.slice(4), ["[ERR] K5", "[ERR] K6"]);
    log.flush();
    assert.equal(lines.length, 6, "nothing is owed twice");
  });

  it("json: the count is a field of its own and every line stays one JSON object", () => {
    const { lines, log } = limited(true);
    for (let i = 0; i < 5; i++) log.error(`K${i} - no matching account JWT - K${i}`, miss(`K${i}`));
    log.flush();
    const recs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(recs.length, 3);
    assert.deepEqual(recs[2], {
      level: "error",
      msg: "K4 - no matching account JWT - K4 (2 similar lines suppressed)",
      account: "K4",
      source: "http",
      code: "NOT_FOUND",
      suppressed: 2,
    });
  });
});

describe("log - a flood of GET misses on a running server", () => {
  it("10 lines in full per 10 s, then the count; the answers are all 404", async () => {
    let clock = Date.now();
    const t = await startServer({ operator: makeOperator(), now: () => clock });
    try {
      const mark = t.logs.length;
      const key = createAccount().getPublicKey();
      for (let i = 0; i < 25; i++) assert.equal((await fetch(`${t.base}/jwt/v1/accounts/${key}`)).status, 404);
      // The same misses on the normal path (a query string) count as the same kind of line.
      for (let i = 0; i < 5; i++) assert.equal((await fetch(`${t.base}/jwt/v1/accounts/${key}?check=false`)).status, 404);
      const line = `${key.slice(0, 12)} - no matching account JWT - ${key}`;
      const misses = () => t.logs.slice(mark).filter((l) => l.includes(line)).map((l) => l.replace(/^.*\[ERR\] /, ""));
      assert.deepEqual(misses(), Array(10).fill(line));
      clock += 10_000;
      assert.equal((await fetch(`${t.base}/jwt/v1/accounts/${key}`)).status, 404);
      assert.deepEqual(misses().slice(10), [`${line} (19 similar lines suppressed)`, line]);
    } finally {
      await t.stop();
    }
  });
});

describe("log - a reader that does not keep up", () => {
  it("drops lines while the backlog is over the bound, then says how many", () => {
    const lines: string[] = [];
    let backlog = 0;
    const log = createLogger(base, { write: (l) => lines.push(l), nowMicros: () => at, backlog: () => backlog });
    log.info("one");
    backlog = MAX_LOG_BACKLOG + 1;
    for (let i = 0; i < 1000; i++) log.error(`flood ${i}`);
    assert.equal(lines.length, 1);
    backlog = 0;
    log.info("two");
    assert.deepEqual(lines.slice(1), [
      "2019/05/31 18:00:26.327583 [WRN] 1000 log line(s) dropped: the log output was not read fast enough\n",
      "2019/05/31 18:00:26.327583 [INF] two\n",
    ]);
  });
});
