/**
 * Two nsc edits of one account within one second share `iat` and, being Go-issued, `jti`: the
 * second must be stored, served and announced on every write path, and a byte-identical re-push
 * must change nothing.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { createAccount, goAccountJwt, makeOperator, nowSec, userCreds, type KeyPair, type OperatorSetup } from "../helpers/fixtures.js";
import { etagOf, raw } from "../helpers/http.js";
import { freePort, startNatsServer, tempDir, writeFile, type NatsServer } from "../helpers/processes.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { ask, connectCreds, connectSys, get, post, resolverConf, resolverFile, startPeer, until } from "../nats/kit.js";

const claimsOf = (jwt: string): Record<string, unknown> =>
  JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString()) as Record<string, unknown>;

/** v1 and v2 of `account` as nsc issues them within one second: equal `iat` and `jti`, other `nats`. */
function sameSecondPair(
  op: OperatorSetup,
  account: KeyPair,
  v1: Parameters<typeof goAccountJwt>[2],
  v2: Parameters<typeof goAccountJwt>[2],
  iat = nowSec() - 30,
): [string, string] {
  const pair: [string, string] = [
    goAccountJwt(account, op.signer, { name: "A", iat, ...v1 }),
    goAccountJwt(account, op.signer, { name: "A", iat, ...v2 }),
  ];
  const [c1, c2] = pair.map(claimsOf);
  assert.equal(c1!["jti"], c2!["jti"], "Go-issued same-second edits share their jti");
  assert.equal(c1!["iat"], c2!["iat"]);
  assert.notEqual(pair[0], pair[1]);
  return pair;
}

