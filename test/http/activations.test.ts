/**
 * Activation tokens over HTTP: upload and fetch by hash id, legacy phrases, trust through the
 * exporting account, ordering, persistence in the state directory, and the NATS announcement.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createConnection, createServer, type Socket } from "node:net";
import { join } from "node:path";
import { connect, credsAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { configFromConf } from "../../src/config/schema.js";
import { parseConf } from "../../src/config/parser.js";
import { stateDirOf } from "../../src/config/types.js";
import { activationHash } from "../../src/jwt/index.js";
import {
  accountJwt,
  createAccount,
  createOperator,
  createUser,
  makeOperator,
  newJti,
  nowSec,
  signJwt,
  userCreds,
  type KeyPair,
} from "../helpers/fixtures.js";
import { freePort, startNatsServer, tempDir, writeFile, type NatsServer } from "../helpers/processes.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { etagOf, raw, type Answer } from "../helpers/http.js";



interface ActOptions {
  /** null leaves the field out. */
  readonly kind?: string | null;
  readonly iat?: number;
  readonly exp?: number;
  readonly nbf?: number;
  readonly jti?: string;
  readonly issuerAccount?: string;
  readonly name?: string;
}

/** A v2 activation token: `signer` lets `sub` import `subject`. */
function activation(signer: KeyPair, sub: string, subject: string, o: ActOptions = {}): string {
  const claims: Record<string, unknown> = {
    jti: o.jti ?? newJti(),
    iat: o.iat ?? nowSec(),
    iss: signer.getPublicKey(),
    sub,
    name: o.name ?? subject,
    nats: {
      subject,
      ...(o.kind === null ? {} : { kind: o.kind ?? "stream" }),
      ...(o.issuerAccount ? { issuer_account: o.issuerAccount } : {}),
      type: "activation",
      version: 2,
    },
  };
  if (o.exp !== undefined) claims["exp"] = o.exp;
  if (o.nbf !== undefined) claims["nbf"] = o.nbf;
  return signJwt(claims, signer);
}

const post = (t: TestServer, jwt: string): Promise<Answer> =>
  raw(t.base, "POST", "/jwt/v1/activations", { "Content-Type": "application/jwt" }, jwt);

