/**
 * Our own lookups on GET misses: a URL-resolver deployment answers at once ("no responders"),
 * silent listeners are waited for once, a peer that answered is waited for, misses share one
 * request, at most `nats.maxlookups` are open, and a miss is remembered for `nats.lookupmissttl`.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import { accountJwt, createAccount, makeOperator, newJti, nowSec, signJwt, userCreds, type OperatorSetup } from "../helpers/fixtures.js";
import { freePort, startNatsServer, tempDir, writeFile, type NatsServer } from "../helpers/processes.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { connectSys, get, post, startPeer, until } from "./kit.js";

/** An operator-mode nats-server that answers no lookups itself (MEMORY resolver). */
function startMemoryResolver(op: OperatorSetup, dir: string): Promise<NatsServer> {
  return startNatsServer(
    `operator: ${JSON.stringify(writeFile(dir, "op.jwt", op.operatorJwt))}\nsystem_account: ${op.sys.getPublicKey()}\n` +
      `resolver: MEMORY\nresolver_preload { ${op.sys.getPublicKey()}: ${JSON.stringify(op.sysJwt)} }\n`,
  );
}

interface LookupHealth {
  wait: string;
  asked: number;
  found: number;
  waited_out: number;
  skipped: number;
  open: number;
  remembered: number;
}
const stats = (t: TestServer): LookupHealth => (t.server.health()["nats"] as { lookups: LookupHealth }).lookups;

describe("lookups - a dir store connected to a URL-resolver nats-server", () => {
  const op = makeOperator();
  let ns: NatsServer;
  let t: TestServer;
  let clock = Date.now();
  const TTL = 2000;

  before(async () => {
    const dir = tempDir();
    const port = await freePort();
    // Our server first (NATS retried), then the nats-server that resolves through it.
    t = await startServer({
      operator: op,
      // Served from the configuration: the nats-server's own fetch of it is then never a miss
      // that a lookup would count.
      systemAccount: true,
      dir,
      now: () => clock,
      store: { dir: join(dir, "store") },
      nats: {
        servers: [`nats://127.0.0.1:${port}`],
        userCredentials: writeFile(dir, "sys.creds", userCreds(op.sys).creds),
        reconnectWait: 100,
        syncInterval: 0,
        lookupMissTtl: TTL,
      },
    });
    ns = await startNatsServer(
      `operator: ${JSON.stringify(writeFile(dir, "op.jwt", op.operatorJwt))}\nsystem_account: ${op.sys.getPublicKey()}\n` +
        `resolver: URL(${t.server.resolverUrl})\n`,
      { port },
    );
    await until("our server to connect to NATS", () => t.logs.some((l) => /answering account lookups/.test(l)));
  });
  after(async () => {
    await t?.stop();
    await ns?.stop();
  });

  it("misses answer 404 on 'no responders', never waiting out a lookup", async () => {
    const asked = stats(t).asked;
    for (let i = 0; i < 20; i++) assert.equal((await get(t, createAccount().getPublicKey())).status, 404);
    const s = stats(t);
    assert.equal(s.asked - asked, 20);
    assert.equal(s.waited_out, 0);
    assert.equal(s.wait, "first");
  });

  it("a key that missed is not asked again until it changes", async () => {
    const a = createAccount();
    const k = a.getPublicKey();
    assert.equal((await get(t, k)).status, 404);
    const asked = stats(t).asked;
    assert.equal((await get(t, k)).status, 404);
    assert.equal(stats(t).asked, asked, "the negative cache answered");
    assert.equal(await post(t, k, accountJwt(a, op.signer)), 200);
    assert.equal((await get(t, k)).status, 200);
  });

  it("a remembered miss lasts nats.lookupmissttl by the clock", async () => {
    const k = createAccount().getPublicKey();
    assert.equal((await get(t, k)).status, 404);
    const asked = stats(t).asked;
    clock += TTL - 1;
    assert.equal((await get(t, k)).status, 404);
    assert.equal(stats(t).asked, asked, "still remembered");
    clock += 1;
    assert.equal((await get(t, k)).status, 404);
    assert.equal(stats(t).asked, asked + 1, "asked again once the TTL is over");
  });

  it("an upload or an announcement of a remembered key ends its entry at once", async () => {
    const a = createAccount();
    const b = createAccount();
    for (const x of [a, b]) assert.equal((await get(t, x.getPublicKey())).status, 404);
    const remembered = stats(t).remembered;
    assert.equal(await post(t, a.getPublicKey(), accountJwt(a, op.signer)), 200);
    assert.equal(stats(t).remembered, remembered - 1);
    const sys = await connectSys(ns.url, op);
    try {
      sys.publish(`$SYS.ACCOUNT.${b.getPublicKey()}.CLAIMS.UPDATE`, accountJwt(b, op.signer));
      await sys.flush();
      await until("the announced JWT to be stored", () => t.server.registry.get(b.getPublicKey()) !== undefined);
    } finally {
      await sys.close();
    }
    assert.equal(stats(t).remembered, remembered - 2);
    assert.equal((await get(t, b.getPublicKey())).status, 200);
  });

  it("a deleted account is not asked for: 404 at once", async () => {
    const a = createAccount();
    const k = a.getPublicKey();
    assert.equal(await post(t, k, accountJwt(a, op.signer)), 200);
    const iss = op.signer.getPublicKey();
    const claim = signJwt({ jti: newJti(), iat: nowSec(), iss, sub: iss, nats: { accounts: [k], version: 2 } }, op.signer);
    assert.equal((await fetch(`${t.base}/jwt/v1/accounts`, { method: "DELETE", body: claim })).status, 200);
    const before = stats(t);
    assert.equal((await get(t, k)).status, 404);
    assert.equal(stats(t).asked, before.asked);
    assert.equal(stats(t).skipped, before.skipped);
  });
});

