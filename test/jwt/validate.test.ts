/**
 * Tests for Go-equivalent account/activation validation: a valid baseline stays clean, and
 * each broken variant yields the Go issue text with the right blocking/time-check flags.
 */
import { describe, it, before } from "node:test";
import assert from "node:assert/strict";
import {
  createAccount,
  createCurve,
  createOperator,
  createUser,
  encodeAccount,
  encodeActivation,
  newScopedSigner,
} from "@nats-io/jwt";
import type { Account, KeyPair } from "@nats-io/jwt";
import { decodeAccountJwt, decodeActivationJwt } from "../../src/jwt/decode.js";
import type { AccountClaims, DecodedJwt } from "../../src/jwt/claims.js";
import { activationHash, validateAccountClaims, validateActivationClaims } from "../../src/jwt/validate.js";
import type { ValidationIssue } from "../../src/jwt/validate.js";
import { hasWildcards, isValidLiteralSubject, isValidSubject, subjectContains } from "../../src/jwt/subject.js";
import { UNLIMITED } from "../helpers/fixtures.js";


const HOUR = 3600;

function now(): number {
  return Math.floor(Date.now() / 1000);
}

function blocking(issues: ValidationIssue[]): string[] {
  return issues.filter((i) => i.blocking).map((i) => i.description);
}

function signV1(kp: KeyPair, payload: unknown): string {
  const h = Buffer.from(JSON.stringify({ typ: "JWT", alg: "ed25519" })).toString("base64url");
  const p = Buffer.from(JSON.stringify(payload)).toString("base64url");
  const sig = Buffer.from(kp.sign(Buffer.from(p))).toString("base64url");
  return `${h}.${p}.${sig}`;
}