describe("http - activations", () => {
  const op = makeOperator();
  const exporter = createAccount();
  const exporterSk = createAccount();
  const importer = createAccount().getPublicKey();
  let clock = Date.now();
  let t: TestServer;

  before(async () => {
    t = await startServer({ operator: op, systemAccount: true, now: () => clock });
    const jwt = accountJwt(exporter, op.signer, {
      nats: { signing_keys: [exporterSk.getPublicKey()], exports: [{ type: "stream", subject: "prices.>" }] },
    });
    const r = await raw(t.base, "POST", `/jwt/v1/accounts/${exporter.getPublicKey()}`, {}, jwt);
    assert.equal(r.status, 200, r.body);
  });
  after(() => t.stop());

  it("round trip - POST 200 empty; GET by hash: application/jwt, ETag, Cache-Control, exact body", async () => {
    const tok = activation(exporter, importer, "prices.>");
    const p = await post(t, tok);
    assert.equal(p.status, 200, p.body);
    assert.equal(p.body, "");
    const hash = activationHash(exporter.getPublicKey(), importer, "prices.>");
    assert.match(hash, /^[A-Z2-7]{52}$/);
    const g = await raw(t.base, "GET", `/jwt/v1/activations/${hash}`);
    assert.equal(g.status, 200);
    assert.equal(g.headers["content-type"], "application/jwt");
    assert.equal(g.headers["etag"], etagOf(tok));
    assert.equal(g.headers["cache-control"], "no-cache");
    assert.equal(g.body, tok);
    // The Go server's padded form of the same id.
    const padded = await raw(t.base, "GET", `/jwt/v1/activations/${hash}====`);
    assert.equal(padded.status, 200);
    assert.equal(padded.body, tok);
    assert.ok(t.logs.some((l) => l.includes(`updated activation JWT - ${exporter.getPublicKey().slice(0, 12)}`)));
  });

  it("get - HEAD, If-None-Match, text, decode and check", async () => {
    const exp = Math.floor(clock / 1000) + 1000;
    const tok = activation(exporter, importer, "prices.eu.>", { exp });
    const etag = etagOf(tok);
    assert.equal((await post(t, tok)).status, 200);
    const path = `/jwt/v1/activations/${activationHash(exporter.getPublicKey(), importer, "prices.eu.>")}`;
    const g = await raw(t.base, "GET", path);
    assert.match(String(g.headers["cache-control"]), /^max-age=(99\d|1000), stale-while-revalidate=3600, stale-if-error=3600$/);
    const h = await raw(t.base, "HEAD", path);
    assert.equal(h.status, 200);
    assert.equal(h.body, "");
    assert.equal(h.headers["etag"], etag);
    assert.equal(h.headers["content-length"], String(tok.length));
    for (const inm of [etag, `W/${etag}`, `"x", ${etag}`, "*"]) {
      const c = await raw(t.base, "GET", path, { "If-None-Match": inm });
      assert.equal(c.status, 304, inm);
      assert.equal(c.body, "");
      assert.equal(c.headers["etag"], etag);
    }
    const text = await raw(t.base, "GET", `${path}?text=true`, { "If-None-Match": etag });
    assert.equal(text.status, 200);
    assert.equal(text.headers["content-type"], "text/plain");
    assert.equal(text.body, tok);
    const dec = await raw(t.base, "GET", `${path}?decode=true`, { "If-None-Match": etag });
    assert.equal(dec.status, 200);
    assert.equal(dec.headers["content-type"], "text/plain");
    assert.ok(dec.body.includes('"subject": "prices.eu.>"'));
    assert.ok(dec.body.includes('"kind": "stream"'));
    assert.match(dec.body, /"exp": \d+ \(\d{4}-\d\d-\d\d\)/);
    const saved = clock;
    clock += 2000_000;
    try {
      const chk = await raw(t.base, "GET", `${path}?check=true`);
      assert.equal(chk.status, 404);
      assert.equal(chk.body, "");
      assert.equal((await raw(t.base, "GET", path)).status, 200, "served without check until removed");
      assert.equal((await raw(t.base, "GET", `${path}?decode=true&check=true`)).status, 200);
    } finally {
      clock = saved;
    }
  });

  it("get - unknown hash: 404 No Matching JWT (charset + nosniff)", async () => {
    for (const h of [activationHash(exporter.getPublicKey(), importer, "nothing.here"), "NOTAHASH", "..%2F..%2Fetc"]) {
      const r = await raw(t.base, "GET", `/jwt/v1/activations/${h}`);
      assert.equal(r.status, 404, h);
      assert.equal(r.body, "No Matching JWT\n");
      assert.equal(r.headers["content-type"], "text/plain; charset=utf-8");
      assert.equal(r.headers["x-content-type-options"], "nosniff");
    }
  });

  it("post - refusals answer their legacy phrase and store nothing", async () => {
    const now = Math.floor(clock / 1000);
    const ex = exporter.getPublicKey();
    const cases: Array<[string, string, number, string | RegExp]> = [
      ["empty body", "", 400, "bad activation JWT in request\n"],
      ["garbage", "a.b.c", 400, "bad activation JWT in request\n"],
      ["an account JWT", accountJwt(createAccount(), op.signer), 400, "bad activation JWT in request\n"],
      ["signed by a user key", activation(createUser(), importer, "x.y"), 400, "bad activation JWT in request\n"],
      ["tampered signature", activation(exporter, importer, "x.y").slice(0, -4) + "AAAA", 400, "bad activation JWT in request\n"],
      ["unknown kind", activation(exporter, importer, "x.y", { kind: "queue" }), 400, "bad activation JWT in request\n"],
      ["subject is a user", activation(exporter, createUser().getPublicKey(), "x.y"), 400, "bad activation JWT Subject in request\n"],
      ["subject public", activation(exporter, "public", "x.y"), 400, "bad activation JWT Subject in request\n"],
      ["no import subject", activation(exporter, importer, ""), 400, "bad activation hash in request\n"],
      ["expired", activation(exporter, importer, "x.y", { exp: now - 5 }), 400, /validation issues:\n\t - claim is expired\n$/],
      ["not yet valid", activation(exporter, importer, "x.y", { nbf: now + 600 }), 400, /\t - claim is not yet valid\n$/],
      ["empty kind", activation(exporter, importer, "x.y", { kind: "" }), 400, "bad activation JWT in request\n"],
      ["no kind", activation(exporter, importer, "x.y", { kind: null }), 400, /\t - invalid import type: "unknown"\n$/],
      ["bad subject", activation(exporter, importer, "x..y"), 400, /\t - subject "x\.\.y" cannot contain consecutive `\.`\n$/],
      ["unknown exporter", activation(createAccount(), importer, "x.y"), 400, /^untrusted activation JWT issuer in request/],
      ["unlisted signing key", activation(createAccount(), importer, "x.y", { issuerAccount: ex }), 400, /^untrusted activation JWT issuer/],
      ["untrusted operator", activation(createOperator(), importer, "x.y"), 400, /^untrusted activation JWT issuer/],
    ];
    for (const [name, body, status, phrase] of cases) {
      const r = await post(t, body);
      assert.equal(r.status, status, `${name}: ${r.body}`);
      if (typeof phrase === "string") assert.equal(r.body, phrase, name);
      else assert.match(r.body, phrase, name);
    }
    const v = await post(t, activation(exporter, importer, "x.y", { exp: now - 5 }));
    assert.equal(v.headers["content-type"], "text/plain; charset=utf-8");
    assert.equal(v.headers["x-content-type-options"], "nosniff");
    assert.equal(
      (await raw(t.base, "GET", `/jwt/v1/activations/${activationHash(ex, importer, "x.y")}`)).status,
      404,
      "nothing stored",
    );
    const big = await post(t, "x".repeat(1024 * 1024 + 1));
    assert.equal(big.status, 413);
  });

  it("post - signed by the exporter's signing key (issuer_account) or by a trusted operator key", async () => {
    const ex = exporter.getPublicKey();
    const viaSk = activation(exporterSk, importer, "sk.>", { issuerAccount: ex });
    assert.equal((await post(t, viaSk)).status, 200);
    // Go's hash id uses the signing key, the token's issuer.
    const g = await raw(t.base, "GET", `/jwt/v1/activations/${activationHash(exporterSk.getPublicKey(), importer, "sk.>")}`);
    assert.equal(g.body, viaSk);
    const byOperator = activation(op.signer, importer, "op.*.x");
    assert.equal((await post(t, byOperator)).status, 200);
    const h = activationHash(op.signer.getPublicKey(), importer, "op.*.x");
    assert.equal((await raw(t.base, "GET", `/jwt/v1/activations/${h}`)).body, byOperator);
    assert.equal(activationHash(op.signer.getPublicKey(), importer, "op.*.x"), activationHash(op.signer.getPublicKey(), importer, "op"));
  });

  it("post - iat ordering: identical is a no-op, older 409, newer replaces", async () => {
    const iat = nowSec();
    const v1 = activation(exporter, importer, "orders.>", { iat, name: "v1" });
    const v2 = activation(exporter, importer, "orders.>", { iat: iat + 10, name: "v2" });
    const old = activation(exporter, importer, "orders.>", { iat: iat - 10, name: "old" });
    const path = `/jwt/v1/activations/${activationHash(exporter.getPublicKey(), importer, "orders.>")}`;
    assert.equal((await post(t, v1)).status, 200);
    assert.equal((await post(t, v1)).status, 200);
    assert.equal((await post(t, v2)).status, 200);
    assert.equal((await raw(t.base, "GET", path)).body, v2);
    const r = await post(t, old);
    assert.equal(r.status, 409);
    assert.equal(r.body, "a newer activation JWT is already stored for this hash\n");
    assert.equal((await raw(t.base, "GET", path)).body, v2);
    // Equal iat and jti (a Go tool re-issuing within the second) but other bytes: replaced.
    const jti = JSON.parse(Buffer.from(v2.split(".")[1]!, "base64url").toString()).jti as string;
    const v3 = activation(exporter, importer, "orders.>", { iat: iat + 10, name: "v2", jti, exp: iat + 3600 });
    assert.equal((await post(t, v3)).status, 200);
    const g = await raw(t.base, "GET", path);
    assert.equal(g.body, v3);
    assert.equal(g.headers["etag"], etagOf(v3));
  });

  it("post - a token issued an hour ahead of our clock is refused, saying by how much, and not stored", async () => {
    const iat = nowSec() + 3600;
    const ahead = activation(exporter, importer, "future.>", { iat });
    const r = await post(t, ahead);
    assert.equal(r.status, 400);
    assert.match(r.body, /^the JWT's issue time \(iat \S+\) is 1h0m[0-2]s ahead of this server's clock, more than the allowed clock skew of 5m0s/);
    const path = `/jwt/v1/activations/${activationHash(exporter.getPublicKey(), importer, "future.>")}`;
    assert.equal((await raw(t.base, "GET", path)).status, 404);
    assert.equal((await post(t, activation(exporter, importer, "future.>", { iat: nowSec() + 60 }))).status, 200);
  });

  it("routes - GET on the collection and POST on a hash are 405 with Allow", async () => {
    const a = await raw(t.base, "GET", "/jwt/v1/activations");
    assert.equal(a.status, 405);
    assert.equal(a.headers["allow"], "OPTIONS, POST");
    const b = await raw(t.base, "POST", `/jwt/v1/activations/${"A".repeat(52)}`, {}, "x");
    assert.equal(b.status, 405);
    assert.equal(b.headers["allow"], "GET, HEAD, OPTIONS");
  });
});

