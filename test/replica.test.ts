/**
 * Replica mode with two real in-process servers on loopback: the startup import, periodic re-sync,
 * forwarded uploads, and the primary going away and coming back, in either order.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { mkdirSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { defaultConfig, type Config } from "../src/config/types.js";
import { createLogger } from "../src/log.js";
import { AccountServer } from "../src/server.js";
import { accountJwt, createAccount, createOperator, makeOperator, newJti, nowSec, signJwt } from "./helpers/fixtures.js";
import { freePort, tempDir, writeFile } from "./helpers/processes.js";

const signer = createOperator();
const op = makeOperator({ extraSigningKeys: [signer.getPublicKey()] });
const base = tempDir("nas-replica-");
const operatorJwtPath = writeFile(base, "op.jwt", op.operatorJwt);

interface Node {
  readonly server: AccountServer;
  readonly url: string;
  readonly logs: string[];
  stop(): Promise<void>;
}

const running = new Set<Node>();
after(async () => {
  for (const n of running) await n.stop();
});

async function start(o: {
  dir: string;
  port?: number;
  primary?: string;
  intervalMs?: number;
  maxPack?: number;
}): Promise<Node> {
  const d = defaultConfig();
  const config: Config = {
    ...d,
    operatorJwtPath,
    replicationTimeout: 2000,
    replicationInterval: o.intervalMs ?? 30_000,
    maxReplicationPack: o.maxPack ?? d.maxReplicationPack,
    ...(o.primary !== undefined ? { primary: o.primary } : {}),
    logging: { ...d.logging, colors: false, debug: true },
    http: { ...d.http, host: "127.0.0.1", port: o.port ?? 0 },
    store: { ...d.store, dir: o.dir },
  };
  const logs: string[] = [];
  const log = createLogger(config.logging, { write: (l) => logs.push(l.trimEnd()), isTTY: false });
  const server = await AccountServer.start({ config, log });
  const node: Node = {
    server,
    url: `http://127.0.0.1:${server.port}`,
    logs,
    async stop() {
      running.delete(node);
      await server.stop(100);
    },
  };
  running.add(node);
  return node;
}

async function get(n: Node, key: string): Promise<{ status: number; body: string }> {
  const r = await fetch(`${n.url}/jwt/v1/accounts/${key}`);
  return { status: r.status, body: await r.text() };
}

async function post(n: Node, key: string, jwt: string): Promise<Response> {
  return fetch(`${n.url}/jwt/v1/accounts/${key}`, { method: "POST", headers: { "Content-Type": "application/jwt" }, body: jwt });
}

/** Poll until `n` serves `jwt` for `key`; resolves with the time it took. */
async function served(n: Node, key: string, jwt: string, ms = 5000): Promise<number> {
  const t0 = Date.now();
  while ((await get(n, key)).body !== jwt) {
    if (Date.now() - t0 > ms) throw new Error(`not served within ${ms} ms:\n${n.logs.join("\n")}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - t0;
}

async function logged(n: Node, re: RegExp, ms = 5000): Promise<void> {
  const t0 = Date.now();
  while (!n.logs.some((l) => re.test(l))) {
    if (Date.now() - t0 > ms) throw new Error(`no log line ${re}:\n${n.logs.join("\n")}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A store directory holding `n` fresh accounts, written before the server opens it. */
function filledStore(n: number): { dir: string; accounts: Map<string, string> } {
  const dir = join(tempDir("nas-primary-"), "store");
  mkdirSync(dir);
  const accounts = new Map<string, string>();
  for (let i = 0; i < n; i++) {
    const a = createAccount();
    const jwt = accountJwt(a, signer, { name: `A${i}`, iat: nowSec() - 60 });
    writeFileSync(join(dir, `${a.getPublicKey()}.jwt`), jwt);
    accounts.set(a.getPublicKey(), jwt);
  }
  return { dir, accounts };
}

const INTERVAL = 400;

describe("replica - following a primary", () => {
  const { dir: primaryDir, accounts } = filledStore(100);
  let primary: Node;
  let replica: Node;
  let primaryPort: number;
  const replicaDir = join(tempDir("nas-replica-store-"), "store");

  it("a replica started against a primary with 100 accounts serves all of them", async () => {
    primary = await start({ dir: primaryDir });
    primaryPort = primary.server.port;
    replica = await start({ dir: replicaDir, primary: `${primary.url}/`, intervalMs: INTERVAL });
    assert.ok(replica.logs.some((l) => l.includes(`importing account JWTs from primary ${primary.url}`)));
    assert.ok(replica.logs.some((l) => l.includes("imported 100 new or updated account JWT(s) from the primary (100 in its pack)")));
    for (const [key, jwt] of accounts) {
      const r = await get(replica, key);
      assert.equal(r.status, 200);
      assert.equal(r.body, jwt);
    }
    assert.equal(replica.server.registry.store.size, 100);
    assert.deepEqual(replica.server.registry.store.hash(), primary.server.registry.store.hash());
  });

  it("an update POSTed to the primary is served by the replica within one sync interval", async () => {
    const [key] = accounts.keys();
    const jwt = accountJwt(key!, signer, { name: "updated on the primary" });
    assert.equal((await post(primary, key!, jwt)).status, 200);
    const took = await served(replica, key!, jwt);
    // The re-sync starts within one interval; the margin covers the request itself on a loaded machine.
    assert.ok(took <= INTERVAL + 600, `took ${took} ms with a ${INTERVAL} ms interval`);
  });

  it("an update POSTed to the replica is forwarded: both serve it at once", async () => {
    const a = createAccount();
    const jwt = accountJwt(a, signer, { name: "posted to the replica" });
    const r = await post(replica, a.getPublicKey(), jwt);
    assert.equal(r.status, 200, await r.text());
    assert.equal((await get(replica, a.getPublicKey())).body, jwt);
    assert.equal((await get(primary, a.getPublicKey())).body, jwt);
  });

  it("a deletion sent to the replica is forwarded: both stop serving the account", async () => {
    const a = createAccount();
    const k = a.getPublicKey();
    assert.equal((await post(primary, k, accountJwt(a, signer))).status, 200);
    await served(replica, k, (await get(primary, k)).body, 5000);
    const opKey = op.signer.getPublicKey();
    const claim = signJwt({ jti: newJti(), iat: nowSec(), iss: opKey, sub: opKey, nats: { accounts: [k], version: 2 } }, op.signer);
    const r = await fetch(`${replica.url}/jwt/v1/accounts`, { method: "DELETE", body: claim });
    assert.equal(r.status, 200, await r.text());
    assert.equal((await get(primary, k)).status, 404);
    assert.equal((await get(replica, k)).status, 404);
    assert.equal(primary.server.registry.store.isDeleted(k), true);
  });

  it("the primary's refusals are relayed as they are (status, content type, phrase)", async () => {
    const a = createAccount();
    const untrusted = accountJwt(a, createOperator());
    const r = await post(replica, a.getPublicKey(), untrusted);
    assert.equal(r.status, 400);
    assert.equal(r.headers.get("content-type"), "text/plain");
    assert.equal(await r.text(), "untrusted issuer in request\n");
    const [key, current] = [...accounts][1]!;
    const older = await post(replica, key, accountJwt(key, signer, { iat: nowSec() - 3600 }));
    assert.equal(older.status, 409);
    assert.match(await older.text(), /newer JWT is already stored/);
    assert.equal((await get(replica, key)).body, current);
  });

  it("with the primary stopped the replica serves what it has and refuses uploads with 503", async () => {
    await primary.stop();
    const [key, jwt] = [...accounts][2]!;
    assert.equal((await get(replica, key)).body, jwt);
    const a = createAccount();
    const r = await post(replica, a.getPublicKey(), accountJwt(a, signer));
    assert.equal(r.status, 503);
    assert.match(await r.text(), /^the primary account server is unreachable; the JWT was not stored, try again later\n$/);
    await logged(replica, new RegExp(`\\[WRN\\] primary ${primary.url} is unreachable`));
    assert.equal((await get(replica, a.getPublicKey())).status, 404);
    const health = (await (await fetch(`${replica.url}/healthz`)).json()) as { primary: { reachable: boolean } };
    assert.equal(health.primary.reachable, false);
  });

  it("the restarted primary is followed again: its updates reach the replica", async () => {
    primary = await start({ dir: primaryDir, port: primaryPort });
    const [key] = [...accounts][3]!;
    const jwt = accountJwt(key, signer, { name: "after the restart" });
    assert.equal((await post(primary, key, jwt)).status, 200);
    await served(replica, key, jwt);
    await logged(replica, /\[INF\] primary .* is reachable again/);
  });
});

describe("replica - started while the primary is down", () => {
  it("starts with what is on disk and catches up when the primary appears", async () => {
    const { dir: primaryDir, accounts } = filledStore(3);
    const port = await freePort();
    // The replica's own store already holds an older copy of one account.
    const replicaDir = join(tempDir("nas-replica-store-"), "store");
    mkdirSync(replicaDir);
    const [key, fresh] = [...accounts][0]!;
    const stale = accountJwt(key, signer, { name: "stale", iat: nowSec() - 3600 });
    writeFileSync(join(replicaDir, `${key}.jwt`), stale);

    const replica = await start({ dir: replicaDir, primary: `http://127.0.0.1:${port}`, intervalMs: INTERVAL });
    assert.ok(replica.logs.some((l) => l.includes("[WRN] will use what is on disk")));
    assert.equal((await get(replica, key)).body, stale);

    await start({ dir: primaryDir, port });
    for (const [k, jwt] of accounts) await served(replica, k, jwt);
    assert.equal((await get(replica, key)).body, fresh);
    await replica.stop();
  });
});

describe("replica - pack limits and bad packs", () => {
  it("maxreplicationpack bounds the import (10 of 20) and 0 disables it", async () => {
    const { dir } = filledStore(20);
    const primary = await start({ dir });
    const ten = await start({ dir: join(tempDir(), "s"), primary: primary.url, maxPack: 10 });
    assert.equal(ten.server.registry.store.size, 10);
    assert.ok(ten.logs.some((l) => l.includes("[WRN] the primary's pack was cut at 10 JWTs")));
    const none = await start({ dir: join(tempDir(), "s"), primary: primary.url, maxPack: 0 });
    assert.equal(none.server.registry.store.size, 0);
    assert.ok(none.logs.some((l) => l.includes("maxreplicationpack is 0, not importing JWTs from the primary")));
    await Promise.all([ten.stop(), none.stop(), primary.stop()]);
  });

  it("bad lines in a pack are logged and skipped, never fatal; every check of an upload applies", async () => {
    const good = createAccount();
    const goodJwt = accountJwt(good, signer);
    const intruder = createAccount();
    const expired = createAccount();
    const pack = [
      "garbage without a bar",
      `NOTAKEY|${goodJwt}`,
      `${intruder.getPublicKey()}|${accountJwt(intruder, createOperator())}`,
      `${expired.getPublicKey()}|${accountJwt(expired, signer, { exp: nowSec() - 10 })}`,
      `${createAccount().getPublicKey()}|${goodJwt}`,
      `${good.getPublicKey()}|${goodJwt}`,
    ].join("\n");
    // A primary that is not ours and sends whatever it likes.
    const rogue: Server = createServer((_req, res) => {
      res.writeHead(200, { "Content-Type": "text/plain" });
      res.end(pack);
    });
    await new Promise<void>((r) => rogue.listen(0, "127.0.0.1", r));
    try {
      const replica = await start({
        dir: join(tempDir(), "s"),
        primary: `http://127.0.0.1:${(rogue.address() as AddressInfo).port}`,
      });
      assert.equal(replica.server.registry.store.size, 1);
      assert.equal((await get(replica, good.getPublicKey())).body, goodJwt);
      assert.ok(replica.logs.some((l) => l.includes("(6 in its pack, 5 refused)")), replica.logs.join("\n"));
      assert.equal(replica.logs.filter((l) => l.includes("[WRN] ignoring a malformed line")).length, 2);
      assert.ok(replica.logs.some((l) => l.includes(`ignoring JWT for account - ${intruder.getPublicKey().slice(0, 12)} - from the primary: untrusted issuer`)));
      assert.ok(replica.logs.some((l) => l.includes(`ignoring JWT for account - ${expired.getPublicKey().slice(0, 12)}`)));
      await replica.stop();
    } finally {
      rogue.close();
    }
  });

  it("a primary URL that is not http(s) is a startup error", async () => {
    await assert.rejects(start({ dir: join(tempDir(), "s"), primary: "ftp://example" }), /must be an http:\/\/ or https:\/\/ URL/);
  });
});