describe("validate - account claims", () => {
  const operator = createOperator();
  const importer = createAccount();
  const exporter = createAccount();
  const stranger = createAccount();
  const exporterKey = exporter.getPublicKey();

  /** Importer account JWT signed by the operator, with unlimited limits unless overridden. */
  async function account(nats: Partial<Account>, opts: { exp?: number; nbf?: number } = {}) {
    const token = await encodeAccount("importer", importer, { limits: UNLIMITED, ...nats }, { signer: operator, ...opts });
    return decodeAccountJwt(token);
  }

  async function token(
    kind: "stream" | "service",
    subject: string,
    opts: { issuer?: KeyPair; to?: KeyPair; exp?: number; nbf?: number } = {},
  ): Promise<string> {
    const { issuer = exporter, to = importer, ...dates } = opts;
    return encodeActivation("act", to, issuer, kind, { subject }, dates);
  }

  let streamToken = "";
  let serviceToken = "";
  before(async () => {
    streamToken = await token("stream", "prices.>");
    serviceToken = await token("service", "svc.*");
  });

  it("finds nothing wrong with a fully featured valid account", async () => {
    const d = await account({
      imports: [
        { name: "prices", type: "stream", subject: "prices.eu", account: exporterKey, token: streamToken },
        { name: "svc", type: "service", subject: "svc.a", account: exporterKey, token: serviceToken },
        { name: "svc2", type: "service", subject: "other.b", account: stranger.getPublicKey(), local_subject: "local.b" },
        { name: "pub", type: "stream", subject: "public.*", account: exporterKey, local_subject: "mine.$1" },
      ],
      exports: [
        { name: "s", type: "stream", subject: "feed.>" },
        { name: "q", type: "service", subject: "help.*.ask", response_type: "Stream", account_token_position: 2 },
        { name: "l", type: "service", subject: "lat", service_latency: { sampling: "headers", results: "lat.results" } },
        { name: "i", type: "service", subject: "info", info_url: "https://example.com/docs", description: "x" },
      ],
      signing_keys: [createAccount().getPublicKey(), newScopedSigner(createAccount(), "admin", {})],
      default_permissions: { pub: { allow: ["a.>"] }, sub: { allow: ["b.*", "c q"] } },
      authorization: {
        auth_users: [createUser().getPublicKey()],
        allowed_accounts: ["*"],
        xkey: createCurve().getPublicKey(),
      },
      ...({
        mappings: { "m.a": [{ subject: "m.b", weight: 40 }, { subject: "m.c", weight: 60 }] },
        trace: { dest: "trace.here", sampling: 50 },
        cluster_traffic: "owner",
      } as Partial<Account>),
    });
    assert.deepEqual(validateAccountClaims(d, now()), []);
  });

  it("finds nothing wrong with an account that has no limits and no imports/exports", async () => {
    const d = decodeAccountJwt(await encodeAccount("bare", importer, {}, { signer: operator }));
    assert.deepEqual(validateAccountClaims(d, now()), []);
  });

  it("accepts a v1 account with an import", () => {
    const d = decodeAccountJwt(
      signV1(operator, {
        jti: "J",
        iat: now(),
        iss: operator.getPublicKey(),
        sub: importer.getPublicKey(),
        type: "account",
        nats: {
          limits: UNLIMITED,
          imports: [{ type: "stream", subject: "prices.eu", account: exporterKey, token: streamToken }],
          // v2-only fields are dropped by Go's v1 migration, so they cannot fail validation.
          mappings: { "bad..subject": [] },
        },
      }),
    );
    assert.equal(d.version, 1);
    assert.deepEqual(validateAccountClaims(d, now()), []);
  });

  it("ignores an expired activation token like Go, unless asked", async () => {
    const expired = await token("stream", "prices.>", { exp: now() - HOUR });
    const d = await account({
      imports: [{ name: "p", type: "stream", subject: "prices.eu", account: exporterKey, token: expired }],
    });
    assert.deepEqual(validateAccountClaims(d, now()), []);
    const strict = validateAccountClaims(d, now(), { checkActivationTimes: true });
    assert.deepEqual(strict, [
      { description: 'activation token for import "prices.eu" is expired', blocking: false, timeCheck: true },
    ]);
  });

  it("reports expiry and not-before as time checks", async () => {
    const expired = await account({}, { exp: now() - HOUR });
    assert.deepEqual(validateAccountClaims(expired, now()), [
      { description: "claim is expired", blocking: false, timeCheck: true },
    ]);
    const early = await account({}, { nbf: now() + HOUR });
    assert.deepEqual(validateAccountClaims(early, now()), [
      { description: "claim is not yet valid", blocking: false, timeCheck: true },
    ]);
    assert.deepEqual(validateAccountClaims(early, now() + 2 * HOUR), []);
  });

  it("lists warnings as non-blocking", async () => {
    const d = await account({
      imports: [{ name: "p", type: "stream", subject: "prices.eu", account: exporterKey, to: "local" }],
    });
    assert.deepEqual(validateAccountClaims(d, now()), [
      { description: "the field to has been deprecated (use LocalSubject instead)", blocking: false, timeCheck: false },
    ]);
    const selfSigned = decodeAccountJwt(await encodeAccount("self", importer, { limits: UNLIMITED }));
    assert.deepEqual(validateAccountClaims(selfSigned, now()), [
      { description: "self-signed account JWTs shouldn't contain operator limits", blocking: false, timeCheck: false },
    ]);
  });

  type Case = readonly [name: string, build: () => Promise<DecodedJwt<AccountClaims>>, expected: string | RegExp];
  const imp = (extra: Record<string, unknown>) => ({ name: "i", type: "stream", subject: "prices.eu", account: exporterKey, ...extra });

  const cases: Case[] = [
    ["bad import token", () => account({ imports: [imp({ token: "not.a.jwt" })] as never }), 'import "prices.eu" contains an invalid activation token'],
    [
      "token for another account",
      async () => account({ imports: [imp({ token: await token("stream", "prices.>", { to: stranger }) })] as never }),
      'activation token doesn\'t match account it is being included in, "prices.eu"',
    ],
    [
      "token issued by someone other than the exporter",
      async () => account({ imports: [imp({ token: await token("stream", "prices.>", { issuer: stranger }) })] as never }),
      'activation token doesn\'t match account for import "prices.eu"',
    ],
    [
      "token of the wrong import type",
      async () => account({ imports: [imp({ token: serviceToken })] as never }),
      "mismatch between token import type service and type of import stream",
    ],
    [
      "import subject not contained in the token subject",
      async () => account({ imports: [imp({ subject: "stocks.us", token: streamToken })] as never }),
      'activation token import subject "prices.>" doesn\'t match import "stocks.us"',
    ],
    [
      "too many imports",
      () => account({ limits: { ...UNLIMITED, imports: 1 }, imports: [imp({}), imp({ subject: "b" })] as never }),
      "the account contains more imports than allowed by the operator",
    ],
    [
      "limits absent with an import",
      () => account({ limits: undefined, imports: [imp({})] as never }),
      "the account contains more imports than allowed by the operator",
    ],
    [
      "too many exports",
      () => account({ limits: { ...UNLIMITED, exports: 0 }, exports: [{ name: "e", type: "stream", subject: "x" }] }),
      "the account contains more exports than allowed by the operator",
    ],
    [
      "wildcard export not allowed",
      () =>
        account({
          limits: { ...UNLIMITED, exports: 5, wildcards: false },
          exports: [{ name: "e", type: "stream", subject: "feed.*" }],
        }),
      "the account contains wildcard exports that are not allowed by the operator",
    ],
    ["bad signing key", () => account({ signing_keys: ["AXYZ"] }), '"AXYZ" is not a valid account signing key'],
    [
      "operator key as signing key",
      () => account({ signing_keys: [operator.getPublicKey()] }),
      `"${operator.getPublicKey()}" is not a valid account signing key`,
    ],
    [
      "scoped signing key that is a user key",
      async () => {
        const scope = newScopedSigner(createAccount(), "r", {});
        const userKey = createUser().getPublicKey();
        return account({ signing_keys: [{ ...scope, key: userKey }] });
      },
      / is not an account public key$/,
    ],
    ["null import", () => account({ imports: [null] as never }), "null import is not allowed"],
    ["import without type", () => account({ imports: [imp({ type: undefined })] as never }), 'invalid import type: "unknown"'],
    ["import without account", () => account({ imports: [imp({ account: "" })] as never }), "account to import from is not specified"],
    ["import with empty subject", () => account({ imports: [imp({ subject: "" })] as never }), "subject cannot be empty"],
    ["import subject with ..", () => account({ imports: [imp({ subject: "a..b" })] as never }), 'subject "a..b" cannot contain consecutive `.`'],
    ["import subject with a space", () => account({ imports: [imp({ subject: "a b" })] as never }), 'subject "a b" cannot have spaces'],
    ["local_subject with to", () => account({ imports: [imp({ local_subject: "l", to: "t" })] as never }), "Local Subject replaces To"],
    [
      "local_subject with a bad reference",
      () => account({ imports: [imp({ subject: "a.*", local_subject: "b.$2" })] as never }),
      'Reference $2 in "b.$2" reference * in "a.*" that do not exist',
    ],
    [
      "local_subject not ending in > like the subject",
      () => account({ imports: [imp({ subject: "a.>", local_subject: "b.c" })] as never }),
      "both, renaming subject and subject, need to end or not end in >",
    ],
    ["share on a stream", () => account({ imports: [imp({ share: true })] as never }), 'sharing information (for latency tracking) is only valid for services: "prices.eu"'],
    ["allow_trace on a service import", () => account({ imports: [imp({ type: "service", allow_trace: true })] as never }), "AllowTrace only valid for stream import"],
    [
      "overlapping service imports from one account",
      () => account({ imports: [imp({ type: "service", subject: "q.>" }), imp({ type: "service", subject: "q.a" })] as never }),
      `overlapping subject namespace for "q.a" and "q.>" in same account "${exporterKey}"`,
    ],
    [
      "duplicate stream exports",
      () => account({ exports: [{ name: "a", type: "stream", subject: "f" }, { name: "b", type: "stream", subject: "f" }] }),
      'stream export subject "f" already exports "f"',
    ],
    [
      "service export contained in another",
      () => account({ exports: [{ name: "a", type: "service", subject: "s.>" }, { name: "b", type: "service", subject: "s.x" }] }),
      'service export subject "s.>" already exports "s.x"',
    ],
    ["export without type", () => account({ exports: [{ name: "a", subject: "x" } as never] }), 'invalid export type: "unknown"'],
    ["null export", () => account({ exports: [null as never] }), "null export is not allowed"],
    ["bad service response type", () => account({ exports: [{ name: "a", type: "service", subject: "x", response_type: "Many" as never }] }), 'invalid response type for service: "Many"'],
    ["response type on a stream", () => account({ exports: [{ name: "a", type: "stream", subject: "x", response_type: "Stream" }] }), 'invalid response type for stream: "Stream"'],
    ["latency on a stream", () => account({ exports: [{ name: "a", type: "stream", subject: "x", service_latency: { sampling: "headers", results: "r" } }] }), "latency tracking only permitted for services"],
    ["latency sampling over 100", () => account({ exports: [{ name: "a", type: "service", subject: "x", service_latency: { sampling: 101 as never, results: "r" } }] }), "sampling percentage needs to be between 1-100"],
    ["latency results with a wildcard", () => account({ exports: [{ name: "a", type: "service", subject: "x", service_latency: { sampling: "headers", results: "r.*" } }] }), "results subject can not contain wildcards"],
    ["negative response threshold", () => account({ exports: [{ name: "a", type: "service", subject: "x", response_threshold: -1 }] }), "negative response threshold is invalid"],
    ["account_token_position on a literal subject", () => account({ exports: [{ name: "a", type: "stream", subject: "a.b", account_token_position: 1 }] }), "Account Token Position can only be used with wildcard subjects: a.b"],
    ["account_token_position past the end", () => account({ exports: [{ name: "a", type: "stream", subject: "a.*", account_token_position: 3 }] }), "Account Token Position 3 exceeds length of subject 'a.*'"],
    ["account_token_position not on a *", () => account({ exports: [{ name: "a", type: "stream", subject: "a.*", account_token_position: 1 }] }), "Account Token Position 1 matches 'a' but must match a * in: a.*"],
    ["export info_url without scheme", () => account({ exports: [{ name: "a", type: "stream", subject: "x", info_url: "example.com" }] }), "error parsing info url: no hostname or scheme"],
    ["account description too long", () => account({ description: "x".repeat(8 * 1024 + 1) }), "Description is too long"],
    ["mapping weights over 100%", () => account({ mappings: { a: [{ subject: "b", weight: 60 }, { subject: "c", weight: 50 }] } } as never), 'Mapping "a" exceeds 100% among all of it\'s weighted to mappings'],
    ["mapping weight over 100", () => account({ mappings: { a: [{ subject: "b", weight: 150 }] } } as never), 'Mapping "a" has a weight 150 that exceeds 100'],
    ["mapping per-cluster weights over 100%", () => account({ mappings: { a: [{ subject: "b", cluster: "c1" }, { subject: "c", weight: 1, cluster: "c1" }] } } as never), 'Mapping "a" in cluster "c1" exceeds 100% among all of it\'s weighted to mappings'],
    ["mapping to an empty subject", () => account({ mappings: { a: [{ weight: 10 }] } } as never), "subject cannot be empty"],
    ["auth user that is not a user key", () => account({ authorization: { auth_users: [exporterKey] } }), `AuthUser "${exporterKey}" is not a valid user public key`],
    ["allowed accounts without auth users", () => account({ authorization: { allowed_accounts: [exporterKey] } }), "External authorization cannot have accounts without users specified"],
    ["allowed accounts mixing * and keys", () => account({ authorization: { auth_users: [createUser().getPublicKey()], allowed_accounts: ["*", exporterKey] } }), 'AllowedAccounts can only be a list of accounts or "*"'],
    ["allowed account that is not an account key", () => account({ authorization: { auth_users: [createUser().getPublicKey()], allowed_accounts: ["nope"] } }), 'Account "nope" is not a valid account public key'],
    ["xkey that is not a curve key", () => account({ authorization: { auth_users: [createUser().getPublicKey()], xkey: exporterKey } }), `XKey "${exporterKey}" is not a valid public xkey`],
    ["trace destination with a wildcard", () => account({ trace: { dest: "t.>" } } as never), 'the account Trace.Destination subject "t.>" is not a valid publish subject'],
    ["trace destination empty", () => account({ trace: { sampling: 10 } } as never), "the account Trace.Destination subject cannot be empty"],
    ["trace sampling out of range", () => account({ trace: { dest: "t", sampling: 101 } } as never), "the account Trace.Sampling value '101' is not valid, should be in the range [1..100]"],
    ["unknown cluster traffic", () => account({ cluster_traffic: "everyone" } as never), 'unknown cluster traffic option: "everyone"'],
    ["queue group in a pub permission", () => account({ default_permissions: { pub: { allow: ["a q"] } } }), 'Permission Subject "a q" is not allowed to contain queue'],
    ["permission with too many spaces", () => account({ default_permissions: { sub: { deny: ["a b c"] } } }), 'Permission Subject "a b c" contains too many spaces'],
    ["blank JetStream tier", () => account({ limits: { ...UNLIMITED, tiered_limits: { "": { mem_storage: -1 } } } as never }), 'Tiered JetStream Limits can not contain a blank "" tier name'],
  ];

  for (const [name, build, expected] of cases) {
    it(`blocks: ${name}`, async () => {
      const issues = validateAccountClaims(await build(), now());
      const errors = blocking(issues);
      const hit =
        typeof expected === "string" ? errors.includes(expected) : errors.some((e) => expected.test(e));
      assert.ok(hit, `expected ${String(expected)} among ${JSON.stringify(issues, null, 2)}`);
      for (const i of issues) assert.equal(i.blocking && i.timeCheck, false);
    });
  }

  it("reports Go's duplicated import-limit issue exactly", async () => {
    const d = await account({ limits: { ...UNLIMITED, imports: 0 }, imports: [imp({})] as never });
    assert.deepEqual(blocking(validateAccountClaims(d, now())), [
      "the account contains more imports than allowed by the operator",
      "the account contains more imports than allowed by the operator",
    ]);
  });
});