describe("same-second edits - HTTP and the NATS update subjects, with a URL-resolver nats-server", () => {
  const op = makeOperator();
  const NAME = "as-same-second";
  let ns: NatsServer;
  let t: TestServer;
  let sys: NatsConnection;
  const announced: Array<[string, string]> = [];
  const users: NatsConnection[] = [];
  const count = (key: string): number => announced.filter(([k]) => k === key).length;

  before(async () => {
    const dir = tempDir("same-second-");
    // Our server first (with its NATS link to the bus), then the nats-server resolving through it.
    const port = await freePort();
    t = await startServer({
      operator: op,
      systemAccount: true,
      dir,
      store: { dir: join(dir, "store") },
      nats: {
        servers: [`nats://127.0.0.1:${port}`],
        userCredentials: writeFile(dir, "sys.creds", userCreds(op.sys).creds),
        reconnectWait: 100,
        name: NAME,
      },
    });
    ns = await startNatsServer(
      `operator: ${writeFile(dir, "op.jwt", op.operatorJwt)}\nsystem_account: ${op.sys.getPublicKey()}\n` +
        `resolver: URL(${t.server.resolverUrl})\n`,
      { port, dir },
    );
    await until("our server to connect to NATS", () => t.logs.some((l) => /answering account lookups/.test(l)));
    sys = await connectSys(ns.url, op);
    sys.subscribe("$SYS.ACCOUNT.*.CLAIMS.UPDATE", { callback: (_e, m) => void announced.push([m.subject.split(".")[2]!, m.string()]) });
    await sys.flush();
  });
  after(async () => {
    for (const u of users) await u.close().catch(() => {});
    await sys?.close();
    await t?.stop();
    await ns?.stop();
  });

  /** Everything we announced before this call has reached the bus (notifications leave in order). */
  async function drained(): Promise<void> {
    const marker = createAccount();
    assert.equal(await post(t, marker.getPublicKey(), goAccountJwt(marker, op.signer)), 200);
    await until("the marker's notification", () => count(marker.getPublicKey()) > 0);
  }

  it("HTTP: v2 is stored, served and announced; the live nats-server revokes the user", async () => {
    const a = createAccount();
    const key = a.getPublicKey();
    const { creds, user } = userCreds(a, { iat: nowSec() - 120 });
    const [v1, v2] = sameSecondPair(op, a, { limits: { conn: 5 } }, { limits: { conn: 5 }, revocations: { [user.getPublicKey()]: nowSec() - 60 } });

    assert.equal(await post(t, key, v1), 200);
    await until("v1's notification", () => count(key) === 1);
    const u1 = await connectCreds(ns.url, creds, { reconnect: false });
    users.push(u1);
    const closed = u1.closed();
    const first = await raw(t.base, "GET", `/jwt/v1/accounts/${key}`);
    assert.equal(first.headers["etag"], etagOf(v1));

    const r = await raw(t.base, "POST", `/jwt/v1/accounts/${key}`, {}, v2);
    assert.equal(r.status, 200, r.body);
    assert.equal((await get(t, key)).body, v2);
    await until("v2's notification", () => count(key) === 2);
    assert.equal(announced.filter(([k]) => k === key).at(-1)![1], v2);
    const err = await Promise.race([closed, new Promise((_r, rej) => setTimeout(() => rej(new Error("u1 was not disconnected")), 5000))]);
    assert.match(String(err), /revoked/i);

    // The ETag follows the bytes: a client revalidating with v1's gets v2.
    const cond = await raw(t.base, "GET", `/jwt/v1/accounts/${key}`, { "If-None-Match": etagOf(v1) });
    assert.equal(cond.status, 200);
    assert.equal(cond.body, v2);
    assert.equal(cond.headers["etag"], etagOf(v2));
    assert.notEqual(etagOf(v1), etagOf(v2));
    assert.equal((await raw(t.base, "GET", `/jwt/v1/accounts/${key}`, { "If-None-Match": etagOf(v2) })).status, 304);

    // Identical bytes again: 200, no announcement, no history entry.
    assert.equal(await post(t, key, v2), 200);
    await drained();
    assert.equal(count(key), 2);
    const h = await raw(t.base, "GET", `/jwt/v1/accounts/${key}/history`);
    const versions = (JSON.parse(h.body) as { versions: Array<Record<string, unknown>> }).versions;
    assert.equal(versions.length, 2);
    assert.equal(versions[0]!["jti"], versions[1]!["jti"]);
    assert.equal(versions[0]!["iat"], versions[1]!["iat"]);
    assert.deepEqual(versions.map((v) => `"${v["hash"]}"`), [etagOf(v1), etagOf(v2)]);
    for (const [i, jwt] of [v1, v2].entries()) {
      assert.equal((await raw(t.base, "GET", `/jwt/v1/accounts/${key}/history/${versions[i]!["revision"]}`)).body, jwt);
    }
  });

  const SUBJECTS = (k: string): Array<[string, number]> => [
    // [subject, announcements we add per change]: the per-account subjects reach every
    // nats-server already; $SYS.REQ.CLAIMS.UPDATE is announced by us.
    [`$SYS.ACCOUNT.${k}.CLAIMS.UPDATE`, 0],
    [`$SYS.REQ.ACCOUNT.${k}.CLAIMS.UPDATE`, 0],
    ["$SYS.REQ.CLAIMS.UPDATE", 1],
  ];
  for (const i of [0, 1, 2]) {
    it(`NATS ${SUBJECTS("<key>")[i]![0]}: v2 is stored and the live nats-server enforces its limit`, async () => {
      const a = createAccount();
      const key = a.getPublicKey();
      const [subject, ours] = SUBJECTS(key)[i]!;
      const [v1, v2] = sameSecondPair(op, a, { limits: { conn: 5 } }, { limits: { conn: 1 } });
      const base = subject.startsWith("$SYS.ACCOUNT.") ? 1 : 0; // the test's own publication is seen too
      for (const [n, jwt] of [v1, v2].entries()) {
        const reply = await ask(sys, subject, jwt, NAME);
        assert.deepEqual(reply.data, { account: key, code: 200, message: "jwt updated" }, `v${n + 1}`);
        assert.equal((await get(t, key)).body, jwt);
        if (n === 0) users.push(await connectCreds(ns.url, userCreds(a).creds, { reconnect: false }));
      }
      await drained();
      assert.equal(count(key), 2 * (ours + base), `announcements of ${key.slice(0, 8)} on ${subject}`);
      // conn: 1 with one user connected: the next connection is refused.
      await until("the nats-server to apply v2's connection limit", async () => {
        try {
          const extra = await connectCreds(ns.url, userCreds(a).creds, { reconnect: false });
          await extra.close();
          return false;
        } catch {
          return true;
        }
      });
    });
  }
});

