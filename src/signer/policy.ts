/**
 * What the signer lets a self-signed request set: caps on limits, exports/imports/signing keys
 * allowed or not, everything else dropped; over the policy a request is clamped or refused.
 * "Unlimited" (-1) and absent limits mean "as much as allowed" and always get the cap.
 */
import { claimsId, encodeJwt, type AccountClaims, type DecodedJwt, type SigningKey } from "../jwt/index.js";
import { LIMIT_NAMES, type LimitName, type SignerPolicy } from "./config.js";

/** Limits where the JWT's 0 means "no limit" (JetStream per-stream and ack settings). */
const ZERO_IS_UNLIMITED: ReadonlySet<LimitName> = new Set(["max_ack_pending", "mem_max_stream_bytes", "disk_max_stream_bytes"]);

/** `nats` fields copied from a request as they are: they only concern the account itself. */
const FREE_FIELDS = ["description", "info_url", "tags", "revocations", "default_permissions", "mappings"] as const;
/** Top-level claims copied from a request; iss, iat, jti are the signer's, sub is checked. */
const TOP_FIELDS = ["name", "exp", "nbf"] as const;
const OWN_FIELDS: ReadonlySet<string> = new Set(["jti", "iat", "iss", "sub", "nats", ...TOP_FIELDS]);

export interface PolicyResult {
  /** The claims to sign, without iss/iat/jti. */
  readonly claims: Record<string, unknown>;
  /** What the policy changed, one short phrase each ("conn 500 -> 100"). */
  readonly applied: string[];
  /** Why the request is refused (overlimit: refuse); empty when it may be signed. */
  readonly refused: string[];
}

/** An empty value asks for nothing: Go's encoder writes `"authorization":{}` into every account. */
function isEmpty(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === "") return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === "object") return Object.values(v as object).every(isEmpty);
  return false;
}

export function applyPolicy(req: DecodedJwt<AccountClaims>, policy: SignerPolicy): PolicyResult {
  const applied: string[] = [];
  const refused: string[] = [];
  const over = (what: string, change: string): void => {
    if (policy.overLimit === "refuse") refused.push(what);
    else applied.push(change);
  };
  const src = req.claims as Record<string, unknown>;
  const nats = (typeof src["nats"] === "object" && src["nats"] !== null ? src["nats"] : {}) as Record<string, unknown>;
  const asked = (typeof nats["limits"] === "object" && nats["limits"] !== null ? nats["limits"] : {}) as Record<string, unknown>;

  const limits: Record<string, unknown> = {};
  for (const name of LIMIT_NAMES) {
    const norm = (n: number): number => (n < 0 || (n === 0 && ZERO_IS_UNLIMITED.has(name)) ? -1 : n);
    const cap = norm(policy.limits[name]);
    const raw = asked[name];
    if (typeof raw !== "number" || !Number.isFinite(raw)) {
      limits[name] = cap;
      continue;
    }
    const v = norm(Math.trunc(raw));
    if (cap >= 0 && v < 0) {
      // "Unlimited" is what nsc writes for every limit nobody set: it gets the cap in both modes.
      applied.push(`${name} unlimited -> ${cap}`);
      limits[name] = cap;
    } else if (cap >= 0 && v > cap) {
      over(`${name} ${v} is over the cap of ${cap}`, `${name} ${v} -> ${cap}`);
      limits[name] = cap;
    } else {
      limits[name] = v;
    }
  }
  const wildcards = asked["wildcards"];
  if (wildcards === true && !policy.wildcards) {
    // nsc writes true unless told otherwise: a default, like "unlimited".
    applied.push("wildcards true -> false");
    limits["wildcards"] = false;
  } else {
    limits["wildcards"] = typeof wildcards === "boolean" ? wildcards : policy.wildcards;
  }
  // Stricter settings a tenant may always choose.
  const STRICTER = ["disallow_bearer", "max_bytes_required"];
  for (const name of STRICTER) if (asked[name] === true) limits[name] = true;
  for (const [name, v] of Object.entries(asked)) {
    if (name in limits || STRICTER.includes(name) || isEmpty(v)) continue;
    over(`limits.${name} may not be set by the account`, `limits.${name} removed`);
  }

  const out: Record<string, unknown> = { limits };
  for (const f of FREE_FIELDS) if (nats[f] !== undefined) out[f] = nats[f];
  const gated: Array<[string, boolean]> = [
    ["exports", policy.allowExports],
    ["imports", policy.allowImports],
    ["signing_keys", policy.allowSigningKeys],
  ];
  for (const [f, allowed] of gated) {
    if (isEmpty(nats[f])) continue;
    if (allowed) out[f] = nats[f];
    else over(`${f} are not allowed`, `${f} removed`);
  }
  for (const [f, v] of Object.entries(nats)) {
    if (f === "type" || f === "version" || f === "limits" || f in out || gated.some(([g]) => g === f)) continue;
    if ((FREE_FIELDS as readonly string[]).includes(f) || isEmpty(v)) continue;
    over(`${f} may not be set by the account`, `${f} removed`);
  }
  for (const [f, v] of Object.entries(src)) {
    if (!OWN_FIELDS.has(f) && !isEmpty(v)) over(`claim ${f} may not be set by the account`, `claim ${f} removed`);
  }

  const claims: Record<string, unknown> = { sub: req.sub };
  for (const f of TOP_FIELDS) if (src[f] !== undefined) claims[f] = src[f];
  claims["nats"] = { ...out, type: "account", version: 2 };
  return { claims, applied, refused };
}

/** Sign the policy's claims with the operator signing key at `nowSec`. */
export function signAccount(claims: Record<string, unknown>, key: SigningKey, nowSec: number): string {
  const full: Record<string, unknown> = { jti: "", iat: nowSec, iss: key.publicKey, ...claims };
  full["jti"] = claimsId(full);
  return encodeJwt(full, key);
}