describe("validate - activation claims", () => {
  const importer = createAccount();
  const exporter = createAccount();

  it("accepts a valid activation and reports time checks", async () => {
    const ok = decodeActivationJwt(await encodeActivation("a", importer, exporter, "stream", { subject: "x.>" }));
    assert.deepEqual(validateActivationClaims(ok, now()), []);
    const old = decodeActivationJwt(
      await encodeActivation("a", importer, exporter, "service", { subject: "x" }, { exp: now() - HOUR }),
    );
    assert.deepEqual(validateActivationClaims(old, now()), [
      { description: "claim is expired", blocking: false, timeCheck: true },
    ]);
  });

  it("reads v1 activations (import type in nats.type, issuer_account at the top)", () => {
    const d = decodeActivationJwt(
      signV1(exporter, {
        iss: exporter.getPublicKey(),
        sub: importer.getPublicKey(),
        type: "activation",
        issuer_account: "bogus",
        nats: { subject: "x", type: "stream" },
      }),
    );
    assert.deepEqual(blocking(validateActivationClaims(d, now())), ["account_id is not an account public key"]);
  });

  it("refuses a missing import subject", async () => {
    const d = decodeActivationJwt(await encodeActivation("a", importer, exporter, "stream", { subject: "" }));
    assert.deepEqual(blocking(validateActivationClaims(d, now())), ["subject cannot be empty"]);
  });
});