describe("same-second edits - a pack merge from a full nats-server", () => {
  const op = makeOperator();
  let ns: NatsServer;
  let t: TestServer;
  let jwtDir: string;
  let dir: string;

  const a = createAccount();
  const [a1, a2] = sameSecondPair(op, a, { limits: { conn: 5 } }, { limits: { conn: 1 } });
  const c = createAccount();
  const [c1, c2] = sameSecondPair(op, c, { limits: { conn: 5 } }, { limits: { conn: 2 } });

  before(async () => {
    dir = tempDir("same-second-full-");
    jwtDir = join(dir, "jwt");
    mkdirSync(jwtDir);
    // The full server holds A's second edit (pushed to it directly), our store A's first.
    writeFile(jwtDir, `${a.getPublicKey()}.jwt`, a2);
    mkdirSync(join(dir, "store"));
    writeFile(join(dir, "store"), `${a.getPublicKey()}.jwt`, a1);
    ns = await startNatsServer(resolverConf(op, dir, { type: "full", jwtDir, interval: "1h" }), { dir });
    // Pulls at connect, then only when the test asks.
    t = await startPeer(op, ns.url, dir, { store: { dir: join(dir, "store") }, syncInterval: 3_600_000 });
  });
  after(async () => {
    await t?.stop();
    await ns?.stop();
  });

  it("we hold v1, the full nats-server v2: the merge takes v2", async () => {
    await until("the merge to take v2", async () => (await get(t, a.getPublicKey())).body === a2);
  });

  it("we replaced v1 by v2 while a full nats-server was away with v1: its pack does not undo v2", async () => {
    const key = c.getPublicKey();
    assert.equal(await post(t, key, c1), 200);
    assert.equal(await post(t, key, c2), 200);
    await until("the full server to take v2 from our announcement", () => resolverFile(jwtDir, key) === c2);
    // The nats-server comes back from an outage holding only v1, the same iat and jti as v2.
    const port = ns.port;
    await ns.stop();
    writeFile(jwtDir, `${key}.jwt`, c1);
    ns = await startNatsServer(resolverConf(op, dir, { type: "full", jwtDir, interval: "1h" }), { port, dir });
    await until("our pull after reconnecting to refuse v1 and announce v2", () => resolverFile(jwtDir, key) === c2, 15_000);
    assert.equal((await get(t, key)).body, c2);
    assert.equal((await t.server.packSync!.syncOnce()).outcome, "in-sync");
  });
});