describe("lookups - at most nats.maxlookups open; over it a miss answers 404 without asking", () => {
  const op = makeOperator();
  let ns: NatsServer;
  let t: TestServer;
  let peer: NatsConnection;
  /** Lookup requests the peer received and holds, by key: it answers only when a test says so. */
  const held = new Map<string, Msg>();
  const key = (): string => createAccount().getPublicKey();

  before(async () => {
    const dir = tempDir();
    ns = await startMemoryResolver(op, dir);
    peer = await connectSys(ns.url, op);
    peer.subscribe("$SYS.REQ.ACCOUNT.*.CLAIMS.LOOKUP", { callback: (_e, m) => void held.set(m.subject.split(".")[3]!, m) });
    await peer.flush();
    // A timeout no test reaches: every outcome below comes from an answer, a bound or a cut.
    t = await startPeer(op, ns.url, dir, {
      store: { dir: join(dir, "store") },
      nats: { servers: [ns.url], reconnectWait: 100, maxLookups: 2 },
      config: { signRequestTimeout: 120_000 },
    });
  });
  after(async () => {
    await peer?.close();
    await t?.stop();
    await ns?.stop();
  });

  const [a, b, c] = [createAccount(), createAccount(), createAccount()];
  const [A, B, C] = [a, b, c].map((x) => x.getPublicKey()) as [string, string, string];

  it("two misses wait for their lookups; a third answers 404 at once, unasked", async () => {
    const waiting = [get(t, A), get(t, B)];
    await until("both lookups to reach the peer", () => held.has(A) && held.has(B));
    const s = stats(t);
    assert.equal(s.open, 2);
    for (let i = 0; i < 5; i++) assert.equal((await get(t, key())).status, 404);
    assert.equal(stats(t).asked, s.asked, "no further request while two GETs wait");
    assert.equal(stats(t).skipped, s.skipped + 5);
    // A first reply ends the wait ("not held"); the requests stay open for a late JWT.
    held.get(A)!.respond("");
    held.get(B)!.respond("");
    for (const r of await Promise.all(waiting)) assert.equal(r.status, 404);
    assert.equal(stats(t).open, 2);
  });

  it("a request only listening for a late JWT gives way to a new miss; the other still stores one", async () => {
    const asking = get(t, C);
    await until("the new lookup to reach the peer", () => held.has(C));
    assert.equal(stats(t).open, 2, "A's request was ended to make room");
    held.get(A)!.respond(accountJwt(a, op.signer));
    held.get(B)!.respond(accountJwt(b, op.signer));
    await until("B's late JWT to be stored", () => t.server.registry.get(B) !== undefined);
    assert.equal(t.server.registry.get(A), undefined, "A's late answer found no listener");
    held.get(C)!.respond(accountJwt(c, op.signer));
    assert.equal((await asking).status, 200);
  });
});

describe("lookups - listeners that never answer, then a peer that does", () => {
  const op = makeOperator();
  let ns: NatsServer;
  let t: TestServer;
  let peer: NatsConnection;
  /** Keys the fake peer holds, answered after `delayMs`. */
  const held = new Map<string, string>();
  let delayMs = 0;
  let requests = 0;

  before(async () => {
    const dir = tempDir();
    ns = await startMemoryResolver(op, dir);
    // A foreign peer on the system account: silent for keys it lacks, like a cache resolver.
    peer = await connectSys(ns.url, op);
    peer.subscribe("$SYS.REQ.ACCOUNT.*.CLAIMS.LOOKUP", {
      callback: (_e, m) => {
        requests++;
        const jwt = held.get(m.subject.split(".")[3]!);
        if (jwt !== undefined) setTimeout(() => m.respond(jwt), delayMs);
      },
    });
    await peer.flush();
    t = await startPeer(op, ns.url, dir, { store: { dir: join(dir, "store") }, nats: { servers: [ns.url], reconnectWait: 100 } });
  });
  after(async () => {
    await peer?.close();
    await t?.stop();
    await ns?.stop();
  });

  it("the first unanswered lookup is waited out once; later misses wait briefly only", async () => {
    assert.equal((await get(t, createAccount().getPublicKey())).status, 404);
    assert.equal(stats(t).waited_out, 1);
    assert.equal(stats(t).wait, "none");
    for (let i = 0; i < 5; i++) assert.equal((await get(t, createAccount().getPublicKey())).status, 404);
    assert.equal(stats(t).waited_out, 1, "no further miss waited out the timeout");
  });

  it("a JWT the peer answers quickly is still found; from then on misses wait for answers", async () => {
    const a = createAccount();
    const jwt = accountJwt(a, op.signer);
    held.set(a.getPublicKey(), jwt);
    const r = await get(t, a.getPublicKey());
    assert.equal(r.status, 200);
    assert.equal(r.body, jwt);
    assert.equal(stats(t).wait, "answerers");
    // A slower answer is now waited for.
    const b = createAccount();
    const jwtB = accountJwt(b, op.signer);
    held.set(b.getPublicKey(), jwtB);
    delayMs = 300;
    assert.equal((await get(t, b.getPublicKey())).body, jwtB);
  });

  it("concurrent misses for one key share one request", async () => {
    const c = createAccount();
    held.set(c.getPublicKey(), accountJwt(c, op.signer));
    const before = requests;
    const rs = await Promise.all(Array.from({ length: 10 }, () => get(t, c.getPublicKey())));
    for (const r of rs) assert.equal(r.status, 200);
    await until("the request to arrive", () => requests > before);
    assert.equal(requests - before, 1);
  });
});
