/**
 * Notifications against a real nats-server: changes accepted while NATS is unreachable are sent
 * once the connection comes up, exactly once each; a NATS outage never blocks HTTP.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { connect, credsAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { accountJwt, createAccount, makeOperator, userCreds } from "../helpers/fixtures.js";
import { freePort, startNatsServer, tempDir, writeFile, type NatsServer } from "../helpers/processes.js";
import { startServer, type TestServer } from "../helpers/server.js";

/** A TCP forwarder we can open and close, to make NATS reachable at a moment of our choosing. */
class Gate {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  readonly port: number;
  private readonly target: number;
  constructor(port: number, target: number) {
    this.port = port;
    this.target = target;
  }
  open(): Promise<void> {
    this.server = createServer((c) => {
      const up = createConnection(this.target, "127.0.0.1");
      for (const s of [c, up]) {
        this.sockets.add(s);
        s.on("close", () => this.sockets.delete(s));
        s.on("error", () => s.destroy());
      }
      c.pipe(up).pipe(c);
    });
    return new Promise((r) => this.server!.listen(this.port, "127.0.0.1", () => r()));
  }
  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

describe("nats - notifications", () => {
  const op = makeOperator();
  let ns: NatsServer;
  let gate: Gate;
  let t: TestServer;
  let sub: NatsConnection;
  const got: Array<[string, string]> = [];

  before(async () => {
    const dir = tempDir();
    ns = await startNatsServer(
      `operator: ${JSON.stringify(writeFile(dir, "op.jwt", op.operatorJwt))}\n` +
        `system_account: ${op.sys.getPublicKey()}\nresolver: MEMORY\nresolver_preload: { ${op.sys.getPublicKey()}: "${op.sysJwt}" }\n`,
    );
    gate = new Gate(await freePort(), ns.port);
    t = await startServer({
      operator: op,
      dir,
      nats: {
        servers: [`nats://127.0.0.1:${gate.port}`],
        reconnectWait: 100,
        userCredentials: writeFile(dir, "sys.creds", userCreds(op.sys).creds),
      },
    });
    sub = await connect({ servers: ns.url, authenticator: credsAuthenticator(new TextEncoder().encode(userCreds(op.sys).creds)) });
    sub.subscribe("$SYS.ACCOUNT.*.CLAIMS.UPDATE", { callback: (_e, m) => void got.push([m.subject.split(".")[2]!, m.string()]) });
    await sub.flush();
  });

  after(async () => {
    await sub?.close();
    await t?.stop();
    await gate?.close();
    await ns?.stop();
  });

  it("changes accepted while NATS is down are announced once when it comes up", async () => {
    const a = createAccount();
    const b = createAccount();
    const a1 = accountJwt(a, op.signer, { name: "a1" });
    const a2 = accountJwt(a, op.signer, { name: "a2" });
    const b1 = accountJwt(b, op.signer, { name: "b1" });
    for (const [acct, jwt] of [[a, a1], [a, a2], [b, b1]] as const) {
      const r = await fetch(`${t.base}/jwt/v1/accounts/${acct.getPublicKey()}`, { method: "POST", body: jwt });
      assert.equal(r.status, 200);
    }
    assert.equal(t.server.notifier.backlog, 2);
    assert.equal(got.length, 0);
    await gate.open();
    while (got.length < 2) await sub.flush();
    // The newest JWT of each changed account, once.
    assert.deepEqual(
      got.sort((x, y) => x[0].localeCompare(y[0])),
      [[a.getPublicKey(), a2], [b.getPublicKey(), b1]].sort((x, y) => x[0]!.localeCompare(y[0]!)),
    );
    assert.equal(t.server.notifier.backlog, 0);
    const health = (await (await fetch(`${t.base}/healthz`)).json()) as { nats: { connected: boolean } };
    assert.equal(health.nats.connected, true);
  });

  it("once connected each change is published immediately and only once; notify=true re-sends", async () => {
    const c = createAccount();
    const d = createAccount();
    const c1 = accountJwt(c, op.signer);
    const d1 = accountJwt(d, op.signer);
    const before = got.length;
    const post = (k: string, jwt: string) => fetch(`${t.base}/jwt/v1/accounts/${k}`, { method: "POST", body: jwt });
    await post(c.getPublicKey(), c1);
    await post(c.getPublicKey(), c1); // identical: no notification
    await post(d.getPublicKey(), d1);
    const r = await fetch(`${t.base}/jwt/v1/accounts/${c.getPublicKey()}?notify=true`);
    assert.equal(r.status, 200);
    while (got.length < before + 3) await sub.flush();
    // Messages from one connection arrive in order, so a notification for the identical upload
    // would sit between c1 and d1.
    assert.deepEqual(got.slice(before), [[c.getPublicKey(), c1], [d.getPublicKey(), d1], [c.getPublicKey(), c1]]);
  });
});
