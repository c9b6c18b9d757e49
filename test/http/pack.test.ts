/**
 * `GET /jwt/v1/pack`: the line format, expiry filtering, the `max` / `maxreplicationpack` rules
 * and phrases, HEAD, and streaming of a large store (chunked, abortable).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { defaultConfig, type Config } from "../../src/config/types.js";
import { packLimit } from "../../src/http/pack.js";
import { encodePublicKey } from "../../src/jwt/index.js";
import { createLogger } from "../../src/log.js";
import { AccountServer } from "../../src/server.js";
import { accountJwt, createAccount, makeOperator, type OperatorSetup } from "../helpers/fixtures.js";
import { tempDir, writeFile } from "../helpers/processes.js";
import { raw } from "../helpers/http.js";
import { request as httpRequest } from "node:http";



/** Our server in-process with `maxreplicationpack` and an optional directory store. */
async function start(
  op: OperatorSetup,
  o: { maxPack?: number; storeDir?: string; now?: () => number },
): Promise<{ server: AccountServer; base: string }> {
  const dir = tempDir("nas-pack-");
  const d = defaultConfig();
  const config: Config = {
    ...d,
    operatorJwtPath: writeFile(dir, "op.jwt", op.operatorJwt),
    systemAccountJwtPath: writeFile(dir, "sys.jwt", op.sysJwt),
    ...(o.maxPack !== undefined ? { maxReplicationPack: o.maxPack } : {}),
    logging: { ...d.logging, colors: false },
    http: { ...d.http, host: "127.0.0.1", port: 0 },
    store: { ...d.store, ...(o.storeDir ? { dir: o.storeDir } : {}) },
  };
  const log = createLogger(config.logging, { write: () => {}, isTTY: false });
  const server = await AccountServer.start({ config, log, ...(o.now ? { now: o.now } : {}) });
  return { server, base: `http://127.0.0.1:${server.port}` };
}

describe("http - pack", () => {
  const op = makeOperator();
  let clock = Date.now();
  const nowS = Math.floor(clock / 1000);
  let s: { server: AccountServer; base: string };
  const accounts: Array<{ key: string; jwt: string }> = [];

  before(async () => {
    s = await start(op, { maxPack: 3, now: () => clock });
    assert.equal((await raw(s.base, "GET", "/jwt/v1/pack")).body, "", "empty store, empty body");
    for (let i = 0; i < 5; i++) {
      const a = createAccount();
      // The third account (in key order) expires in 100 s.
      accounts.push({ key: a.getPublicKey(), jwt: "" });
      const entry = accounts[accounts.length - 1]!;
      entry.jwt = accountJwt(a, op.signer, { name: `a${i}` });
    }
    accounts.sort((x, y) => (x.key < y.key ? -1 : 1));
    const short = accounts[2]!;
    short.jwt = accountJwt(short.key, op.signer, { exp: nowS + 100 });
    for (const a of accounts) {
      const r = await raw(s.base, "POST", `/jwt/v1/accounts/${a.key}`, {}, a.jwt);
      assert.equal(r.status, 200, r.body);
    }
  });
  after(() => s.server.stop(100));

  const lines = (list: Array<{ key: string; jwt: string }>): string => list.map((a) => `${a.key}|${a.jwt}`).join("\n");

  it("pack - key|jwt lines in key order, no trailing newline, text/plain; limited by maxreplicationpack", async () => {
    const r = await raw(s.base, "GET", "/jwt/v1/pack");
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-type"], "text/plain");
    assert.equal(r.body, lines(accounts.slice(0, 3)));
    assert.ok(!r.body.endsWith("\n"));
    assert.ok(!r.body.includes(op.sys.getPublicKey()), "the configured system account is not a stored JWT");
  });

  it("pack - max selects fewer; 0 is empty; negative and empty mean the configured limit", async () => {
    assert.equal((await raw(s.base, "GET", "/jwt/v1/pack?max=2")).body, lines(accounts.slice(0, 2)));
    assert.equal((await raw(s.base, "GET", "/jwt/v1/pack?max=1")).body, lines(accounts.slice(0, 1)));
    const zero = await raw(s.base, "GET", "/jwt/v1/pack?max=0");
    assert.equal(zero.status, 200);
    assert.equal(zero.body, "");
    for (const q of ["max=-1", "max=-100000", "max=", "max=3", "max=%2B3", "max=003"]) {
      const r = await raw(s.base, "GET", `/jwt/v1/pack?${q}`);
      assert.equal(r.status, 200, q);
      assert.equal(r.body, lines(accounts.slice(0, 3)), q);
    }
  });

  it("pack - max above the limit or not an integer answers 400 with the legacy phrases", async () => {
    const cases: Array<[string, string]> = [
      ["4", 'bad max parameter "4", no more than 3 are allowed\n'],
      ["10000", 'bad max parameter "10000", no more than 3 are allowed\n'],
      ["abc", 'bad max parameter "abc"\n'],
      ["ABC", 'bad max parameter "abc"\n'],
      ["1.5", 'bad max parameter "1.5"\n'],
      ["1e2", 'bad max parameter "1e2"\n'],
      ["99999999999999999999", 'bad max parameter "99999999999999999999"\n'],
      ["%20", 'bad max parameter " "\n'],
    ];
    for (const [v, phrase] of cases) {
      const r = await raw(s.base, "GET", `/jwt/v1/pack?max=${v}`);
      assert.equal(r.status, 400, v);
      assert.equal(r.headers["content-type"], "text/plain");
      assert.equal(r.body, phrase, v);
    }
  });

  it("pack - expired JWTs are left out", async () => {
    const saved = clock;
    clock += 200_000;
    try {
      const r = await raw(s.base, "GET", "/jwt/v1/pack?max=3");
      assert.equal(r.body, lines([accounts[0]!, accounts[1]!, accounts[3]!]));
    } finally {
      clock = saved;
    }
  });

  it("pack - HEAD answers the headers only; other methods 405", async () => {
    const h = await raw(s.base, "HEAD", "/jwt/v1/pack");
    assert.equal(h.status, 200);
    assert.equal(h.headers["content-type"], "text/plain");
    assert.equal(h.body, "");
    const p = await raw(s.base, "POST", "/jwt/v1/pack", {}, "x");
    assert.equal(p.status, 405);
    assert.equal(p.headers["allow"], "GET, HEAD, OPTIONS");
  });

  it("packLimit - the rules in isolation", () => {
    assert.equal(packLimit(undefined, 10), 10);
    assert.equal(packLimit("", 10), 10);
    assert.equal(packLimit("-1", 10), 10);
    assert.equal(packLimit("7", 10), 7);
    assert.equal(packLimit("0", 0), 0);
    assert.throws(() => packLimit("1", 0), /no more than 0 are allowed/);
  });
});

