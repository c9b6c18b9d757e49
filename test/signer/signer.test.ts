/**
 * The signer's parts in-process: seeds, policy (caps clamped or refused, fields allowed or
 * dropped), bad requests refused without a trace in the state, the approval queue's dedupe.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, readdirSync } from "node:fs";
import { join } from "node:path";
import * as nkeys from "@nats-io/nkeys";
import { decodeAccountJwt, findSeed, parseSeed, validateAccountClaims } from "../../src/jwt/index.js";
import { silentLogger } from "../../src/log.js";
import { defaultSignerConfig, loadSignerConfig, type SignerConfig, type SignerPolicy } from "../../src/signer/config.js";
import { signerMain } from "../../src/signer/cli.js";
import { applyPolicy } from "../../src/signer/policy.js";
import { loadSigningKey, SignerStartupError, SigningService } from "../../src/signer/service.js";
import { accountJwt, createAccount, createUser, goAccountJwt, makeOperator, nowSec, pub, signJwt, userJwt, newJti } from "../helpers/fixtures.js";
import { tempDir, writeFile } from "../helpers/processes.js";

const dec = new TextDecoder();
const enc = new TextEncoder();

/** An operator whose signing key's seed is in a 0600 file, and a signer config around it. */
function setup(policy: Partial<SignerPolicy> = {}, mode = 0o600): { config: SignerConfig; op: ReturnType<typeof makeOperator>; seedFile: string } {
  const op = makeOperator();
  const dir = tempDir("signer-");
  const seedFile = writeFile(dir, "signer.nk", dec.decode(op.signer.getSeed()) + "\n");
  chmodSync(seedFile, mode);
  const base = defaultSignerConfig(join(dir, "state"));
  const config: SignerConfig = {
    ...base,
    subject: "sign",
    seedFile,
    operatorJwtPath: writeFile(dir, "op.jwt", op.operatorJwt),
    nats: { ...base.nats, servers: ["nats://127.0.0.1:1"] },
    policy: { ...base.policy, ...policy },
  };
  return { config, op, seedFile };
}

function stateFiles(config: SignerConfig): string[] {
  return ["pending", "approved", "rejected", "accounts"].flatMap((d) => readdirSync(join(config.stateDir, d)));
}

/**
 * A self-signed request shaped like nsc's: Go-encoded, -1 for every limit nobody set, plus extra
 * `nats` fields (Go writes `"authorization":{}` when the struct is empty).
 */
function nscRequest(a = createAccount(), limits: Record<string, unknown> = {}, nats: Record<string, unknown> = {}): string {
  if (Object.keys(nats).length === 0) return goAccountJwt(a, a, { name: "tenant", limits });
  return accountJwt(a, a, {
    name: "tenant",
    limits: { mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1, ...limits },
    nats: { authorization: {}, ...nats },
  });
}

describe("signer - seeds", () => {
  it("parses operator, account and user seeds to the key nkeys derives", () => {
    for (const kp of [nkeys.createOperator(), nkeys.createAccount(), nkeys.createUser()]) {
      const k = parseSeed(dec.decode(kp.getSeed()));
      assert.equal(k.publicKey, kp.getPublicKey());
    }
  });

  it("refuses a damaged seed without repeating it", () => {
    const seed = dec.decode(nkeys.createOperator().getSeed());
    const bad = seed.slice(0, 20) + (seed[20] === "A" ? "B" : "A") + seed.slice(21);
    assert.throws(() => parseSeed(bad), (e: Error) => !e.message.includes(bad.slice(2, 20)));
    assert.throws(() => parseSeed("SOXYZ"));
  });

  it("finds the seed in an nsc .nk file and in a creds-style armoured file", () => {
    const seed = dec.decode(nkeys.createOperator().getSeed());
    assert.equal(findSeed(`${seed}\n`), seed);
    assert.equal(findSeed(`-----BEGIN NKEY SEED-----\n${seed}\n------END NKEY SEED------\n`), seed);
    assert.equal(findSeed("nothing here"), undefined);
  });

  it("loads a 0600 seed file; refuses one others can read, and keys that are not operator signing keys", () => {
    const { config } = setup();
    assert.equal(loadSigningKey(config).kind, "operator");
    for (const mode of [0o644, 0o640, 0o604, 0o620]) {
      const s = setup({}, mode);
      assert.throws(() => loadSigningKey(s.config), (e: Error) => e instanceof SignerStartupError && /chmod 600/.test(e.message) && !e.message.includes("SO"));
    }
    const acct = setup();
    writeFile(join(acct.seedFile, ".."), "signer.nk", dec.decode(nkeys.createAccount().getSeed()));
    assert.throws(() => loadSigningKey(acct.config), /account seed/);
    const foreign = setup();
    writeFile(join(foreign.seedFile, ".."), "signer.nk", dec.decode(nkeys.createOperator().getSeed()));
    assert.throws(() => loadSigningKey(foreign.config), /is not a signing key of operator/);
    const identity = setup();
    writeFile(join(identity.seedFile, ".."), "signer.nk", dec.decode(identity.op.operator.getSeed()));
    // makeOperator lists only its signing key, so the identity key is refused either way.
    assert.throws(() => loadSigningKey(identity.config), SignerStartupError);
  });
});

