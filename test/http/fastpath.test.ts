/**
 * The router's shortcut for plain GET/HEAD requests answers byte for byte like the normal path
 * (same status, headers in the same order, body), follows every change and the clock, and is
 * never taken when an earlier route, a query, an Origin or an If-None-Match is involved.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Router, ROUTER_HEADERS, type Route } from "../../src/http/router.js";
import { accountJwt, createAccount, makeOperator, nowSec } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/processes.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { etagOf, raw } from "../helpers/http.js";

/** Status, header lines in order (without the per-response Date, Connection, Keep-Alive) and body. */
async function answer(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: string) {
  const a = await raw(base, method, path, headers, body);
  return { status: a.status, headers: a.rawHeaders.filter((l) => !/^(date|connection|keep-alive):/i.test(l)), body: a.body };
}



describe("http - fast path for plain account fetches", () => {
  const op = makeOperator();
  const withExp = createAccount().getPublicKey();
  const noExp = createAccount().getPublicKey();
  let clock = Date.now();
  let t: TestServer;

  before(async () => {
    t = await startServer({ operator: op, systemAccount: true, now: () => clock });
    for (const [key, o] of [
      [withExp, { exp: nowSec() + 3600 }],
      [noExp, {}],
    ] as const) {
      const r = await answer(t.base, "POST", `/jwt/v1/accounts/${key}`, {}, accountJwt(key, op.signer, o));
      assert.equal(r.status, 200, r.body);
    }
  });
  after(() => t.stop());

  it("GET and HEAD answer exactly as the normal path does (a query string forces the normal path)", async () => {
    for (const key of [withExp, noExp, op.sys.getPublicKey()]) {
      for (const method of ["GET", "HEAD"]) {
        const fast = await answer(t.base, method, `/jwt/v1/accounts/${key}`);
        const normal = await answer(t.base, method, `/jwt/v1/accounts/${key}?unused=1`);
        assert.equal(fast.status, 200);
        assert.deepEqual(fast, normal, `${method} ${key}`);
        assert.equal(fast.headers[0], "Vary: Origin");
      }
    }
    for (const p of ["/jwt/v1/accounts", "/jwt/v1/accounts/"]) {
      for (const method of ["GET", "HEAD"]) {
        assert.deepEqual(await answer(t.base, method, p), await answer(t.base, method, `${p}?unused=1`), `${method} ${p}`);
      }
    }
  });

  it("Cache-Control counts down with the clock and every upload is served at once", async () => {
    const first = await answer(t.base, "GET", `/jwt/v1/accounts/${withExp}`);
    const age = Number(/max-age=(\d+)/.exec(first.headers.join("\n"))![1]);
    clock += 10_000;
    const later = await answer(t.base, "GET", `/jwt/v1/accounts/${withExp}`);
    assert.match(later.headers.join("\n"), new RegExp(`Cache-Control: max-age=${age - 10},`));
    clock -= 10_000;

    const next = accountJwt(withExp, op.signer, { exp: nowSec() + 7200, iat: nowSec() + 1 });
    assert.equal((await answer(t.base, "POST", `/jwt/v1/accounts/${withExp}`, {}, next)).status, 200);
    const after = await answer(t.base, "GET", `/jwt/v1/accounts/${withExp}`);
    assert.equal(after.body, next);
    assert.ok(after.headers.includes(`ETag: ${etagOf(next)}`), after.headers.join("\n"));
  });

  it("a miss answers and logs exactly as the normal path does", async () => {
    for (const key of [createAccount().getPublicKey(), "NOTAKEY", "a%20b"]) {
      for (const method of ["GET", "HEAD"]) {
        // A new window of the miss-line rate limit each time: both lines are written.
        clock += 10_000;
        const mark = t.logs.length;
        const fast = await answer(t.base, method, `/jwt/v1/accounts/${key}`);
        const normal = await answer(t.base, method, `/jwt/v1/accounts/${key}?unused=1`);
        assert.equal(fast.status, 404);
        assert.deepEqual(fast, normal, `${method} ${key}`);
        assert.deepEqual(fast.headers, ["Vary: Origin", "Content-Type: text/plain", "Content-Length: 24"]);
        const lines = t.logs.slice(mark).filter((l) => l.includes("[ERR]")).map((l) => l.replace(/^.*\[ERR\] /, ""));
        const shown = decodeURIComponent(key);
        assert.deepEqual(lines, [1, 2].map(() => `${shown.slice(0, 12)} - no matching account JWT - ${shown}`));
      }
    }
    clock -= 60_000;
  });

  it("unknown accounts, Origin and If-None-Match still get the normal answers", async () => {
    const unknown = await answer(t.base, "GET", `/jwt/v1/accounts/${createAccount().getPublicKey()}`);
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body, "no matching account JWT\n");
    const cors = await answer(t.base, "GET", `/jwt/v1/accounts/${noExp}`, { Origin: "https://console.example" });
    assert.ok(cors.headers.includes("Access-Control-Allow-Origin: https://console.example"), cors.headers.join("\n"));
    const etag = (await answer(t.base, "GET", `/jwt/v1/accounts/${noExp}`)).headers.find((h) => h.startsWith("ETag: "))!.slice(6);
    const cond = await answer(t.base, "GET", `/jwt/v1/accounts/${noExp}`, { "If-None-Match": etag });
    assert.equal(cond.status, 304);
  });
});

