/**
 * Every check an account JWT passes before it may be stored, in the legacy order. Pure (trust
 * keys and clock are passed in), so the validation workers run exactly the code the write path does.
 */
import { AccountServerError } from "../errors.js";
import type { AccountClaims, DecodedJwt } from "./claims.js";
import { decodeAccountJwt } from "./decode.js";
import { isPublicKey } from "./nkey.js";
import { refuseOnIssues, validateAccountClaims } from "./validate.js";

export interface CheckInput {
  readonly jwt: string;
  /** The key the caller addressed (URL path, subject token); must equal the claim subject. */
  readonly key?: string | undefined;
  /** Keys that may sign account JWTs (the operator and its signing keys). */
  readonly trusted: ReadonlySet<string>;
  /** Our clock, unix milliseconds. */
  readonly nowMs: number;
  /** How far `iat` may be ahead of `nowMs`, milliseconds. */
  readonly maxClockSkewMs: number;
}

/** What the write path needs of a JWT that passed every check. */
export interface CheckedJwt {
  readonly token: string;
  readonly sub: string;
  readonly iss: string;
  readonly jti: string;
  readonly iat: number;
  readonly exp: number;
}

/** "1h2m3s" style, as Go prints durations. */
export function formatSeconds(total: number): string {
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return `${h > 0 ? `${h}h` : ""}${h > 0 || m > 0 ? `${m}m` : ""}${s}s`;
}

/**
 * A JWT from the future would win every later ordering by `iat`: no revocation could replace it
 * until then. Refuses (FUTURE_IAT, saying by how much) an `iat` more than `skewMs` ahead of `nowMs`.
 */
export function checkIssuedAt(iat: number, nowMs: number, skewMs: number): void {
  const nowSec = Math.floor(nowMs / 1000);
  const skewSec = Math.floor(skewMs / 1000);
  if (iat - nowSec <= skewSec) return;
  throw new AccountServerError("FUTURE_IAT", {
    phrase:
      `the JWT's issue time (iat ${new Date(iat * 1000).toISOString()}) is ${formatSeconds(iat - nowSec)} ahead of ` +
      `this server's clock, more than the allowed clock skew of ${formatSeconds(skewSec)}: check the signer's clock`,
    reason: `iat ${iat}, now ${nowSec}`,
  });
}

/**
 * The checks before any trust decision (legacy rows 1–5): decodes, the addressed key is the
 * subject, issuer and subject are keys of the right kinds. The signing branch starts here.
 */
export function checkAddressing(jwt: string, key?: string): DecodedJwt<AccountClaims> {
  const d = decodeAccountJwt(jwt);
  if (key !== undefined && key !== d.sub) {
    throw new AccountServerError("KEY_MISMATCH", { reason: `${key} vs ${d.sub}` });
  }
  if (!isPublicKey(d.iss, "account") && !isPublicKey(d.iss, "operator")) {
    throw new AccountServerError("BAD_ISSUER", { reason: d.iss });
  }
  if (!isPublicKey(d.sub, "account")) throw new AccountServerError("BAD_SUBJECT", { reason: d.sub });
  return d;
}

/** Throws AccountServerError for every refusal; returns the fields the write path needs. */
export function checkAccountJwt(input: CheckInput): CheckedJwt {
  const d = checkAddressing(input.jwt, input.key);
  if (!isPublicKey(d.iss, "operator")) {
    throw new AccountServerError(d.iss === d.sub ? "SIGNING_NOT_ENABLED" : "ISSUER_NOT_OPERATOR", {
      reason: `issuer ${d.iss}`,
    });
  }
  if (!input.trusted.has(d.iss)) throw new AccountServerError("UNTRUSTED_ISSUER", { reason: `issuer ${d.iss}` });
  const nowSec = Math.floor(input.nowMs / 1000);
  checkIssuedAt(d.iat, input.nowMs, input.maxClockSkewMs);
  // An expired activation token disables one import, not the account: a warning only.
  refuseOnIssues(validateAccountClaims(d, nowSec, { checkActivationTimes: "warn" }), "VALIDATION_FAILED");
  return { token: d.token, sub: d.sub, iss: d.iss, jti: d.jti, iat: d.iat, exp: d.exp };
}