describe("signer - policy", () => {
  const policy = defaultSignerConfig("/unused").policy;

  it("clamps what is over the caps and drops what is not allowed, saying what it did", () => {
    const a = createAccount();
    const req = decodeAccountJwt(
      nscRequest(a, { conn: 500, subs: 10, payload: -1 }, {
        exports: [{ name: "x", subject: "x.>", type: "stream" }],
        signing_keys: [pub(createAccount())],
        description: "mine",
      }),
    );
    const r = applyPolicy(req, { ...policy, limits: { ...policy.limits, conn: 20, subs: 100 } });
    assert.deepEqual(r.refused, []);
    const nats = r.claims["nats"] as Record<string, unknown>;
    const limits = nats["limits"] as Record<string, number>;
    assert.equal(limits["conn"], 20);
    assert.equal(limits["subs"], 10, "under the cap stays as asked");
    assert.equal(limits["payload"], 1024 * 1024);
    assert.equal(limits["disk_storage"], 0, "JetStream off by default");
    assert.equal(nats["exports"], undefined);
    assert.equal(nats["signing_keys"], undefined);
    assert.equal(nats["description"], "mine");
    assert.equal(r.claims["sub"], pub(a));
    assert.ok(r.applied.includes("conn 500 -> 20"));
    assert.ok(r.applied.includes("payload unlimited -> 1048576"));
    assert.ok(!r.applied.includes("wildcards true -> false"));
    assert.ok(applyPolicy(req, { ...policy, overLimit: "refuse", wildcards: false }).applied.includes("wildcards true -> false"));
    assert.ok(r.applied.includes("exports removed"));
    assert.ok(r.applied.includes("signing_keys removed"));
  });

  it("refuses instead when overlimit is refuse, listing every reason", () => {
    const req = decodeAccountJwt(
      nscRequest(createAccount(), { conn: 101, subs: 1000 }, { exports: [{ name: "x", subject: "x", type: "stream" }], authorization: { auth_users: ["U"] } }),
    );
    const r = applyPolicy(req, { ...policy, overLimit: "refuse" });
    assert.deepEqual(r.refused.filter((x) => x.includes("cap")), ["conn 101 is over the cap of 100"], "subs at the cap and unlimited (nsc's default) pass");
    assert.ok(r.refused.includes("exports are not allowed"));
    assert.ok(r.refused.includes("authorization may not be set by the account"));
    const tiered = decodeAccountJwt(nscRequest(createAccount(), { tiered_limits: { R1: { disk_storage: -1 } } }));
    assert.deepEqual(applyPolicy(tiered, { ...policy, overLimit: "refuse" }).refused, ["limits.tiered_limits may not be set by the account"]);
    assert.ok(applyPolicy(tiered, policy).applied.includes("limits.tiered_limits removed"));
  });

  it("a jwt.js-shaped request without limits gets the caps (absent means not asked)", () => {
    const a = createAccount();
    const req = decodeAccountJwt(signJwt({ jti: newJti(), iat: nowSec(), iss: pub(a), sub: pub(a), name: "js", nats: { type: "account", version: 2 } }, a));
    const r = applyPolicy(req, policy);
    assert.deepEqual(r.applied, []);
    assert.equal((r.claims["nats"] as { limits: Record<string, number> }).limits["conn"], 100);
  });

  it("allowed exports and imports are kept, and 0 means unlimited for per-stream limits", () => {
    const req = decodeAccountJwt(nscRequest(createAccount(), { exports: -1, max_ack_pending: 0 }, { exports: [{ name: "x", subject: "x", type: "stream" }] }));
    const r = applyPolicy(req, { ...policy, allowExports: true, limits: { ...policy.limits, exports: 5, max_ack_pending: 1000 } });
    const nats = r.claims["nats"] as { exports: unknown[]; limits: Record<string, number> };
    assert.equal(nats.exports.length, 1);
    assert.equal(nats.limits["exports"], 5);
    assert.equal(nats.limits["max_ack_pending"], 1000);
  });
});