describe("same-second edits - replica import, read-only directory, nsc folder", () => {
  const op = makeOperator();
  const servers: TestServer[] = [];
  after(async () => {
    for (const s of servers) await s.stop();
  });

  it("a replica holding v1 imports v2 from its primary", async () => {
    const a = createAccount();
    const key = a.getPublicKey();
    const [v1, v2] = sameSecondPair(op, a, { limits: { conn: 5 } }, { limits: { conn: 1 } });
    const primary = await startServer({ operator: op });
    servers.push(primary);
    assert.equal(await post(primary, key, v2), 200);
    const dir = tempDir("same-second-replica-");
    mkdirSync(join(dir, "store"));
    writeFile(join(dir, "store"), `${key}.jwt`, v1);
    const replica = await startServer({ operator: op, dir, store: { dir: join(dir, "store") }, primary: primary.base });
    servers.push(replica);
    assert.equal((await get(replica, key)).body, v2);
  });

  it("a read-only directory: an equal-size rewrite with the same mtime is still seen", async () => {
    const a = createAccount();
    const key = a.getPublicKey();
    const [v1, v2] = sameSecondPair(op, a, { limits: { conn: 2 } }, { limits: { conn: 3 } });
    assert.equal(v1.length, v2.length);
    const dir = tempDir("same-second-ro-");
    const store = join(dir, "store");
    mkdirSync(store);
    const file = writeFile(store, `${key}.jwt`, v1);
    const t = await startServer({ operator: op, dir, store: { dir: store, readonly: true } });
    servers.push(t);
    assert.equal((await get(t, key)).body, v1);
    const { atime, mtime } = statSync(file);
    // What nsc or an editor does within one timestamp tick: same size, same mtime.
    writeFileSync(file, v2);
    utimesSync(file, atime, mtime);
    await until("v2 to be served", async () => (await get(t, key)).body === v2);
  });

  it("an nsc folder: an equal-size rewrite with the same mtime is still seen", async () => {
    const a = createAccount();
    const [v1, v2] = sameSecondPair(op, a, { limits: { conn: 2 } }, { limits: { conn: 3 } });
    const folder = join(tempDir("same-second-nsc-"), "OP");
    mkdirSync(join(folder, "accounts", "A"), { recursive: true, mode: 0o700 });
    writeFileSync(join(folder, ".nsc"), JSON.stringify({ managed: false, name: "OP", kind: "operator", version: "1" }));
    writeFileSync(join(folder, "OP.jwt"), op.operatorJwt, { mode: 0o600 });
    const file = join(folder, "accounts", "A", "A.jwt");
    writeFileSync(file, v1, { mode: 0o600 });
    const t = await startServer({ operator: null, store: { nsc: folder } });
    servers.push(t);
    assert.equal((await get(t, a.getPublicKey())).body, v1);
    const { atime, mtime } = statSync(file);
    writeFileSync(file, v2);
    utimesSync(file, atime, mtime);
    await until("v2 to be served", async () => (await get(t, a.getPublicKey())).body === v2);
  });
});

describe("same-second edits - two instances sharing a JetStream bucket", () => {
  const op = makeOperator();
  let js: NatsServer;
  const servers: TestServer[] = [];

  before(async () => {
    const dir = tempDir("same-second-kv-");
    js = await startNatsServer(`jetstream { store_dir: ${JSON.stringify(join(dir, "js"))} }\n`, { dir });
    for (let i = 0; i < 2; i++) {
      servers.push(await startServer({ operator: op, store: { type: "kv", bucket: "accounts", replicas: 1, servers: [js.url] } }));
    }
    await until("both instances ready", async () => {
      for (const s of servers) if ((await fetch(`${s.base}/readyz`)).status !== 200) return false;
      return true;
    }, 20_000);
  });
  after(async () => {
    for (const s of servers) await s.stop();
    await js?.stop();
  });

  it("v2 written through one instance reaches the other through the bucket watch", async () => {
    const a = createAccount();
    const key = a.getPublicKey();
    const [v1, v2] = sameSecondPair(op, a, { limits: { conn: 5 } }, { limits: { conn: 1 } });
    const [one, other] = servers as [TestServer, TestServer];
    assert.equal(await post(one, key, v1), 200);
    await until("the other instance to serve v1", async () => (await get(other, key)).body === v1);
    assert.equal(await post(one, key, v2), 200);
    await until("the other instance to serve v2", async () => (await get(other, key)).body === v2);
    // And the other way round: the bucket's latest value is v2, history holds both.
    const versions = (JSON.parse((await raw(other.base, "GET", `/jwt/v1/accounts/${key}/history`)).body) as {
      versions: Array<Record<string, unknown>>;
    }).versions;
    assert.deepEqual(versions.map((v) => `"${v["hash"]}"`), [etagOf(v1), etagOf(v2)]);
  });
});
