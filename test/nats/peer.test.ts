/**
 * Our server as a peer of nats-server 2.9.10's NATS resolvers: lookups for a cache-mode server
 * with no full server, the three update subjects, list/delete over NATS, and GET-miss lookups.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { createInbox, type NatsConnection } from "@nats-io/transport-node";
import { isPublicKey } from "../../src/jwt/index.js";
import { accountJwt, createAccount, createOperator, makeOperator, nowSec, userCreds } from "../helpers/fixtures.js";
import { startNatsServer, tempDir, writeFile, type NatsServer } from "../helpers/processes.js";
import type { TestServer } from "../helpers/server.js";
import {
  ask,
  collect,
  connectCreds,
  connectSys,
  get,
  nscDeleteClaim,
  nscPull,
  post,
  resolverConf,
  resolverFile,
  startPeer,
  until,
} from "./kit.js";
import { storedJwt } from "../helpers/stored.js";

describe("nats peer - a cache-mode nats-server needs no full server", () => {
  const op = makeOperator();
  const a = createAccount();
  let ns: NatsServer;
  let t: TestServer;
  let jwtDir: string;
  /** Our server's clock runs this many ms ahead (to expire JWTs without waiting). */
  let skew = 0;

  before(async () => {
    const dir = tempDir();
    jwtDir = join(dir, "jwt");
    ns = await startNatsServer(resolverConf(op, dir, { type: "cache", jwtDir }));
    t = await startPeer(op, ns.url, dir, { now: () => Date.now() + skew });
  });
  after(async () => {
    await t?.stop();
    await ns?.stop();
  });

  it("a user of A connects because we answered the lookup, and an update reaches the server live", async () => {
    const k = a.getPublicKey();
    const a1 = accountJwt(a, op.signer, { iat: nowSec() - 10 });
    assert.equal(await post(t, k, a1), 200);
    const { creds, user } = userCreds(a, { iat: nowSec() - 60 });
    const nc = await connectCreds(ns.url, creds, { reconnect: false });
    // The cache resolver wrote what we answered.
    assert.equal(resolverFile(jwtDir, k), a1);
    const sub = nc.subscribe("hello", { max: 1 });
    nc.publish("hello", "world");
    for await (const m of sub) assert.equal(m.string(), "world");

    // Revoking the user through us: the notification reaches the cache resolver, which applies it.
    const closed = nc.closed();
    const a2 = accountJwt(a, op.signer, { revocations: { [user.getPublicKey()]: nowSec() } });
    assert.equal(await post(t, k, a2), 200);
    const err = await closed;
    assert.match(String(err), /revoked/i);
    await until("the cache resolver to store the update", () => resolverFile(jwtDir, k) === a2);
  });

  it("PACK: as the only responder we stream servable JWTs and the end marker, or only the marker for our hash", async () => {
    const b = createAccount();
    const e = createAccount();
    assert.equal(await post(t, b.getPublicKey(), accountJwt(b, op.signer)), 200);
    assert.equal(await post(t, e.getPublicKey(), accountJwt(e, op.signer, { exp: nowSec() + 100 })), 200);
    skew = 200_000;
    try {
      const pulled = await nscPull(ns.url, op);
      assert.deepEqual(pulled.errors, []);
      const want = [...t.server.registry.store.entries()].filter((x) => x.key !== e.getPublicKey());
      assert.equal(pulled.jwts.size, want.length);
      for (const x of want) assert.equal(pulled.jwts.get(x.key), await t.server.registry.body(x));
      // The expired one is not listed or looked up either.
      const sys = await connectSys(ns.url, op);
      try {
        const list = await ask(sys, "$SYS.REQ.CLAIMS.LIST", "", "nats-account-server");
        assert.ok(!(list.data as string[]).includes(e.getPublicKey()));
        assert.ok((list.data as string[]).includes(b.getPublicKey()));
        await assert.rejects(sys.request(`$SYS.REQ.ACCOUNT.${e.getPublicKey()}.CLAIMS.LOOKUP`, "", { timeout: 300 }));
        // Our own hash: one empty message and nothing else.
        const inbox = createInbox();
        const got: number[] = [];
        const sub = sys.subscribe(inbox, { callback: (_err, m) => void got.push(m.data.length) });
        sys.publish("$SYS.REQ.CLAIMS.PACK", t.server.registry.store.hash(), { reply: inbox });
        await until("the end marker", () => got.length > 0);
        await sys.flush();
        sub.unsubscribe();
        assert.deepEqual(got, [0]);
      } finally {
        await sys.close();
      }
    } finally {
      skew = 0;
    }
  });

  it("an account nobody holds is not answered (no empty reply, no 0-byte file)", async () => {
    const b = createAccount();
    const { creds } = userCreds(b);
    await assert.rejects(connectCreds(ns.url, creds, { reconnect: false }), /authorization/i);
    assert.equal(resolverFile(jwtDir, b.getPublicKey()), undefined);
  });
});

