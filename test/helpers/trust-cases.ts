/**
 * The account JWT uploads every write path must refuse (or accept), as data: each write path's
 * test loops over these tables, so HTTP, NATS update subjects and pack merges agree case by case.
 * JWTs are Go-shaped (what nsc sends) unless a case says jwt.js.
 */
import { ERROR_TABLE, type ErrorCode } from "../../src/errors.js";
import {
  accountJwt,
  createAccount,
  createOperator,
  createUser,
  goAccountJwt,
  goJti,
  makeOperator,
  newJti,
  nowSec,
  signJwt,
  type KeyPair,
  type OperatorSetup,
} from "./fixtures.js";

/** The identities the cases are built from; one world per test file is enough. */
export interface TrustWorld {
  /** The operator the server trusts in "normal" mode (identity key and `op.signer` may sign). */
  readonly op: OperatorSetup;
  /**
   * A signing key that `previousOperatorJwt` listed and `op.operatorJwt` no longer does. A path
   * under test should start with the previous operator JWT, see this key accepted, then reload.
   */
  readonly removedSigner: KeyPair;
  readonly previousOperatorJwt: string;
  /** The operator trusted in "strict" mode: strict_signing_key_usage, so only `strict.signer` signs. */
  readonly strict: OperatorSetup;
  /** An operator (and its signing key) nobody trusts. */
  readonly foreign: OperatorSetup;
  /** Unix seconds when the world was made: a fixed base for iat values cases must share. */
  readonly now: number;
}

function payloadOf(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString("utf8")) as Record<string, unknown>;
}

export function makeTrustWorld(): TrustWorld {
  const removedSigner = createOperator();
  const op = makeOperator({ extraSigningKeys: [removedSigner.getPublicKey()] });
  const previousOperatorJwt = op.operatorJwt;
  const claims = payloadOf(previousOperatorJwt);
  const nats = claims["nats"] as Record<string, unknown>;
  const reissued = signJwt(
    {
      ...claims,
      jti: newJti(),
      iat: nowSec(),
      nats: { ...nats, signing_keys: [op.signer.getPublicKey()] },
    },
    op.operator,
  );
  return {
    op: { ...op, operatorJwt: reissued },
    removedSigner,
    previousOperatorJwt,
    strict: makeOperator({ strict: true }),
    foreign: makeOperator(),
    now: nowSec(),
  };
}

/** Which operator the server must trust for a case. */
export type TrustMode = "normal" | "strict";

export interface UploadCase {
  readonly name: string;
  readonly mode: TrustMode;
  /** JWTs for the same account to store (each accepted) before the upload under test. */
  readonly before?: (w: TrustWorld, account: KeyPair) => string[];
  /** The upload under test. */
  readonly jwt: (w: TrustWorld, account: KeyPair) => string;
  /** The key the upload is addressed to (URL path, subject token); default the account's. */
  readonly address?: (w: TrustWorld, account: KeyPair) => string;
}

export interface RefusedCase extends UploadCase {
  /** Why the server refuses it; `refusal(code)` gives the HTTP status and phrase. */
  readonly code: ErrorCode;
}

export function signer(w: TrustWorld, mode: TrustMode): KeyPair {
  return mode === "strict" ? w.strict.signer : w.op.signer;
}

/** The same claims as a valid upload, signed by `key`, but claiming `iss` (a forgery). */
function forged(account: KeyPair, claimedIssuer: KeyPair, key: KeyPair): string {
  const honest = goAccountJwt(account, claimedIssuer);
  const claims = payloadOf(honest);
  return signJwt(claims, key);
}

const HOUR = 3600;

