/**
 * Trust on the other write paths: every refused case of the shared table is refused on the three
 * NATS update subjects, in a pack merge from a `full` nats-server holding it, and in a replica
 * import, and leaves the served JWT unchanged.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { connect, createInbox, credsAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { accountJwt, createAccount, userCreds, type KeyPair } from "../helpers/fixtures.js";
import { startNatsServer, tempDir, writeFile, type NatsServer } from "../helpers/processes.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { REFUSED_CASES, makeTrustWorld, type RefusedCase, type TrustMode } from "../helpers/trust-cases.js";

const OUR_NAME = "trust-under-test";
const UPDATE_SUBJECTS = (key: string): string[] => [
  `$SYS.ACCOUNT.${key}.CLAIMS.UPDATE`,
  `$SYS.REQ.ACCOUNT.${key}.CLAIMS.UPDATE`,
  "$SYS.REQ.CLAIMS.UPDATE",
];

interface Prepared {
  readonly c: RefusedCase;
  readonly acct: KeyPair;
  /** What is served before the refused upload (the last `before` JWT), if anything. */
  readonly last: string | undefined;
  readonly address: string;
  readonly jwt: string;
}

describe("reliability - trust on the NATS, pack-merge and replica-import paths", () => {
  const w = makeTrustWorld();
  const worlds = new Map<TrustMode, { ns: NatsServer; t: TestServer; nc: NatsConnection; cases: Prepared[] }>();

  async function served(t: TestServer, key: string): Promise<string | undefined> {
    const r = await fetch(`${t.base}/jwt/v1/accounts/${key}`);
    return r.status === 200 ? r.text() : undefined;
  }

  before(async () => {
    for (const mode of ["normal", "strict"] as const) {
      // The NATS side always runs the normal operator: a strict one would refuse users signed by
      // the system account's own key. What our server trusts is set by its own operatorjwtpath.
      const op = w.op;
      const dir = tempDir("trust-paths-");
      const cases: Prepared[] = REFUSED_CASES.filter((c) => c.mode === mode).map((c) => {
        const acct = createAccount();
        const befores = c.before?.(w, acct) ?? [];
        return { c, acct, last: befores.at(-1), address: c.address?.(w, acct) ?? acct.getPublicKey(), jwt: c.jwt(w, acct) };
      });
      // A full nats-server that already holds every refused JWT, as a careless peer would.
      const jwtDir = join(dir, "full");
      mkdirSync(jwtDir);
      for (const p of cases) writeFileSync(join(jwtDir, `${p.address}.jwt`), p.jwt);
      const ns = await startNatsServer(
        `operator: ${writeFile(dir, "op.jwt", op.operatorJwt)}\nsystem_account: ${op.sys.getPublicKey()}\n` +
          `resolver { type: full, dir: "${jwtDir}", interval: "1h" }\n` +
          `resolver_preload { ${op.sys.getPublicKey()}: "${op.sysJwt}" }\n`,
      );
      const t = await startServer({
        // The current operator JWT from the start: our first pack pull happens on connect, and a
        // key trusted at that moment is rightly taken (the HTTP test covers trusting, then reloading).
        operator: mode === "strict" ? w.strict : w.op,
        dir,
        store: { dir: join(dir, "store") },
        nats: {
          servers: [ns.url],
          userCredentials: writeFile(dir, "sys.creds", userCreds(op.sys).creds),
          syncInterval: 3_600_000,
          name: OUR_NAME,
        },
      });
      for (const p of cases) {
        if (p.last !== undefined) {
          const r = await fetch(`${t.base}/jwt/v1/accounts/${p.acct.getPublicKey()}`, { method: "POST", body: p.last });
          assert.equal(r.status, 200, await r.text());
        }
      }
      const nc = await connect({ servers: ns.url, authenticator: credsAuthenticator(new TextEncoder().encode(userCreds(op.sys).creds)) });
      await (async () => {
        const deadline = Date.now() + 10_000;
        while (!(t.server.health()["nats"] as { connected: boolean }).connected) {
          if (Date.now() > deadline) throw new Error("our server did not connect");
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      worlds.set(mode, { ns, t, nc, cases });
    }
  });

  after(async () => {
    for (const { ns, t, nc } of worlds.values()) {
      await nc.close();
      await t.stop();
      await ns.stop();
    }
  });

  /** Send `payload` on `subject` and return our server's reply (nats-servers may answer too). */
  async function ourReply(nc: NatsConnection, subject: string, payload: string): Promise<Record<string, unknown>> {
    const inbox = createInbox();
    const sub = nc.subscribe(inbox);
    const timer = setTimeout(() => sub.unsubscribe(), 3000);
    nc.publish(subject, payload, { reply: inbox });
    try {
      for await (const m of sub) {
        const r = m.json<Record<string, unknown>>();
        if ((r["server"] as { name?: string } | undefined)?.name === OUR_NAME) return r;
      }
    } finally {
      clearTimeout(timer);
      sub.unsubscribe();
    }
    throw new Error(`no reply from our server on ${subject}`);
  }

  for (const mode of ["normal", "strict"] as const) {
    for (const c of REFUSED_CASES.filter((x) => x.mode === mode)) {
      it(`nats update subjects refuse: ${c.name}`, async () => {
        const { t, nc, cases } = worlds.get(mode)!;
        const p = cases.find((x) => x.c === c)!;
        for (const subject of UPDATE_SUBJECTS(p.address)) {
          // The generic subject takes the account from the JWT; the address only names subjects.
          if (subject === "$SYS.REQ.CLAIMS.UPDATE" && c.code === "KEY_MISMATCH") continue;
          const r = await ourReply(nc, subject, p.jwt);
          assert.ok(r["error"], `${subject}: ${JSON.stringify(r)}`);
          assert.equal(r["data"], undefined);
        }
        assert.equal(await served(t, p.acct.getPublicKey()), p.last);
      });
    }
  }

  it("a pack merge from a full nats-server holding every refused JWT takes none of them", async () => {
    for (const { t, cases } of worlds.values()) {
      const r = await t.server.packSync!.syncOnce();
      assert.equal(r.outcome, "merged", JSON.stringify(r));
      if (r.outcome !== "merged") return;
      assert.equal(r.changed, 0);
      // Every refused case was offered and refused (the nats-server's own system account aside).
      for (const p of cases) {
        // nats-server leaves expired JWTs out of a pack, and our announcement of the newer JWT
        // replaced the older one on the full server.
        if (p.c.name === "expired" || p.c.code === "OLDER_JWT") continue;
        assert.ok(r.refused.has(p.address), `${p.c.name} was not offered or not refused`);
      }
      for (const p of cases) {
        assert.equal(await served(t, p.acct.getPublicKey()), p.last, p.c.name);
        if (p.address !== p.acct.getPublicKey()) assert.equal(await served(t, p.address), undefined, p.c.name);
      }
    }
  });

  it("a replica import of a pack holding every refused JWT takes none of them", async () => {
    const { cases } = worlds.get("normal")!;
    const fresh = cases.filter((p) => p.last === undefined);
    const primary: Server = createServer((req, res) => {
      if (req.url?.startsWith("/jwt/v1/pack")) {
        res.writeHead(200, { "Content-Type": "text/plain" });
        res.end(fresh.map((p) => `${p.address}|${p.jwt}`).join("\n"));
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((r) => primary.listen(0, "127.0.0.1", () => r()));
    const replica = await startServer({
      operator: w.op,
      primary: `http://127.0.0.1:${(primary.address() as AddressInfo).port}`,
    });
    try {
      assert.equal(replica.server.registry.store.size, 0);
      for (const p of fresh) assert.equal(await served(replica, p.address), undefined, p.c.name);
    } finally {
      await replica.stop();
      primary.close();
    }
  });

  it("the same connection accepts a valid update (the refusals above are not a broken path)", async () => {
    const { t, nc } = worlds.get("normal")!;
    const a = createAccount();
    const good = accountJwt(a, w.op.signer);
    const r = await ourReply(nc, "$SYS.REQ.CLAIMS.UPDATE", good);
    assert.ok(r["data"], JSON.stringify(r));
    assert.equal(await served(t, a.getPublicKey()), good);
  });
});