describe("activations - state directory", () => {
  const op = makeOperator();
  const exporter = createAccount();
  const importer = createAccount().getPublicKey();

  async function withExporter(t: TestServer): Promise<void> {
    const r = await raw(t.base, "POST", `/jwt/v1/accounts/${exporter.getPublicKey()}`, {}, accountJwt(exporter, op.signer));
    assert.ok(r.status === 200, r.body);
  }

  it("persist - kept in <store>.state/activations across a restart; the store dir holds only account files", async () => {
    const dir = tempDir("nas-act-");
    const store = join(dir, "store");
    let t = await startServer({ operator: op, dir, store: { dir: store } });
    await withExporter(t);
    const tok = activation(exporter, importer, "a.b.>");
    assert.equal((await post(t, tok)).status, 200);
    const hash = activationHash(exporter.getPublicKey(), importer, "a.b.>");
    await t.stop();

    const file = join(`${store}.state`, "activations", `${hash}.jwt`);
    assert.equal(readFileSync(file, "utf8"), tok);
    assert.deepEqual(readdirSync(store), [`${exporter.getPublicKey()}.jwt`]);

    t = await startServer({ operator: op, dir, store: { dir: store } });
    try {
      const g = await raw(t.base, "GET", `/jwt/v1/activations/${hash}`);
      assert.equal(g.status, 200);
      assert.equal(g.body, tok);
    } finally {
      await t.stop();
    }
  });

  it("persist - store.statedir puts them elsewhere; a trailing slash on the store dir stays outside it", async () => {
    const dir = tempDir("nas-act-");
    const state = join(dir, "elsewhere");
    const t = await startServer({ operator: op, dir, store: { dir: join(dir, "store"), stateDir: state } });
    try {
      await withExporter(t);
      assert.equal((await post(t, activation(exporter, importer, "c.d"))).status, 200);
      assert.ok(existsSync(join(state, "activations", `${activationHash(exporter.getPublicKey(), importer, "c.d")}.jwt`)));
      assert.ok(!existsSync(join(dir, "store.state")));
    } finally {
      await t.stop();
    }
    assert.equal(stateDirOf({ dir: "/srv/jwt/", shard: false, readonly: false, cleanupInterval: 0 } as never), "/srv/jwt.state");
    assert.equal(stateDirOf({ shard: false, readonly: false, cleanupInterval: 0 } as never), undefined);
  });

  it("config - store.statedir is a path key, resolved against the config file", () => {
    const { config, warnings } = configFromConf(
      parseConf('store {\n  dir: "/var/jwt"\n  StateDir: "state"\n}\n', { file: "/etc/nas/server.conf" }),
    );
    assert.deepEqual(warnings, []);
    assert.equal(config.store.stateDir, "/etc/nas/state");
  });

  it("read-only store - POST /jwt/v1/activations is 405; stored tokens are still served", async () => {
    const dir = tempDir("nas-act-ro-");
    const store = join(dir, "store");
    mkdirSync(store);
    writeFileSync(join(store, `${exporter.getPublicKey()}.jwt`), accountJwt(exporter, op.signer));
    const tok = activation(exporter, importer, "ro.x");
    const hash = activationHash(exporter.getPublicKey(), importer, "ro.x");
    mkdirSync(join(`${store}.state`, "activations"), { recursive: true });
    writeFileSync(join(`${store}.state`, "activations", `${hash}.jwt`), tok);
    const t = await startServer({ operator: op, dir, store: { dir: store, readonly: true } });
    try {
      const r = await post(t, activation(exporter, importer, "ro.y"));
      assert.equal(r.status, 405);
      assert.equal(r.headers["allow"], "OPTIONS");
      assert.equal((await raw(t.base, "GET", `/jwt/v1/activations/${hash}`)).body, tok);
    } finally {
      await t.stop();
    }
  });

  it("read-only store without a state directory - nothing is created", async () => {
    const dir = tempDir("nas-act-ro-");
    const store = join(dir, "store");
    mkdirSync(store);
    const t = await startServer({ operator: op, dir, store: { dir: store, readonly: true } });
    await t.stop();
    assert.ok(!existsSync(`${store}.state`));
  });
});