describe("signer - requests", () => {
  it("signs a self-signed request at once when new accounts are signed: operator-signed, valid, same sub", async () => {
    const { config, op } = setup({ newAccounts: "sign" });
    const svc = new SigningService({ config, key: loadSigningKey(config), log: silentLogger });
    const a = createAccount();
    const answer = await svc.handle(enc.encode(nscRequest(a, { conn: 1000 })));
    assert.equal(answer.kind, "jwt");
    const d = decodeAccountJwt((answer as { jwt: string }).jwt);
    assert.equal(d.iss, pub(op.signer));
    assert.equal(d.sub, pub(a));
    assert.equal((d.claims.nats?.limits as Record<string, number>)["conn"], 100);
    assert.deepEqual(validateAccountClaims(d, nowSec()).filter((i) => i.blocking), []);
    assert.deepEqual(readdirSync(join(config.stateDir, "accounts")), [`${pub(a)}.json`]);
  });

  it("bad requests get an error answer and change nothing", async () => {
    const { config, op } = setup({ newAccounts: "sign" });
    const svc = new SigningService({ config, key: loadSigningKey(config), log: silentLogger, systemAccount: pub(op.sys) });
    const a = createAccount();
    const b = createAccount();
    const bad: Array<[string, string | Uint8Array]> = [
      ["garbage", "garbage"],
      ["empty", ""],
      ["binary", new Uint8Array([0xff, 0, 1, 2])],
      ["user JWT", userJwt(createUser(), a)],
      ["operator JWT", op.operatorJwt],
      ["operator-signed account", accountJwt(a, op.signer)],
      ["signed by another account", accountJwt(a, b)],
      ["expired", accountJwt(a, a, { exp: nowSec() - 5 })],
      ["the system account", accountJwt(op.sys, op.sys)],
      ["huge", "x".repeat(config.maxRequestBytes + 1)],
      ["huge JWT", accountJwt(a, a, { name: "n".repeat(config.maxRequestBytes) })],
    ];
    for (const [what, payload] of bad) {
      const r = await svc.handle(typeof payload === "string" ? enc.encode(payload) : payload);
      assert.equal(r.kind, "error", what);
    }
    assert.deepEqual(stateFiles(config), []);
  });

  it("queues new accounts: one entry per distinct request, a rejected one stays refused", async () => {
    const { config } = setup();
    const svc = new SigningService({ config, key: loadSigningKey(config), log: silentLogger });
    const req = nscRequest();
    const first = await svc.handle(enc.encode(req));
    assert.equal(first.kind, "text");
    const id = /request ([A-Z2-7]{12})/.exec((first as { text: string }).text)![1]!;
    assert.deepEqual(await svc.handle(enc.encode(req)), first);
    assert.equal((await svc.state.listPending()).length, 1);
    const p = (await svc.state.pending(id))!;
    await svc.state.decide({ ...p, decision: "rejected", decided: Date.now(), reason: "no" });
    const again = await svc.handle(enc.encode(req));
    assert.equal(again.kind, "error");
    assert.match((again as { text: string }).text, /was rejected: no/);
  });

  it("a request that could not be signed valid is refused at once, not queued", async () => {
    const { config } = setup({ allowExports: true });
    const svc = new SigningService({ config, key: loadSigningKey(config), log: silentLogger });
    // Exports are allowed but the exports cap is 0: the signed account would fail validation.
    const r = await svc.handle(enc.encode(nscRequest(createAccount(), {}, { exports: [{ name: "x", subject: "x", type: "stream" }] })));
    assert.equal(r.kind, "error");
    assert.match((r as { text: string }).text, /would not be valid: the account contains more exports than allowed/);
    assert.deepEqual(stateFiles(config), []);
  });

  it("refuses when the approval queue is full", async () => {
    const { config } = setup({ maxPending: 2 });
    const svc = new SigningService({ config, key: loadSigningKey(config), log: silentLogger });
    assert.equal((await svc.handle(enc.encode(nscRequest()))).kind, "text");
    assert.equal((await svc.handle(enc.encode(nscRequest()))).kind, "text");
    const r = await svc.handle(enc.encode(nscRequest()));
    assert.equal(r.kind, "error");
    assert.match((r as { text: string }).text, /queue is full/);
  });
});

