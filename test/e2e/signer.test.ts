/**
 * Self-service accounts end to end: our CLI as account server (signrequestsubject) and as signer,
 * a real nats-server using us as its URL resolver, a tenant pushing its self-signed account JWT.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { connect, credsAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { decodeAccountJwt } from "../../src/jwt/index.js";
import {
  accountJwt,
  createAccount,
  createOperator,
  createUser,
  goAccountJwt,
  makeOperator,
  nowSec,
  pub,
  userCreds,
  userJwt,
  type KeyPair,
} from "../helpers/fixtures.js";
import { freePort, startNatsServer, tempDir, trackedCli, writeFile, type NatsServer, type Proc } from "../helpers/processes.js";

const SUBJECT = "nas.sign.account";
const dec = new TextDecoder();

/** What nsc writes for a new account when it holds no operator key: self-signed, Go-encoded. */
function nscSelfSigned(a: KeyPair, limits: Record<string, number> = {}, name = "tenant", iat?: number): string {
  return goAccountJwt(a, a, { name, limits, ...(iat !== undefined ? { iat } : {}) });
}

describe("signer - self-service accounts with a real nats-server, our CLI for both processes", () => {
  const signingKey = createOperator();
  const op = makeOperator({ extraSigningKeys: [pub(signingKey)] });
  const seed = dec.decode(signingKey.getSeed());
  const cli = trackedCli();
  let dir: string;
  let asPort: number;
  let natsPort: number;
  let accountServer: Proc;
  let ns: NatsServer | undefined;
  let sysNc: NatsConnection | undefined;

  /** A signer configuration file; returns its path. */
  function signerConf(name: string, policy: string, o: { seedFile?: string } = {}): string {
    return writeFile(
      dir,
      `${name}.conf`,
      `subject: ${SUBJECT}
seedfile: "${o.seedFile ?? join(dir, "signer.nk")}"
operatorjwtpath: "${dir}/op.jwt"
statedir: "${dir}/${name}-state"
logging { colors: false }
nats {
  servers: [nats://127.0.0.1:${natsPort}]
  usercredentials: "${dir}/sys.creds"
  reconnectwait: 200
}
policy {
${policy}
}
`,
    );
  }

  async function startSigner(conf: string): Promise<Proc> {
    const p = cli(["signer", "-c", conf]);
    await p.waitFor(/answering sign requests on nas\.sign\.account/);
    return p;
  }

  async function runOnce(args: string[]): Promise<{ code: number | null; output: string }> {
    const p = cli(args);
    const code = await p.exited;
    return { code, output: p.output };
  }

  const post = async (key: string, jwt: string): Promise<{ status: number; body: string }> => {
    const r = await fetch(`http://127.0.0.1:${asPort}/jwt/v1/accounts/${key}`, {
      method: "POST",
      headers: { "Content-Type": "application/jwt" },
      body: jwt,
    });
    return { status: r.status, body: await r.text() };
  };
  const get = async (key: string): Promise<{ status: number; body: string }> => {
    const r = await fetch(`http://127.0.0.1:${asPort}/jwt/v1/accounts/${key}`);
    return { status: r.status, body: await r.text() };
  };
  const connectUser = (a: KeyPair): Promise<NatsConnection> =>
    connect({
      servers: `127.0.0.1:${natsPort}`,
      authenticator: credsAuthenticator(new TextEncoder().encode(userCreds(a).creds)),
      reconnect: false,
    });

  before(async () => {
    dir = tempDir("signer-e2e-");
    asPort = await freePort();
    natsPort = await freePort();
    writeFile(dir, "op.jwt", op.operatorJwt);
    writeFile(dir, "sys.jwt", op.sysJwt);
    writeFile(dir, "sys.creds", userCreds(op.sys).creds);
    chmodSync(writeFile(dir, "signer.nk", `${seed}\n`), 0o600);
    writeFile(
      dir,
      "nas.conf",
      `operatorjwtpath: "${dir}/op.jwt"
systemaccountjwtpath: "${dir}/sys.jwt"
signrequestsubject: ${SUBJECT}
signrequesttimeout: 3000
logging { colors: false }
http { host: 127.0.0.1, port: ${asPort} }
store { dir: "${dir}/store" }
nats { servers: [nats://127.0.0.1:${natsPort}], usercredentials: "${dir}/sys.creds", reconnectwait: 200 }
`,
    );
    accountServer = cli(["-c", join(dir, "nas.conf")]);
    await accountServer.waitFor(/nats-account-server is running/);
    const from = accountServer.lines.length;
    ns = await startNatsServer(
      `operator: ${dir}/op.jwt\nresolver: URL(http://127.0.0.1:${asPort}/jwt/v1/accounts/)\nsystem_account: ${pub(op.sys)}\n`,
      { port: natsPort },
    );
    await accountServer.waitFor(/connected to NATS/, 10_000, from);
    sysNc = await connect({
      servers: `127.0.0.1:${natsPort}`,
      authenticator: credsAuthenticator(new TextEncoder().encode(userCreds(op.sys).creds)),
    });
  });

  after(async () => {
    await sysNc?.close();
    await ns?.stop();
  });

  it("a seed file others can read keeps the signer from starting, and the seed is never printed", async () => {
    const open = writeFile(dir, "open.nk", `${seed}\n`);
    chmodSync(open, 0o644);
    const r = await runOnce(["signer", "-c", signerConf("open", "newaccounts: sign", { seedFile: open })]);
    assert.equal(r.code, 1);
    assert.match(r.output, /open\.nk is accessible by others \(mode 0644\).*chmod 600/);
    assert.ok(!r.output.includes(seed.slice(2)));
  });

  it("clamp: a self-signed new account over the caps comes back clamped, and a user of it connects", async () => {
    const signer = await startSigner(signerConf("clamp", "newaccounts: sign\noverlimit: clamp\nlimits { conn: 2, subs: 50 }"));
    const t = createAccount();
    const r = await post(pub(t), nscSelfSigned(t, { conn: -1, subs: 10 }));
    assert.equal(r.status, 200, r.body);
    const stored = decodeAccountJwt((await get(pub(t))).body);
    assert.equal(stored.iss, pub(signingKey));
    const limits = stored.claims.nats!.limits as Record<string, number>;
    assert.equal(limits["conn"], 2);
    assert.equal(limits["subs"], 10);
    await accountServer.waitFor(new RegExp(`updated JWT for account - ${pub(t).slice(0, 12)}`));
    const audit = await signer.waitFor(/audit decision=signed/);
    assert.match(audit, new RegExp(`requester=${pub(t)} account=${pub(t)} request=[A-Z2-7]{12} caps="conn unlimited -> 2`));

    // Live on the nats-server: two users connect, the cap refuses a third.
    const u1 = await connectUser(t);
    const u2 = await connectUser(t);
    const sub = u1.subscribe("hello", { max: 1 });
    await u1.flush();
    u2.publish("hello", "world");
    for await (const m of sub) assert.equal(m.string(), "world");
    await assert.rejects(connectUser(t));
    await u1.close();
    await u2.close();
    await signer.stop();
    assert.ok(!signer.output.includes(seed.slice(2)), "the seed never appears in the log");
  });

  it("refuse: over the caps answers 400 with the policy's reason and stores nothing", async () => {
    const signer = await startSigner(signerConf("strict", "newaccounts: sign\noverlimit: refuse\nlimits { conn: 2 }"));
    const t = createAccount();
    const r = await post(pub(t), nscSelfSigned(t, { conn: 10 }));
    assert.equal(r.status, 400);
    assert.match(r.body, /^refused by policy: conn 10 is over the cap of 2/);
    assert.equal((await get(pub(t))).status, 404);
    await signer.waitFor(/audit decision=refused requester=\S+ account=\S+ request=\S+ reason="refused by policy/);
    await signer.stop();
  });

  it("queue: a new account waits for approval across a signer restart, then becomes usable", async () => {
    const conf = signerConf("queue", "newaccounts: queue\nlimits { conn: 5 }");
    let signer = await startSigner(conf);
    const t = createAccount();
    const request = nscSelfSigned(t, { conn: 3 }, "queued tenant");
    const r = await post(pub(t), request);
    assert.equal(r.status, 202, r.body);
    const id = /request ([A-Z2-7]{12})/.exec(r.body)![1]!;
    assert.match(r.body, new RegExp(`signer approve ${id}`));
    assert.equal((await get(pub(t))).status, 404);
    // Asking again is the same request, not a second one.
    assert.equal((await post(pub(t), request)).body, r.body);

    await signer.stop();
    const listed = await runOnce(["signer", "list", "-c", conf]);
    assert.equal(listed.code, 0);
    // nsc's "unlimited" defaults get the caps; conn 3 is within its cap of 5.
    assert.match(listed.output, new RegExp(`^${id}  ${pub(t)}  "queued tenant"  \\S+  leaf unlimited -> 0; subs unlimited -> 1000;`, "m"));
    assert.doesNotMatch(listed.output, /conn/);
    signer = await startSigner(conf);
    assert.equal((await post(pub(t), request)).status, 202, "still queued after the restart");

    const approved = await runOnce(["signer", "approve", id, "-c", conf]);
    assert.equal(approved.code, 0, approved.output);
    assert.match(approved.output, new RegExp(`approved request ${id}: account ${pub(t)} is signed and stored by nats-account-server`));
    assert.match(approved.output, /audit decision=approved/);
    const stored = decodeAccountJwt((await get(pub(t))).body);
    assert.equal(stored.iss, pub(signingKey));
    assert.equal((stored.claims.nats!.limits as Record<string, number>)["conn"], 3);
    const u = await connectUser(t);
    await u.close();
    assert.match((await runOnce(["signer", "list", "-c", conf])).output, /no requests are waiting/);
    assert.equal((await runOnce(["signer", "approve", id, "-c", conf])).code, 1, "approving twice");

    // The account is known now: its next self-signed update is signed at once.
    const update = await post(pub(t), nscSelfSigned(t, { conn: 4 }, "queued tenant"));
    assert.equal(update.status, 200, update.body);
    assert.equal((decodeAccountJwt((await get(pub(t))).body).claims.nats!.limits as Record<string, number>)["conn"], 4);

    // Two nsc edits within one second share iat and jti (Go hashes only the standard claims):
    // both are distinct requests and the second one wins.
    const iat = nowSec();
    const edits = [1, 2].map((conn) => nscSelfSigned(t, { conn }, "queued tenant", iat));
    assert.equal(decodeAccountJwt(edits[0]!).jti, decodeAccountJwt(edits[1]!).jti);
    for (const edit of edits) {
      const r = await post(pub(t), edit);
      assert.equal(r.status, 200, r.body);
    }
    assert.equal((decodeAccountJwt((await get(pub(t))).body).claims.nats!.limits as Record<string, number>)["conn"], 2);
    await signer.stop();
  });

  it("reject: a rejected request stays refused", async () => {
    const conf = signerConf("reject", "newaccounts: queue");
    const signer = await startSigner(conf);
    const t = createAccount();
    const request = nscSelfSigned(t);
    const r = await post(pub(t), request);
    assert.equal(r.status, 202);
    const id = /request ([A-Z2-7]{12})/.exec(r.body)![1]!;
    const rejected = await runOnce(["signer", "reject", id, "-c", conf, "-reason", "not a customer"]);
    assert.equal(rejected.code, 0, rejected.output);
    assert.match(rejected.output, /audit decision=rejected/);
    const again = await post(pub(t), request);
    assert.equal(again.status, 400);
    assert.equal(again.body, `request ${id} was rejected: not a customer\n`);
    assert.equal((await get(pub(t))).status, 404);
    await signer.stop();
  });

  it("bad requests sent to the signer directly get an error reply and change nothing", async () => {
    const conf = signerConf("bad", "newaccounts: sign");
    const signer = await startSigner(conf);
    const a = createAccount();
    const cases: Array<[string, string]> = [
      ["garbage", "garbage"],
      ["user JWT", userJwt(createUser(), a)],
      ["operator JWT", op.operatorJwt],
      ["account signed by another account", accountJwt(a, createAccount())],
      ["huge payload", "x".repeat(200 * 1024)],
    ];
    for (const [what, payload] of cases) {
      const m = await sysNc!.request(SUBJECT, payload, { timeout: 3000 });
      assert.equal(m.headers?.get("Nats-Service-Error-Code"), "400", what);
      assert.ok(m.string().length > 0, what);
    }
    const state = join(dir, "bad-state");
    assert.deepEqual(["pending", "approved", "rejected", "accounts"].flatMap((d) => readdirSync(join(state, d))), []);
    assert.equal((await get(pub(a))).status, 404);
    assert.equal((await signer.waitFor(/audit decision=refused/)).length > 0, true);
    await signer.stop();
    assert.ok(!readFileSync(conf, "utf8").includes(seed), "the configuration names the seed file, not the seed");
  });
});