describe("activations - NATS notification", () => {
  const op = makeOperator();
  const exporter = createAccount();
  const importer = createAccount().getPublicKey();
  let ns: NatsServer;
  let t: TestServer;
  let sub: NatsConnection;
  const got: Array<{ subject: string; data: string }> = [];

  before(async () => {
    const dir = tempDir();
    ns = await startNatsServer(
      `operator: ${JSON.stringify(writeFile(dir, "op.jwt", op.operatorJwt))}\n` +
        `system_account: ${op.sys.getPublicKey()}\nresolver: MEMORY\nresolver_preload: { ${op.sys.getPublicKey()}: "${op.sysJwt}" }\n`,
    );
    const creds = userCreds(op.sys).creds;
    sub = await connect({ servers: ns.url, authenticator: credsAuthenticator(new TextEncoder().encode(creds)) });
    sub.subscribe("$SYS.ACCOUNT.*.CLAIMS.ACTIVATE.*", { callback: (_e, m) => void got.push({ subject: m.subject, data: m.string() }) });
    await sub.flush();
    t = await startServer({
      operator: op,
      dir,
      nats: { servers: [ns.url], userCredentials: writeFile(dir, "sys.creds", creds) },
    });
    const r = await raw(t.base, "POST", `/jwt/v1/accounts/${exporter.getPublicKey()}`, {}, accountJwt(exporter, op.signer));
    assert.equal(r.status, 200, r.body);
  });

  after(async () => {
    await sub?.close();
    await t?.stop();
    await ns?.stop();
  });

  async function waitFor(n: number): Promise<void> {
    const deadline = Date.now() + 5000;
    while (got.length < n) {
      if (Date.now() > deadline) assert.fail(`expected ${n} notifications, got ${got.length}; server log:\n${t.logs.join("\n")}`);
      await sub.flush();
    }
  }

  it("a stored token is announced once on $SYS.ACCOUNT.<issuer>.CLAIMS.ACTIVATE.<hash>; notify=true re-sends", async () => {
    const tok = activation(exporter, importer, "quotes.>");
    const hash = activationHash(exporter.getPublicKey(), importer, "quotes.>");
    const subject = `$SYS.ACCOUNT.${exporter.getPublicKey()}.CLAIMS.ACTIVATE.${hash}`;
    assert.equal((await post(t, tok)).status, 200);
    assert.equal((await post(t, tok)).status, 200); // identical: no second announcement
    const other = activation(exporter, importer, "other.x");
    assert.equal((await post(t, other)).status, 200);
    await waitFor(2);
    assert.deepEqual(got[0], { subject, data: tok });
    assert.equal(got[1]!.data, other, "the identical upload was not announced between them");
    const r = await raw(t.base, "GET", `/jwt/v1/activations/${hash}?notify=true`);
    assert.equal(r.status, 200);
    await waitFor(3);
    assert.deepEqual(got[2], { subject, data: tok });
    assert.equal(t.server.notifier.backlog, 0);
  });

  it("a token stored while NATS is unreachable is announced once NATS comes up", async () => {
    const dir = tempDir();
    const port = await freePort();
    const late = await startServer({
      operator: op,
      dir,
      nats: {
        servers: [`nats://127.0.0.1:${port}`],
        reconnectWait: 100,
        userCredentials: writeFile(dir, "sys.creds", userCreds(op.sys).creds),
      },
    });
    // NATS becomes reachable when this forwarder to the running nats-server starts listening.
    const sockets = new Set<Socket>();
    const forwarder = createServer((c) => {
      const up = createConnection(ns.port, "127.0.0.1");
      for (const x of [c, up]) {
        sockets.add(x);
        x.on("close", () => sockets.delete(x));
        x.on("error", () => x.destroy());
      }
      c.pipe(up).pipe(c);
    });
    try {
      const acct = await raw(late.base, "POST", `/jwt/v1/accounts/${exporter.getPublicKey()}`, {}, accountJwt(exporter, op.signer));
      assert.equal(acct.status, 200, acct.body);
      const tok = activation(exporter, importer, "late.>");
      assert.equal((await post(late, tok)).status, 200);
      assert.equal(late.server.notifier.backlog, 2, "the account and the activation wait");
      const before = got.length;
      await new Promise<void>((r) => forwarder.listen(port, "127.0.0.1", () => r()));
      await waitFor(before + 1);
      const hash = activationHash(exporter.getPublicKey(), importer, "late.>");
      assert.deepEqual(got.slice(before), [{ subject: `$SYS.ACCOUNT.${exporter.getPublicKey()}.CLAIMS.ACTIVATE.${hash}`, data: tok }]);
      assert.equal(late.server.notifier.backlog, 0);
    } finally {
      await late.stop();
      for (const x of sockets) x.destroy();
      await new Promise<void>((r) => forwarder.close(() => r()));
    }
  });
});