describe("signer - configuration file and command line", () => {
  it("reads the file: NATS section, policy with sizes and durations, defaults for the rest, warnings for unknown keys", () => {
    const dir = tempDir("signer-conf-");
    const file = writeFile(
      dir,
      "signer.conf",
      `subject: nas.sign
seedfile: ./signer.nk
nats { servers: [nats://127.0.0.1:4222], usercredentials: sys.creds }
policy { newaccounts: sign, overlimit: refuse, exports: true, limits { conn: 5, payload: 64KB, disk_storage: 1GB } }
typo: 1
`,
    );
    const { config, warnings } = loadSignerConfig(file);
    assert.equal(config.subject, "nas.sign");
    assert.equal(config.seedFile, join(dir, "signer.nk"));
    assert.equal(config.stateDir, join(dir, "signer-state"));
    assert.equal(config.nats.userCredentials, join(dir, "sys.creds"));
    assert.equal(config.policy.newAccounts, "sign");
    assert.equal(config.policy.overLimit, "refuse");
    assert.equal(config.policy.allowExports, true);
    assert.equal(config.policy.allowImports, false);
    assert.equal(config.policy.limits.conn, 5);
    assert.equal(config.policy.limits.payload, 64 * 1024);
    assert.equal(config.policy.limits.disk_storage, 1024 ** 3);
    assert.equal(config.policy.limits.subs, 1000);
    assert.deepEqual(warnings, ['unknown configuration key "typo" (signer.conf line 5)']);
  });

  it("refuses a file without subject, seed file or NATS servers, and bad policy values", () => {
    const dir = tempDir("signer-conf-");
    const cases: Array<[string, RegExp]> = [
      ["seedfile: x\nnats { servers: [nats://a:1] }", /subject: .* is required/],
      ["subject: a.*\nseedfile: x\nnats { servers: [nats://a:1] }", /not a NATS subject without wildcards/],
      ["subject: a\nnats { servers: [nats://a:1] }", /seedfile: .* is required/],
      ["subject: a\nseedfile: x", /nats\.servers/],
      ["subject: a\nseedfile: x\nnats { servers: [nats://a:1] }\npolicy { overlimit: maybe }", /policy\.overlimit: expected one of clamp, refuse/],
      ["subject: a\nseedfile: x\nnats { servers: [nats://a:1] }\npolicy { limits { conn: -2 } }", /policy\.limits\.conn: expected an integer >= -1/],
    ];
    for (const [text, re] of cases) assert.throws(() => loadSignerConfig(writeFile(dir, "c.conf", text)), re, text);
  });

  it("signer -h prints the usage; bad command lines exit 2, a bad file exits 1", async () => {
    const out: string[] = [];
    const io = { stdout: (s: string) => out.push(s), stderr: (s: string) => out.push(s) };
    assert.equal(await signerMain(["-h"], io), 0);
    assert.match(out.join(""), /signer approve <id>/);
    for (const argv of [["approve"], ["list"], ["frobnicate", "-c", "x"], ["run", "-x", "1"], ["list", "-c", "x", "-reason", "r"]]) {
      out.length = 0;
      assert.equal(await signerMain(argv, io), 2, argv.join(" "));
      assert.match(out.join(""), /Usage:/);
    }
    assert.equal(await signerMain(["list", "-c", join(tempDir(), "missing.conf")], io), 1);
  });
});