describe("validate - activationHash", () => {
  it("hashes issuer.subject.cleaned-subject as unpadded base32", () => {
    // Reference computed independently: base64.b32encode(sha256(b"ABC.DEF.foo.bar")) in Python.
    const expected = "IAP4NW233IMUTWLSZOAKNHWF7R7BKQ7M3KB5G2NMJKOTY5GXGAJA";
    assert.equal(activationHash("ABC", "DEF", "foo.bar"), expected);
    assert.equal(activationHash("ABC", "DEF", "foo.bar.*"), expected);
    assert.equal(activationHash("ABC", "DEF", "foo.bar.>"), expected);
    assert.equal(activationHash("ABC", "DEF", "foo.bar.*.baz"), expected);
    assert.equal(activationHash("ABC", "DEF", "*.x"), activationHash("ABC", "DEF", "_"));
    assert.equal(activationHash("ABC", "DEF", ">"), activationHash("ABC", "DEF", "_"));
    assert.doesNotMatch(expected, /=/);
  });
});

describe("validate - subjects", () => {
  it("isValidSubject / isValidLiteralSubject follow nats-server", () => {
    for (const sub of ["a", "a.b", "a.*", "a.>", "*", ">", "a*b.c", "$SYS.REQ.>"]) assert.equal(isValidSubject(sub), true, sub);
    for (const sub of ["", ".a", "a.", "a..b", "a b", "a\tb", "a.>.b", ">.a"]) assert.equal(isValidSubject(sub), false, sub);
    for (const sub of ["a", "a.b", "a*b", "$SYS.ACCOUNT.x.CLAIMS.UPDATE"]) assert.equal(isValidLiteralSubject(sub), true, sub);
    for (const sub of ["a.*", "a.>", "*", ">", "a..b"]) assert.equal(isValidLiteralSubject(sub), false, sub);
  });

  it("subjectContains follows Go's IsContainedIn", () => {
    assert.equal(subjectContains("foo.>", "foo.bar.baz"), true);
    assert.equal(subjectContains("foo.*", "foo.bar"), true);
    assert.equal(subjectContains("foo.*", "foo.bar.baz"), false);
    assert.equal(subjectContains("foo.bar", "foo.*"), false);
    assert.equal(subjectContains("foo.>", "foo"), false);
    assert.equal(subjectContains(">", "anything.at.all"), true);
    assert.equal(subjectContains("foo", "foo"), true);
    // Go's token test lets `>` pass a `*` in the same position.
    assert.equal(subjectContains("foo.*", "foo.>"), true);
  });

  it("hasWildcards follows Go", () => {
    for (const sub of ["*", ">", "a.*", "a.>", "*.a", "a.*.b"]) assert.equal(hasWildcards(sub), true, sub);
    for (const sub of ["a", "a*", "a.b*", "a.>.b"]) assert.equal(hasWildcards(sub), false, sub);
  });
});