describe("http - the miss shortcut never answers 404 for an account that is stored but not cached", () => {
  const op = makeOperator();
  let t: TestServer;
  before(async () => {
    // A cache of 1 byte holds no view: every stored account is cold.
    t = await startServer({ operator: op, store: { dir: join(tempDir(), "store"), cache: 1 } });
  });
  after(() => t.stop());

  it("cold accounts are read and served 200; unknown ones still 404", async () => {
    const stored = new Map<string, string>();
    for (let i = 0; i < 3; i++) {
      const key = createAccount().getPublicKey();
      const jwt = accountJwt(key, op.signer);
      assert.equal((await answer(t.base, "POST", `/jwt/v1/accounts/${key}`, {}, jwt)).status, 200);
      stored.set(key, jwt);
    }
    for (let round = 0; round < 2; round++) {
      for (const [key, jwt] of stored) {
        const r = await answer(t.base, "GET", `/jwt/v1/accounts/${key}`);
        assert.equal(r.status, 200, key);
        assert.equal(r.body, jwt);
      }
    }
    assert.equal((await answer(t.base, "GET", `/jwt/v1/accounts/${createAccount().getPublicKey()}`)).status, 404);
  });
});

describe("http - router shortcuts", () => {
  let server: Server;
  let base: string;
  const seen: string[] = [];
  const fast = (name: string) => (_q: unknown, res: import("node:http").ServerResponse, param: string): boolean => {
    if (param === "decline") return false;
    seen.push(`${name}:${param}`);
    res.writeHead(200, [...ROUTER_HEADERS, "X-Way", "fast"]);
    res.end(`${name}:${param}`);
    return true;
  };
  const normal = (name: string) => (_q: unknown, res: import("node:http").ServerResponse, ctx: { params: Record<string, string> }): void => {
    res.writeHead(200, { "X-Way": "normal" });
    res.end(`${name}:${Object.values(ctx.params).join(",")}`);
  };
  const routes: Route[] = [
    { path: "/a/:x", methods: { GET: normal("a") }, fast: fast("a") },
    { path: "/b/fixed", methods: { GET: normal("b-fixed") } },
    // Shadowed by the route above for /b/fixed: no shortcut may bypass the order.
    { path: "/b/:y", methods: { GET: normal("b") }, fast: fast("b") },
    { path: "/c/", methods: { GET: normal("c") }, fast: fast("c") },
    { path: "/d/:z", methods: { GET: normal("d"), POST: normal("d-post") }, fast: fast("d") },
  ];

  before(async () => {
    const router = new Router(routes);
    server = createServer((req, res) => router.handle(req, res, () => res.end("error")));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  it("takes the shortcut for plain GET/HEAD of static and trailing-parameter routes", async () => {
    assert.equal((await answer(base, "GET", "/a/one")).body, "a:one");
    assert.equal((await answer(base, "GET", "/a/%41b")).body, "a:Ab");
    assert.equal((await answer(base, "GET", "/c/")).body, "c:");
    assert.equal((await answer(base, "HEAD", "/d/k")).status, 200);
    assert.deepEqual(seen, ["a:one", "a:Ab", "c:", "d:k"]);
  });

  it("falls back to the ordered routes otherwise", async () => {
    seen.length = 0;
    assert.equal((await answer(base, "GET", "/b/fixed")).body, "b-fixed:");
    assert.equal((await answer(base, "GET", "/b/other")).body, "b:other");
    assert.equal((await answer(base, "GET", "/a/decline")).body, "a:decline");
    assert.equal((await answer(base, "GET", "/a/one?q=1")).body, "a:one");
    assert.equal((await answer(base, "GET", "/a/one", { Origin: "https://x.example" })).body, "a:one");
    assert.equal((await answer(base, "GET", "/a/one", { "If-None-Match": '"x"' })).body, "a:one");
    assert.equal((await answer(base, "POST", "/d/k")).body, "d-post:k");
    assert.equal((await answer(base, "GET", "/a/")).status, 404, "an empty parameter matches nothing");
    assert.equal((await answer(base, "GET", "/A/one")).status, 301, "letter case still redirects");
    assert.deepEqual(seen, []);
  });
});