export const REFUSED_CASES: readonly RefusedCase[] = [
  {
    name: "signed by a foreign operator's signing key",
    mode: "normal",
    jwt: (w, a) => goAccountJwt(a, w.foreign.signer),
    code: "UNTRUSTED_ISSUER",
  },
  {
    name: "signed by a foreign operator's identity key",
    mode: "normal",
    jwt: (w, a) => goAccountJwt(a, w.foreign.operator),
    code: "UNTRUSTED_ISSUER",
  },
  {
    name: "signed by a signing key the operator removed",
    mode: "normal",
    jwt: (w, a) => goAccountJwt(a, w.removedSigner),
    code: "UNTRUSTED_ISSUER",
  },
  {
    name: "self-signed by the account key",
    mode: "normal",
    jwt: (_w, a) => goAccountJwt(a, a),
    code: "SIGNING_NOT_ENABLED",
  },
  {
    name: "signed by another account's key",
    mode: "normal",
    jwt: (_w, a) => goAccountJwt(a, createAccount()),
    code: "ISSUER_NOT_OPERATOR",
  },
  {
    name: "signed by a user key",
    mode: "normal",
    jwt: (_w, a) => goAccountJwt(a, createUser()),
    code: "BAD_JWT",
  },
  {
    name: "claims a trusted issuer but is signed by another key (forgery)",
    mode: "normal",
    jwt: (w, a) => forged(a, w.op.signer, w.foreign.signer),
    code: "BAD_JWT",
  },
  {
    name: "payload changed after signing",
    mode: "normal",
    jwt: (w, a) => {
      const [h, , s] = goAccountJwt(a, w.op.signer).split(".");
      const claims = payloadOf(goAccountJwt(a, w.op.signer, { limits: { conn: 1 } }));
      return `${h}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${s}`;
    },
    code: "BAD_JWT",
  },
  {
    name: "expired",
    mode: "normal",
    jwt: (w, a) => goAccountJwt(a, w.op.signer, { iat: nowSec() - 2 * HOUR, exp: nowSec() - HOUR }),
    code: "VALIDATION_FAILED",
  },
  {
    name: "not yet valid",
    mode: "normal",
    jwt: (w, a) => goAccountJwt(a, w.op.signer, { nbf: nowSec() + HOUR }),
    code: "VALIDATION_FAILED",
  },
  {
    name: "older iat than the stored JWT",
    mode: "normal",
    before: (w, a) => [goAccountJwt(a, w.op.signer, { iat: w.now })],
    jwt: (w, a) => goAccountJwt(a, w.op.signer, { iat: w.now - 60 }),
    code: "OLDER_JWT",
  },
  {
    name: "addressed to another account's key",
    mode: "normal",
    jwt: (w, a) => goAccountJwt(a, w.op.signer),
    address: () => createAccount().getPublicKey(),
    code: "KEY_MISMATCH",
  },
  {
    name: "strict operator: signed by the operator identity key",
    mode: "strict",
    jwt: (w, a) => goAccountJwt(a, w.strict.operator),
    code: "UNTRUSTED_ISSUER",
  },
  {
    name: "strict operator: signed by a foreign operator's signing key",
    mode: "strict",
    jwt: (w, a) => goAccountJwt(a, w.foreign.signer),
    code: "UNTRUSTED_ISSUER",
  },
];

export const ACCEPTED_CASES: readonly UploadCase[] = [
  { name: "signed by the operator's signing key", mode: "normal", jwt: (w, a) => goAccountJwt(a, w.op.signer) },
  { name: "signed by the operator identity key (not strict)", mode: "normal", jwt: (w, a) => goAccountJwt(a, w.op.operator) },
  { name: "strict operator: signed by its signing key", mode: "strict", jwt: (w, a) => goAccountJwt(a, w.strict.signer) },
  {
    name: "newer iat replaces",
    mode: "normal",
    before: (w, a) => [goAccountJwt(a, w.op.signer, { iat: w.now - 60 })],
    jwt: (w, a) => goAccountJwt(a, w.op.signer, { iat: w.now }),
  },
  {
    name: "equal iat and equal jti (two nsc edits in one second) replaces",
    mode: "normal",
    before: (w, a) => [goAccountJwt(a, w.op.signer, { iat: w.now - 5, limits: { conn: 5 } })],
    jwt: (w, a) => {
      const v2 = goAccountJwt(a, w.op.signer, { iat: w.now - 5, limits: { conn: 1 } });
      const std = { iat: w.now - 5, iss: w.op.signer.getPublicKey(), name: "ACCOUNT", sub: a.getPublicKey() };
      if (payloadOf(v2)["jti"] !== goJti(std)) throw new Error("the fixture lost Go's jti");
      return v2;
    },
  },
  {
    name: "jwt.js-shaped: signed by the operator's signing key",
    mode: "normal",
    jwt: (w, a) => accountJwt(a, w.op.signer),
  },
  {
    name: "jwt.js-shaped: equal iat with another jti replaces",
    mode: "normal",
    before: (w, a) => [accountJwt(a, w.op.signer, { iat: w.now - 5 })],
    jwt: (w, a) => accountJwt(a, w.op.signer, { iat: w.now - 5 }),
  },
];

/** HTTP status and body phrase of a refusal (the NATS reply carries the same phrase). */
export function refusal(code: ErrorCode): { status: number; phrase: string } {
  return { status: ERROR_TABLE[code].status, phrase: ERROR_TABLE[code].phrase };
}