describe("nats peer - update, list, delete and lookup subjects", () => {
  const op = makeOperator();
  const NAME = "as-under-test";
  let ns: NatsServer;
  let t: TestServer;
  let noDelete: TestServer;
  let sys: NatsConnection;
  let jwtDir: string;
  /** Legacy notifications seen on the bus: [key, jwt]. */
  const announced: Array<[string, string]> = [];
  const held = createAccount();
  const heldJwt = accountJwt(held, op.signer, { name: "held-by-nats-server" });

  before(async () => {
    const dir = tempDir();
    jwtDir = join(dir, "jwt");
    // A full nats-server that holds one account we lack (for GET-miss lookups).
    const conf = resolverConf(op, dir, { type: "full", jwtDir, interval: "1m" });
    writeFile(jwtDir, `${held.getPublicKey()}.jwt`, heldJwt);
    ns = await startNatsServer(conf);
    t = await startPeer(op, ns.url, dir, { name: NAME, store: { dir: join(dir, "store") } });
    noDelete = await startPeer(op, ns.url, dir, { name: "as-no-delete", store: { allowDelete: false } });
    sys = await connectSys(ns.url, op);
    sys.subscribe("$SYS.ACCOUNT.*.CLAIMS.UPDATE", { callback: (_e, m) => void announced.push([m.subject.split(".")[2]!, m.string()]) });
    await sys.flush();
  });
  after(async () => {
    await sys?.close();
    await noDelete?.stop();
    await t?.stop();
    await ns?.stop();
  });

  const subjects = (k: string) => [`$SYS.ACCOUNT.${k}.CLAIMS.UPDATE`, `$SYS.REQ.ACCOUNT.${k}.CLAIMS.UPDATE`, "$SYS.REQ.CLAIMS.UPDATE"];

  it("an untrusted update is refused on each subject, answered as an error, and not stored", async () => {
    const foreign = createOperator();
    for (const subject of subjects("K")) {
      const acct = createAccount();
      const k = acct.getPublicKey();
      const bad = accountJwt(acct, foreign);
      const r = await ask(sys, subject.replace(".K.", `.${k}.`), bad, NAME);
      assert.deepEqual(r.error, {
        account: k,
        code: 500,
        description: "jwt update resulted in error - untrusted issuer in request",
      }, subject);
      assert.equal(r.data, undefined);
      assert.ok(r.server.name === NAME && isPublicKey(r.server.id, "server") && r.server.seq > 0 && !r.server.jetstream);
      assert.ok(!Number.isNaN(Date.parse(r.server.time)));
      assert.equal((await get(t, k)).status, 404);
    }
    // A plain publish (no reply subject) is refused just the same.
    const acct = createAccount();
    sys.publish(`$SYS.ACCOUNT.${acct.getPublicKey()}.CLAIMS.UPDATE`, accountJwt(acct, foreign));
    await sys.flush();
    await until("the refusal to be logged", () => t.logs.some((l) => l.includes(`refused JWT update for ${acct.getPublicKey().slice(0, 12)}`)));
    assert.equal(t.server.registry.get(acct.getPublicKey()), undefined);
  });

  it("an update issued an hour ahead of our clock is refused on each subject, saying by how much, and not stored", async () => {
    for (const subject of subjects("K")) {
      const acct = createAccount();
      const k = acct.getPublicKey();
      const r = await ask(sys, subject.replace(".K.", `.${k}.`), accountJwt(acct, op.signer, { iat: nowSec() + 3600 }), NAME);
      assert.equal(r.error?.code, 500, subject);
      assert.match(
        r.error?.description ?? "",
        /^jwt update resulted in error - the JWT's issue time \(iat \S+\) is 1h0m[0-2]s ahead of this server's clock, more than the allowed clock skew of 5m0s/,
      );
      assert.equal((await get(t, k)).status, 404);
    }
  });

  it("a JWT of half a megabyte (checked on a worker thread) is stored over NATS", async () => {
    const acct = createAccount();
    const k = acct.getPublicKey();
    // nats-server itself validates what arrives on this subject in the publisher's read loop, with
    // Go's pairwise export check: thousands of exports would hold it up for seconds. Revocations it
    // does not check.
    const revocations = Object.fromEntries(Array.from({ length: 6000 }, (_, i) => [createAccount().getPublicKey(), 1_700_000_000 + i]));
    const exports = Array.from({ length: 300 }, (_, i) => ({ subject: `s.${i}.>`, type: "stream" }));
    const jwt = accountJwt(acct, op.signer, { revocations, nats: { exports } });
    assert.ok(jwt.length > 500_000, `${jwt.length}`);
    const r = await ask(sys, `$SYS.REQ.ACCOUNT.${k}.CLAIMS.UPDATE`, jwt, NAME);
    assert.deepEqual(r.data, { account: k, code: 200, message: "jwt updated" });
    assert.equal((await get(t, k)).body, jwt);
  });

  it("trusted updates are stored on each subject; only $SYS.REQ.CLAIMS.UPDATE is announced again", async () => {
    const keys: string[] = [];
    for (const subject of subjects("K")) {
      const acct = createAccount();
      const k = acct.getPublicKey();
      keys.push(k);
      const jwt = accountJwt(acct, op.signer);
      const r = await ask(sys, subject.replace(".K.", `.${k}.`), jwt, NAME);
      assert.deepEqual(r.data, { account: k, code: 200, message: "jwt updated" }, subject);
      assert.equal((await get(t, k)).body, jwt);
    }
    // A marker upload: our notifications leave in order, so anything announced for the three
    // updates arrived before the marker's.
    for (const server of [t, noDelete]) {
      const marker = createAccount();
      assert.equal(await post(server, marker.getPublicKey(), accountJwt(marker, op.signer)), 200);
      await until("the marker notification", () => announced.some(([k]) => k === marker.getPublicKey()));
    }
    // The legacy subject carried the first update itself (published by the test), nothing more;
    // each account server announced the one taken from $SYS.REQ.CLAIMS.UPDATE (URL resolvers
    // do not listen there).
    const counts = keys.map((key) => announced.filter(([k]) => k === key).length);
    assert.ok(counts[0] === 1 && counts[1] === 0 && counts[2]! >= 1, `announcements per subject: ${counts.join(", ")}`);
  });

  it("the subject's account must equal the JWT subject; garbage and empty bodies are errors", async () => {
    const a = createAccount();
    const other = createAccount().getPublicKey();
    const r = await ask(sys, `$SYS.REQ.ACCOUNT.${other}.CLAIMS.UPDATE`, accountJwt(a, op.signer), NAME);
    assert.deepEqual(r.error, { account: other, code: 500, description: "jwt update resulted in error - subject does not match jwt content" });
    const g = await ask(sys, "$SYS.REQ.CLAIMS.UPDATE", "not a jwt", NAME);
    assert.equal(g.error?.account, "n/a");
    assert.match(g.error!.description, /^jwt update resulted in error - /);
    const e = await ask(sys, `$SYS.REQ.ACCOUNT.${other}.CLAIMS.UPDATE`, "", NAME);
    assert.equal(e.error?.description, "jwt update resulted in error - request body is empty");
  });

  it("an older JWT is refused and the newer one we hold is announced again", async () => {
    const a = createAccount();
    const k = a.getPublicKey();
    const newer = accountJwt(a, op.signer, { iat: nowSec() });
    const older = accountJwt(a, op.signer, { iat: nowSec() - 100 });
    assert.equal(await post(t, k, newer), 200);
    await until("the full resolver to hold the newer JWT", () => resolverFile(jwtDir, k) === newer);
    const before = announced.filter(([x]) => x === k).length;
    const r = await ask(sys, "$SYS.REQ.CLAIMS.UPDATE", older, NAME);
    assert.equal(r.error?.description, "jwt update resulted in error - a newer JWT is already stored for this account");
    await until("the newer JWT to be announced again", () => announced.filter(([x, j]) => x === k && j === newer).length > before);
    assert.equal((await get(t, k)).body, newer);
  });

  it("LIST answers the servable keys as a JSON array", async () => {
    const r = await ask(sys, "$SYS.REQ.CLAIMS.LIST", "", NAME);
    assert.ok(Array.isArray(r.data));
    const keys = new Set(r.data as string[]);
    assert.equal(keys.size, t.server.registry.store.size);
    for (const e of t.server.registry.store.entries()) assert.ok(keys.has(e.key));
  });

  it("DELETE: every refusal reason in nats-server's words, then a deletion that sticks", async () => {
    const a = createAccount();
    const k = a.getPublicKey();
    assert.equal(await post(t, k, accountJwt(a, op.signer)), 200);
    const opKey = op.operator.getPublicKey();
    const foreign = createOperator();
    const cases: Array<[string, string, string, string]> = [
      ["not self signed", nscDeleteClaim(op.operator, [k], { sub: op.signer.getPublicKey() }), NAME, `delete accounts request by ${op.signer.getPublicKey()} failed - not self signed`],
      ["untrusted", nscDeleteClaim(foreign, [k]), NAME, `delete accounts request by ${foreign.getPublicKey()} failed - not trusted`],
      ["no accounts", nscDeleteClaim(op.operator, undefined), NAME, `delete accounts request by ${opKey} failed - malformed request`],
      ["bad key", nscDeleteClaim(op.operator, [k, "ANOTAKEY"]), NAME, `delete accounts request by ${opKey} failed - malformed request`],
      ["system account", nscDeleteClaim(op.operator, [k, op.sys.getPublicKey()]), NAME, `delete accounts request by ${opKey} failed - not allowed to delete system account`],
      ["disabled", nscDeleteClaim(op.operator, [createAccount().getPublicKey()]), "as-no-delete", `delete accounts request by ${opKey} failed - delete must be enabled in server config`],
    ];
    for (const [name, claim, server, description] of cases) {
      const r = await ask(sys, "$SYS.REQ.CLAIMS.DELETE", claim, server);
      assert.deepEqual(r.error, { code: 500, description }, name);
      assert.equal((await get(t, k)).status, 200, name);
    }
    const garbage = await ask(sys, "$SYS.REQ.CLAIMS.DELETE", "garbage", NAME);
    assert.match(garbage.error!.description, /^delete accounts request by  failed - /);

    const r = await ask(sys, "$SYS.REQ.CLAIMS.DELETE", nscDeleteClaim(op.signer, [k]), NAME);
    assert.deepEqual(r.data, { code: 200, message: "deleted 1 accounts" });
    assert.equal((await get(t, k)).status, 404);
    // Neither a lookup nor a peer announcement brings it back; the full resolver renamed its file.
    assert.ok(resolverFile(jwtDir, k, ".jwt.deleted") !== undefined);
    const peerCopy = accountJwt(a, op.signer, { iat: nowSec() + 5 });
    const p = await ask(sys, `$SYS.ACCOUNT.${k}.CLAIMS.UPDATE`, peerCopy, NAME);
    assert.match(p.error!.description, /account was deleted/);
    assert.equal((await get(t, k)).status, 404);
    // A deliberate push (what nsc push sends) restores it.
    const pushed = await ask(sys, "$SYS.REQ.CLAIMS.UPDATE", peerCopy, NAME);
    assert.deepEqual(pushed.data, { account: k, code: 200, message: "jwt updated" });
    assert.equal((await get(t, k)).body, peerCopy);
  });

  it("an HTTP GET miss asks the system account, verifies, stores and serves the answer", async () => {
    const k = held.getPublicKey();
    assert.equal(t.server.registry.get(k), undefined);
    const r = await get(t, k);
    assert.equal(r.status, 200);
    assert.equal(r.body, heldJwt);
    assert.equal(await storedJwt(t.server.registry, k), heldJwt);
    // Unknown keys answer 404 within the lookup timeout; invalid keys never reach NATS.
    const started = Date.now();
    assert.equal((await get(t, createAccount().getPublicKey())).status, 404);
    assert.ok(Date.now() - started < 3000);
    assert.equal((await get(t, "NOTAKEY")).status, 404);
  });

  it("a read-only store answers lookups but stays silent on updates, lists and deletions", async () => {
    const dir = tempDir();
    const a = createAccount();
    const jwt = accountJwt(a, op.signer);
    writeFile(dir, `${a.getPublicKey()}.jwt`, jwt);
    const ro = await startPeer(op, ns.url, tempDir(), { name: "as-read-only", store: { dir, readonly: true } });
    try {
      assert.ok(ro.logs.some((l) => /read-only store: no updates or deletions/.test(l)));
      const other = createAccount();
      const named = (rs: Array<{ server: { name: string } }>) => rs.filter((r) => r.server.name === "as-read-only");
      assert.deepEqual(named(await collect(sys, "$SYS.REQ.CLAIMS.UPDATE", accountJwt(other, op.signer))), []);
      assert.deepEqual(named(await collect(sys, "$SYS.REQ.CLAIMS.LIST", "")), []);
      assert.deepEqual(named(await collect(sys, "$SYS.REQ.CLAIMS.DELETE", nscDeleteClaim(op.operator, [other.getPublicKey()]))), []);
      assert.equal((await sys.request(`$SYS.REQ.ACCOUNT.${a.getPublicKey()}.CLAIMS.LOOKUP`, "", { timeout: 1000 })).string(), jwt);
    } finally {
      await ro.stop();
    }
  });

  it("LOOKUP is answered with the JWT only when we hold a valid one", async () => {
    const a = createAccount();
    const k = a.getPublicKey();
    const jwt = accountJwt(a, op.signer);
    assert.equal(await post(t, k, jwt), 200);
    const raw = await sys.request(`$SYS.REQ.ACCOUNT.${k}.CLAIMS.LOOKUP`, "", { timeout: 1000 });
    assert.equal(raw.string(), jwt);
    const unknown = createAccount().getPublicKey();
    await assert.rejects(sys.request(`$SYS.REQ.ACCOUNT.${unknown}.CLAIMS.LOOKUP`, "", { timeout: 300 }));
  });
});
