/**
 * Which keys may sign account JWTs: the operator identity (unless strict signing-key usage)
 * and the operator's signing keys. With no operator configured nothing is trusted.
 */
import type { DecodedJwt, OperatorClaims } from "./claims.js";

export class Trust {
  readonly keys: ReadonlySet<string>;
  readonly strict: boolean;
  readonly operator: DecodedJwt<OperatorClaims> | undefined;

  constructor(operator?: DecodedJwt<OperatorClaims>) {
    this.operator = operator;
    const keys = new Set<string>();
    const nats = operator?.claims.nats;
    this.strict = nats?.strict_signing_key_usage === true;
    if (operator && !this.strict) keys.add(operator.sub);
    for (const k of nats?.signing_keys ?? []) {
      // Operator signing keys are plain strings; tolerate the object form defensively.
      const key = typeof k === "string" ? k : (k as { key?: unknown }).key;
      if (typeof key === "string") keys.add(key);
    }
    this.keys = keys;
  }

  /** True when `issuer` may sign account JWTs (and operator-signed requests). */
  isTrusted(issuer: string): boolean {
    return this.keys.has(issuer);
  }

  get operatorKey(): string | undefined {
    return this.operator?.sub;
  }

  /** The system account the operator JWT names, if any. */
  get systemAccount(): string | undefined {
    const s = this.operator?.claims.nats?.system_account;
    return typeof s === "string" && s !== "" ? s : undefined;
  }
}
