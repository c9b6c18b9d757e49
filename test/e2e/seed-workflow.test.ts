/**
 * The seed document's "Store Notifications" workflow end to end: our CLI with the seed's config
 * (paths and ports adapted), then a real nats-server 2.9.10 using us as its URL resolver.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { connect, credsAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import {
  goAccountJwt as accountJwt,
  createAccount,
  createOperator,
  makeOperator,
  nowSec,
  userCreds,
  type KeyPair,
} from "../helpers/fixtures.js";
import { freePort, spawnCli, startNatsServer, tempDir, writeFile, type NatsServer, type Proc } from "../helpers/processes.js";

const enc = new TextEncoder();
const claimsOf = (jwt: string): Record<string, unknown> =>
  JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString()) as Record<string, unknown>;

async function post(port: number, key: string, jwt: string): Promise<{ status: number; body: string }> {
  const r = await fetch(`http://127.0.0.1:${port}/jwt/v1/accounts/${key}`, {
    method: "POST",
    headers: { "Content-Type": "application/jwt" },
    body: jwt,
  });
  return { status: r.status, body: await r.text() };
}

async function get(port: number, key: string): Promise<{ status: number; body: string }> {
  const r = await fetch(`http://127.0.0.1:${port}/jwt/v1/accounts/${key}`);
  return { status: r.status, body: await r.text() };
}

function connectAs(natsPort: number, creds: string, extra: Record<string, unknown> = {}): Promise<NatsConnection> {
  return connect({
    servers: `127.0.0.1:${natsPort}`,
    authenticator: credsAuthenticator(enc.encode(creds)),
    ...extra,
  });
}

describe("seed workflow - store notifications with a real nats-server", () => {
  const op = makeOperator();
  const a = createAccount();
  const b = createAccount();
  let dir: string;
  let asPort: number;
  let natsPort: number;
  let cli: Proc;
  let ns: NatsServer | undefined;
  let sysNc: NatsConnection | undefined;
  const seen = new Map<string, string[]>();

  before(async () => {
    dir = tempDir("seed-");
    asPort = await freePort();
    natsPort = await freePort();
    writeFile(dir, "AAA.jwt", op.operatorJwt);
    writeFile(dir, "SYS.jwt", op.sysJwt);
    writeFile(dir, "sys.creds", userCreds(op.sys).creds);
    // The seed's configuration, verbatim but for paths and ports.
    const conf = `operatorjwtpath: "${dir}/AAA.jwt",
systemaccountjwtpath: "${dir}/SYS.jwt"
http {
port: ${asPort}
},
store {
dir: "${dir}/as_store",
readonly: false,
shard: true
}
nats {
servers: [nats://localhost:${natsPort}]
usercredentials: "${dir}/sys.creds"
}
`;
    writeFile(dir, "nas_not.conf", conf);
    cli = spawnCli(["-c", join(dir, "nas_not.conf")]);
  });

  after(async () => {
    await sysNc?.close();
    await cli?.stop();
    await ns?.stop();
  });

  it("starts with the seed's log lines, in order, while NATS is down", async () => {
    await cli.waitFor(/resolver: URL\(/);
    await cli.waitFor(/will try to connect again/, 10_000, cli.lines.findIndex((l) => /resolver: URL/.test(l)));
    const expected = [
      /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d\.\d{6} \[INF\] loading configuration from ".*nas_not\.conf"$/,
      /\[INF\] starting NATS Account server, version \S+$/,
      /\[INF\] server time is \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \S+ \d{4}$/,
      /\[INF\] loading operator from .*\/AAA\.jwt$/,
      /\[INF\] loading system account from .*\/SYS\.jwt$/,
      /\[INF\] creating a store at .*\/as_store$/,
      /\[INF\] connecting to NATS for notifications$/,
      /\[ERR\] failed to connect to NATS, nats: no servers available for connection$/,
      /\[ERR\] will try to connect again in 1000 milliseconds$/,
      new RegExp(`\\[INF\\] http listening on port ${asPort}$`),
      /\[INF\] nats-account-server is running$/,
      /\[INF\] configure the nats-server with:$/,
      new RegExp(`\\[INF\\] resolver: URL\\(http://localhost:${asPort}/jwt/v1/accounts/\\)$`),
      /\[INF\] connecting to NATS for notifications$/,
      /\[ERR\] failed to connect to NATS, nats: no servers available for connection$/,
    ];
    let i = 0;
    for (const line of cli.lines) {
      if (i < expected.length && expected[i]!.test(line)) i++;
    }
    assert.equal(i, expected.length, `only ${i} of the seed's lines in order; output:\n${cli.output}`);
    // HTTP answers while NATS is unreachable.
    const probe = await fetch(`http://127.0.0.1:${asPort}/jwt/v1/accounts/`);
    assert.equal(probe.status, 200);
    assert.equal(probe.headers.get("cache-control"), "no-cache, no-store, must-revalidate");
  });

  it("a nats-server starts against our URL resolver and we connect within one reconnectwait", async () => {
    const from = cli.lines.length;
    ns = await startNatsServer(
      `operator: ${dir}/AAA.jwt\nresolver: URL(http://localhost:${asPort}/jwt/v1/accounts/)\nsystem_account: ${op.sys.getPublicKey()}\n`,
      { port: natsPort },
    );
    await cli.waitFor(/connected to NATS/, 5000, from);
    // The system account came from systemaccountjwtpath: no bootstrapping account was needed.
    assert.doesNotMatch(ns.proc.output, /bootstrapping system account/i);
    sysNc = await connectAs(natsPort, userCreds(op.sys).creds);
    sysNc.subscribe("$SYS.ACCOUNT.*.CLAIMS.UPDATE", {
      callback: (_e, m) => {
        const key = m.subject.split(".")[2]!;
        seen.set(key, [...(seen.get(key) ?? []), m.string()]);
      },
    });
    await sysNc.flush();
  });

  /** Wait until `n` notifications for `key` arrived. */
  async function notifications(key: string, n: number): Promise<string[]> {
    const deadline = Date.now() + 5000;
    while ((seen.get(key)?.length ?? 0) < n) {
      if (Date.now() > deadline) throw new Error(`expected ${n} notifications for ${key}, got ${seen.get(key)?.length ?? 0}`);
      await sysNc!.flush();
      await new Promise((r) => setImmediate(r));
    }
    return seen.get(key)!;
  }

  const jwtA1 = accountJwt(a, op.signer, { name: "A" });
  it("nsc push -A: A, B and SYS answer 200 and are stored sharded, one notification each", async () => {
    const jwtB = accountJwt(b, op.signer, { name: "B" });
    for (const [key, jwt] of [
      [a.getPublicKey(), jwtA1],
      [b.getPublicKey(), jwtB],
      [op.sys.getPublicKey(), op.sysJwt],
    ] as const) {
      const r = await post(asPort, key, jwt);
      assert.equal(r.status, 200, r.body);
      assert.equal(r.body, "");
      await cli.waitFor(new RegExp(`\\[INF\\] updated JWT for account - ${key.slice(0, 12)} - \\S+$`));
      assert.deepEqual(await notifications(key, 1), [jwt]);
      assert.ok(existsSync(join(dir, "as_store", key.slice(-2), `${key}.jwt`)));
    }
    assert.equal((await get(asPort, a.getPublicKey())).body, jwtA1);
  });

  let user1: NatsConnection;
  let user1Key: KeyPair;
  it("a user of A connects and exchanges messages", async () => {
    const { creds, user } = userCreds(a, { iat: nowSec() - 60 });
    user1Key = user;
    user1 = await connectAs(natsPort, creds, { reconnect: false });
    const sub = user1.subscribe("greet", { max: 1 });
    user1.publish("greet", "hello");
    for await (const m of sub) assert.equal(m.string(), "hello");
  });

  // nsc edits are Go-issued: two edits in one second share `iat` and `jti` (jwt/v2 hashes only the
  // standard claims), as `nsc edit account A --conns 1; nsc push; nsc revocations add-user; nsc push`.
  const editIat = nowSec();
  it("an update lowering A's connection limit is enforced live", async () => {
    const limited = accountJwt(a, op.signer, { name: "A", iat: editIat, limits: { conn: 1 } });
    assert.equal((await post(asPort, a.getPublicKey(), limited)).status, 200);
    await notifications(a.getPublicKey(), 2);
    const { creds } = userCreds(a);
    await assert.rejects(connectAs(natsPort, creds, { reconnect: false }));
    await ns!.proc.waitFor(/maximum account active connections exceeded/);
    assert.equal(user1.isClosed(), false);
  });

  it("an update revoking the user disconnects it within a second", async () => {
    const closed = user1.closed();
    const revoking = accountJwt(a, op.signer, {
      name: "A",
      iat: editIat,
      limits: { conn: 1 },
      revocations: { [user1Key.getPublicKey()]: editIat },
    });
    const current = (await get(asPort, a.getPublicKey())).body;
    assert.equal(claimsOf(revoking)["jti"], claimsOf(current)["jti"], "the two edits share their jti, as nsc's do");
    const t0 = Date.now();
    assert.equal((await post(asPort, a.getPublicKey(), revoking)).status, 200);
    const err = await Promise.race([
      closed,
      new Promise((_r, rej) => setTimeout(() => rej(new Error("user was not disconnected")), 1000)),
    ]);
    assert.ok(Date.now() - t0 < 1000);
    assert.match(String(err), /revoked/i);
  });

  it("refused uploads change nothing and send no notification", async () => {
    const key = a.getPublicKey();
    const before = (await get(asPort, key)).body;
    const countBefore = seen.get(key)!.length;
    const other = createOperator();
    const now = nowSec();
    const cases: Array<[string, string, string, number, RegExp]> = [
      ["garbage body", key, "not a jwt", 400, /^bad JWT in request\n$/],
      ["wrong path key", b.getPublicKey(), accountJwt(a, op.signer), 400, /^pub keys don't match\n$/],
      ["untrusted issuer", key, accountJwt(a, other), 400, /^untrusted issuer in request\n$/],
      ["self-signed", key, accountJwt(a, a), 400, /^Signing service not enabled\n$/],
      ["expired", key, accountJwt(a, op.signer, { exp: now - 10 }), 400, /expired/],
      ["not yet valid", key, accountJwt(a, op.signer, { nbf: now + 3600 }), 400, /not yet valid/],
      ["older", key, accountJwt(a, op.signer, { iat: now - 3600 }), 409, /newer JWT is already stored/],
    ];
    for (const [name, path, jwt, status, phrase] of cases) {
      const r = await post(asPort, path, jwt);
      assert.equal(r.status, status, `${name}: ${r.body}`);
      assert.match(r.body, phrase, name);
    }
    assert.equal((await get(asPort, key)).body, before);
    // Notifications are ordered: once a later change is seen, none of the refused ones was sent.
    const jwtB2 = accountJwt(b, op.signer, { name: "B2" });
    assert.equal((await post(asPort, b.getPublicKey(), jwtB2)).status, 200);
    await notifications(b.getPublicKey(), 2);
    assert.equal(seen.get(key)!.length, countBefore);
  });

  it("an identical re-push is a 200 no-op without a notification", async () => {
    const key = b.getPublicKey();
    const current = (await get(asPort, key)).body;
    const n = seen.get(key)!.length;
    assert.equal((await post(asPort, key, current)).status, 200);
    const jwtB3 = accountJwt(b, op.signer, { name: "B3" });
    assert.equal((await post(asPort, key, jwtB3)).status, 200);
    assert.deepEqual((await notifications(key, n + 1)).slice(n), [jwtB3]);
  });

  it("the store holds only the layout's files", () => {
    const store = join(dir, "as_store");
    for (const shard of readdirSync(store)) {
      // Besides the shards only the write-ahead journal of changes since the last checkpoint.
      if (/^\.journal\.\d+$/.test(shard)) continue;
      assert.equal(shard.length, 2);
      for (const f of readdirSync(join(store, shard))) assert.match(f, /^A[A-Z2-7]{55}\.jwt$/);
    }
  });
});
