/**
 * Scale-out on JetStream: three account servers sharing one replicated KV bucket on a three-node
 * nats-server cluster, a nats-server resolving through them, node failure, history, migration.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { connect, credsAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { DirStore } from "../../src/store/dir.js";
import { accountJwt, createAccount, makeOperator, nowSec, userCreds, type KeyPair } from "../helpers/fixtures.js";
import { startJetStreamCluster, type JetStreamCluster } from "../helpers/cluster.js";
import { freePort, spawnCli, startNatsServer, tempDir, writeFile, type NatsServer } from "../helpers/processes.js";
import { startServer, type TestServer } from "../helpers/server.js";

async function until(what: string, cond: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const post = (t: TestServer, key: string, jwt: string): Promise<Response> =>
  fetch(`${t.base}/jwt/v1/accounts/${key}`, { method: "POST", body: jwt });
const body = async (t: TestServer, key: string): Promise<string | undefined> => {
  const r = await fetch(`${t.base}/jwt/v1/accounts/${key}`);
  return r.status === 200 ? r.text() : undefined;
};

describe("kv store - three instances on a three-node JetStream cluster", () => {
  const op = makeOperator();
  let cluster: JetStreamCluster;
  let bus: NatsServer | undefined;
  let busPort: number;
  let dir: string;
  const servers: TestServer[] = [];
  let sub: NatsConnection;
  const seen = new Map<string, number>();

  before(async () => {
    cluster = await startJetStreamCluster(3);
    dir = tempDir("kv-");
    busPort = await freePort();
    const sysCreds = writeFile(dir, "sys.creds", userCreds(op.sys).creds);
    for (let i = 0; i < 3; i++) {
      servers.push(
        await startServer({
          operator: op,
          systemAccount: true,
          // Each instance talks to a different node first, as a real deployment would.
          store: { type: "kv", bucket: "accounts", replicas: 3, history: 5, servers: [cluster.urls[i]!, ...cluster.urls] },
          nats: { servers: [`nats://127.0.0.1:${busPort}`], userCredentials: sysCreds, reconnectWait: 100 },
        }),
      );
    }
    await until("instances ready", async () => {
      for (const s of servers) if ((await fetch(`${s.base}/readyz`)).status !== 200) return false;
      return true;
    }, 30_000);
    // The resolver bus: a nats-server that resolves accounts through instance 0.
    bus = await startNatsServer(
      `operator: ${writeFile(dir, "op.jwt", op.operatorJwt)}\nsystem_account: ${op.sys.getPublicKey()}\n` +
        `resolver: URL(${servers[0]!.server.resolverUrl})\n`,
      { port: busPort },
    );
    sub = await connect({ servers: bus.url, authenticator: credsAuthenticator(new TextEncoder().encode(userCreds(op.sys).creds)) });
    sub.subscribe("$SYS.ACCOUNT.*.CLAIMS.UPDATE", {
      callback: (_e, m) => void seen.set(m.subject.split(".")[2]!, (seen.get(m.subject.split(".")[2]!) ?? 0) + 1),
    });
    await sub.flush();
    for (const s of servers) await until("instance connected to the bus", () => s.server.health()["nats"] !== undefined && (s.server.health()["nats"] as { connected: boolean }).connected);
  });

  after(async () => {
    await sub?.close();
    for (const s of servers) await s.stop();
    await bus?.stop();
    await cluster?.close();
  });

  const accounts: KeyPair[] = Array.from({ length: 12 }, () => createAccount());

  it("uploads spread across instances are served by every instance", async () => {
    for (const [i, a] of accounts.entries()) {
      const r = await post(servers[i % 3]!, a.getPublicKey(), accountJwt(a, op.signer, { name: `acct${i}` }));
      assert.equal(r.status, 200, await r.text());
    }
    for (const s of servers) {
      for (const a of accounts) await until(`instance serves ${a.getPublicKey()}`, async () => (await body(s, a.getPublicKey())) !== undefined);
    }
  });

  it("each change reaches the nats-servers exactly once, whichever instance took it", async () => {
    const marker = createAccount();
    assert.equal((await post(servers[2]!, marker.getPublicKey(), accountJwt(marker, op.signer))).status, 200);
    await until("marker notification", async () => {
      await sub.flush();
      return seen.has(marker.getPublicKey());
    });
    for (const a of accounts) assert.equal(seen.get(a.getPublicKey()), 1, a.getPublicKey());
  });

  it("a change through the bucket watch replaces exactly its key's cached view on the other instances", async () => {
    const [x, y] = accounts;
    const kx = x!.getPublicKey();
    const ky = y!.getPublicKey();
    // Both cached on instance 1 (a GET reads a cold one into the cache).
    await body(servers[1]!, kx);
    await body(servers[1]!, ky);
    const cache = servers[1]!.server.registry.cache;
    const yView = cache.peek(ky);
    assert.ok(cache.peek(kx) && yView);
    const x2 = accountJwt(x!, op.signer, { name: "acct0-v2", iat: nowSec() + 1 });
    assert.equal((await post(servers[0]!, kx, x2)).status, 200);
    await until("instance 1 serves the new version", async () => (await body(servers[1]!, kx)) === x2);
    assert.equal(cache.peek(kx)?.jwt, x2);
    assert.equal(cache.peek(ky), yView, "another key's view was dropped");
  });

  it("instances racing on one account converge on the newest iat; the older upload gets 409", async () => {
    const base = nowSec();
    const results = await Promise.all(
      accounts.slice(0, 6).flatMap((a, i) => {
        const newer = accountJwt(a, op.signer, { iat: base + 10, name: `new${i}` });
        const older = accountJwt(a, op.signer, { iat: base + 5, name: `old${i}` });
        return [
          post(servers[1]!, a.getPublicKey(), newer).then(async (r) => ({ kind: "newer", status: r.status, a, jwt: newer, text: await r.text() })),
          post(servers[2]!, a.getPublicKey(), older).then(async (r) => ({ kind: "older", status: r.status, a, jwt: older, text: await r.text() })),
        ];
      }),
    );
    for (const r of results) {
      if (r.kind === "newer") assert.equal(r.status, 200, r.text);
      else assert.ok(r.status === 409 || r.status === 200, `${r.status} ${r.text}`);
    }
    for (const r of results.filter((x) => x.kind === "newer")) {
      for (const s of servers) await until("converged on newest", async () => (await body(s, r.a.getPublicKey())) === r.jwt);
    }
    // An older upload sent to another instance right after the newer one was accepted always
    // loses, whether that instance saw the newer one through the bucket watch or by a failed CAS.
    for (const [i, a] of accounts.slice(6, 9).entries()) {
      const newer = accountJwt(a, op.signer, { iat: base + 10, name: `seq-new${i}` });
      const older = accountJwt(a, op.signer, { iat: base + 5, name: `seq-old${i}` });
      assert.equal((await post(servers[i % 3]!, a.getPublicKey(), newer)).status, 200);
      const r = await post(servers[(i + 1) % 3]!, a.getPublicKey(), older);
      assert.equal(r.status, 409, await r.text());
      for (const s of servers) await until("newest everywhere", async () => (await body(s, a.getPublicKey())) === newer);
    }
  });

  it("history lists every stored version in order, and a past version can be fetched", async () => {
    const a = accounts[0]!;
    const r = await fetch(`${servers[0]!.base}/jwt/v1/accounts/${a.getPublicKey()}/history`);
    assert.equal(r.status, 200);
    const h = (await r.json()) as { versions: Array<{ revision: number; iat: number; jti: string; issuer: string; size: number }> };
    assert.ok(h.versions.length >= 2);
    for (let i = 1; i < h.versions.length; i++) assert.ok(h.versions[i]!.revision > h.versions[i - 1]!.revision);
    assert.equal(h.versions.at(-1)!.issuer, op.signer.getPublicKey());
    const first = await fetch(`${servers[0]!.base}/jwt/v1/accounts/${a.getPublicKey()}/history/${h.versions[0]!.revision}`);
    assert.equal(first.status, 200);
    assert.match(await first.text(), /^eyJ/);
  });

  it("a node killed: instances keep serving and accepting; the restarted node catches up", async () => {
    await cluster.stop(0);
    const late = createAccount();
    const jwt = accountJwt(late, op.signer);
    await until("upload accepted with a node down", async () => (await post(servers[0]!, late.getPublicKey(), jwt)).status === 200, 20_000);
    for (const s of servers) {
      await until("served with a node down", async () => (await body(s, late.getPublicKey())) === jwt, 20_000);
      assert.equal((await body(s, accounts[3]!.getPublicKey())) !== undefined, true);
    }
    await cluster.restart(0);
    const direct = await connect({ servers: cluster.urls[0]! });
    try {
      const kv = await new Kvm(direct).open("accounts");
      await until("restarted node has the late upload", async () => {
        try {
          return (await kv.get(late.getPublicKey()))?.string() === jwt;
        } catch {
          return false;
        }
      }, 20_000);
    } finally {
      await direct.close();
    }
  });
});

describe("kv store - startup without the bucket, and migration", () => {
  let js: NatsServer | undefined;

  after(async () => {
    await js?.stop();
  });

  it("reports not-ready (and 503 for GETs) until NATS is reachable, then loads", async () => {
    const op = makeOperator();
    const port = await freePort();
    const t = await startServer({ operator: op, store: { type: "kv", bucket: "late", servers: [`nats://127.0.0.1:${port}`] }, nats: { reconnectWait: 100 } });
    try {
      assert.equal((await fetch(`${t.base}/readyz`)).status, 503);
      const a = createAccount();
      assert.equal((await fetch(`${t.base}/jwt/v1/accounts/${a.getPublicKey()}`)).status, 503);
      assert.equal((await post(t, a.getPublicKey(), accountJwt(a, op.signer))).status, 503);
      js = await startNatsServer(`jetstream { store_dir: "${join(tempDir(), "js")}" }\n`, { port });
      await until("ready once NATS is up", async () => (await fetch(`${t.base}/readyz`)).status === 200, 20_000);
      assert.equal((await post(t, a.getPublicKey(), accountJwt(a, op.signer))).status, 200);
    } finally {
      await t.stop();
    }
  });

  it("migrate copies 1,000 accounts dir → kv → dir with equal hashes (real CLI)", async () => {
    const op = makeOperator();
    const dir = tempDir("migrate-");
    const src = new DirStore({ dir: join(dir, "src"), shard: true, readonly: false });
    await src.open();
    for (let i = 0; i < 1000; i++) {
      const a = createAccount();
      await src.put(a.getPublicKey(), accountJwt(a, op.signer, { name: `m${i}` }));
    }
    const want = src.hash().toString("hex");
    await src.close();
    const run = async (from: string, to: string): Promise<string> => {
      const p = spawnCli(["migrate", "-from", from, "-to", to, "-nats", js!.url]);
      assert.equal(await p.exited, 0, p.output);
      return p.output;
    };
    const out1 = await run(`dir+shard:${join(dir, "src")}`, "kv:migrated");
    assert.match(out1, new RegExp(`migrated 1000 account JWT\\(s\\).*hash ${want} verified`));
    const out2 = await run("kv:migrated", `dir:${join(dir, "back")}`);
    assert.match(out2, new RegExp(`hash ${want} verified`));
    const back = new DirStore({ dir: join(dir, "back"), shard: false, readonly: false });
    await back.open();
    assert.equal(back.size, 1000);
    assert.equal(back.hash().toString("hex"), want);
  });
});