describe("http - pack of a large directory store", () => {
  const op = makeOperator();
  const N = 1300;
  let s: { server: AccountServer; base: string };
  const keys: string[] = [];
  let expiredKey = "";
  let junkKey = "";

  before(async () => {
    const dir = join(tempDir("nas-pack-big-"), "store");
    mkdirSync(dir);
    // Pack does not verify signatures, so one signed JWT can stand in for every file.
    const jwt = accountJwt(createAccount(), op.signer);
    for (let i = 0; i < N; i++) {
      // Only the key's form matters here; generating real key pairs would take seconds.
      const k = encodePublicKey("account", randomBytes(32));
      keys.push(k);
      writeFileSync(join(dir, `${k}.jwt`), jwt);
    }
    expiredKey = createAccount().getPublicKey();
    writeFileSync(join(dir, `${expiredKey}.jwt`), accountJwt(expiredKey, op.signer, { exp: 1000 }));
    // Undecodable files are packed as they are, as the Go server did (the receiver judges them).
    junkKey = createAccount().getPublicKey();
    writeFileSync(join(dir, `${junkKey}.jwt`), "junk");
    keys.push(junkKey);
    keys.sort();
    s = await start(op, { storeDir: dir });
  });
  after(() => s.server.stop(100));

  it("pack - streamed in chunks: every line, in key order, expired left out", async () => {
    const r = await raw(s.base, "GET", "/jwt/v1/pack");
    assert.equal(r.status, 200);
    assert.equal(r.headers["transfer-encoding"], "chunked");
    assert.equal(r.headers["content-length"], undefined);
    const got = r.body.split("\n");
    assert.equal(got.length, N + 1);
    assert.deepEqual(
      got.map((l) => l.slice(0, l.indexOf("|"))),
      keys,
    );
    assert.ok(got.every((l) => /^A[A-Z2-7]{55}\|\S+$/.test(l)), "no empty or torn lines");
    assert.ok(!r.body.includes(expiredKey));
    assert.ok(got.includes(`${junkKey}|junk`));
  });

  it("pack - max cuts across chunk boundaries exactly", async () => {
    for (const max of [511, 512, 513, 1024, 1025]) {
      const r = await raw(s.base, "GET", `/jwt/v1/pack?max=${max}`);
      const got = r.body.split("\n");
      assert.equal(got.length, max, String(max));
      assert.deepEqual(got.map((l) => l.slice(0, 56)), keys.slice(0, max));
    }
  });

  it("pack - a client that goes away mid-stream does not disturb the server", async () => {
    await new Promise<void>((resolve, reject) => {
      const u = new URL("/jwt/v1/pack", s.base);
      const req = httpRequest({ host: u.hostname, port: u.port, path: u.pathname }, (res) => {
        res.once("data", () => {
          req.destroy();
          resolve();
        });
      });
      req.on("error", (e: NodeJS.ErrnoException) => (e.code === "ECONNRESET" ? resolve() : reject(e)));
      req.end();
    });
    const again = await raw(s.base, "GET", "/jwt/v1/pack?max=5");
    assert.equal(again.status, 200);
    assert.equal(again.body.split("\n").length, 5);
    assert.equal((await raw(s.base, "GET", "/healthz")).status, 200);
  });
});
