/**
 * The write path and GET views of activation tokens: legacy checks and phrases, trust through
 * the stored exporting account, validation, `iat` ordering, durable storage, one change event.
 */
import { KeyedQueue } from "./keyed-queue.js";
import type { AccountRegistry, AccountView } from "./accounts.js";
import { DEFAULT_MAX_CLOCK_SKEW_MS } from "./config/types.js";
import { AccountServerError, errorText, isAccountServerError } from "./errors.js";
import {
  activationHash,
  activationView,
  asObj,
  checkIssuedAt,
  decodeActivationJwt,
  type DecodedJwt,
  isPublicKey,
  peekClaims,
  refuseOnIssues,
  strField,
  validateActivationClaims,
} from "./jwt/index.js";
import type { Logger } from "./log.js";
import { type AccountEntry, type ActivationStore, contentEtag, type StoredJwt } from "./store/index.js";

export interface ActivationChange {
  readonly hash: string;
  /** Key that signed the token (the legacy notification subject names it). */
  readonly issuer: string;
  /** The importing account. */
  readonly subject: string;
  readonly importSubject: string;
  readonly jti: string;
  readonly entry: StoredJwt;
}

/** What a GET needs, derived once per stored token. */
export interface ActivationView {
  readonly entry: StoredJwt;
  /** The stored token. */
  readonly jwt: string;
  /** `"<content id>"` (see contentEtag), or undefined when the stored token does not decode. */
  readonly etag: string | undefined;
  /** Expiry in unix seconds, 0 = never. */
  readonly exp: number;
  readonly issuer: string;
  readonly valid: boolean;
}

export interface ActivationRegistryOptions {
  readonly store: ActivationStore;
  /** Where the exporting accounts (the token issuers) are looked up. */
  readonly accounts: AccountRegistry;
  readonly log: Logger;
  /** Wall clock in milliseconds. */
  readonly now?: () => number;
  /** How far a token's `iat` may be ahead of our clock, milliseconds (default 5 minutes). */
  readonly maxClockSkewMs?: number;
}

/** Go's hash ids carry `====` padding; ours do not. Both name the same token. */
export function normalizeActivationHash(hash: string): string {
  return hash.replace(/=+$/, "");
}

export class ActivationRegistry {
  readonly store: ActivationStore;
  private readonly accounts: AccountRegistry;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly listeners: Array<(c: ActivationChange) => void> = [];
  private readonly queue = new KeyedQueue();
  private readonly views = new WeakMap<StoredJwt, ActivationView>();
  private readonly signers = new WeakMap<AccountEntry, ReadonlySet<string>>();
  private readonly maxClockSkewMs: number;

  constructor(opts: ActivationRegistryOptions) {
    this.maxClockSkewMs = opts.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
    this.store = opts.store;
    this.accounts = opts.accounts;
    this.log = opts.log;
    this.now = opts.now ?? Date.now;
  }

  /** False for a read-only store: uploads are refused. */
  get writable(): boolean {
    return this.store.writable;
  }

  onChange(listener: (c: ActivationChange) => void): void {
    this.listeners.push(listener);
  }

  /** The stored token for `hash` (padded or not), with what a GET needs. */
  view(hash: string): ActivationView | undefined {
    const entry = this.store.get(normalizeActivationHash(hash));
    if (!entry) return undefined;
    let v = this.views.get(entry);
    if (!v) {
      try {
        const d = decodeActivationJwt(entry.jwt);
        v = { entry, jwt: entry.jwt, etag: contentEtag(entry), exp: d.exp, issuer: d.iss, valid: true };
      } catch (err) {
        v = { entry, jwt: entry.jwt, etag: undefined, exp: 0, issuer: peekClaims(entry.jwt)?.iss ?? "", valid: false };
        this.log.error(`stored activation ${entry.key.slice(0, 12)} does not decode: ${errorText(err)}`);
      }
      this.views.set(entry, v);
    }
    return v;
  }

  /** Check and store an activation token; throws AccountServerError for every refusal. */
  async accept(jwt: string): Promise<{ changed: boolean; hash: string; entry: StoredJwt }> {
    if (!this.store.writable) throw new AccountServerError("READ_ONLY");
    const { d, hash, importSubject } = await this.check(jwt);
    return this.queue.run(hash, async () => {
      const previous = this.store.get(hash);
      if (previous) {
        // Identity is the bytes, as for accounts (a Go-issued `jti` ignores the `nats` claims).
        if (previous.jwt === jwt) return { changed: false, hash, entry: previous };
        const old = peekClaims(previous.jwt);
        if (old) {
          if (old.iat > d.iat) {
            throw new AccountServerError("OLDER_ACTIVATION", { reason: `stored iat ${old.iat} > uploaded iat ${d.iat}` });
          }
        }
      }
      let entry: StoredJwt;
      try {
        entry = await this.store.put(hash, jwt);
      } catch (err) {
        throw new AccountServerError("ACTIVATION_SAVE_FAILED", { reason: errorText(err), cause: err });
      }
      this.views.set(entry, { entry, jwt, etag: contentEtag(entry), exp: d.exp, issuer: d.iss, valid: true });
      const change: ActivationChange = { hash, issuer: d.iss, subject: d.sub, importSubject, jti: d.jti, entry };
      for (const l of this.listeners) {
        try {
          l(change);
        } catch (err) {
          this.log.error(`activation listener failed: ${errorText(err)}`);
        }
      }
      return { changed: true, hash, entry };
    });
  }

  /** Every check of a POST, legacy ones first (in the legacy order), then ours. */
  private async check(jwt: string): Promise<{ d: DecodedJwt; hash: string; importSubject: string }> {
    let d: DecodedJwt;
    try {
      d = decodeActivationJwt(jwt);
    } catch (err) {
      throw new AccountServerError("BAD_ACTIVATION", {
        reason: isAccountServerError(err) ? err.reason : errorText(err),
        cause: err,
      });
    }
    if (!isPublicKey(d.iss, "account") && !isPublicKey(d.iss, "operator")) {
      throw new AccountServerError("BAD_ACTIVATION_ISSUER", { reason: d.iss });
    }
    if (!isPublicKey(d.sub, "account")) throw new AccountServerError("BAD_ACTIVATION_SUBJECT", { reason: d.sub });
    const { importSubject, issuerAccount } = activationView(d);
    if (importSubject === "") {
      throw new AccountServerError("BAD_ACTIVATION_HASH", { reason: "the token names no import subject" });
    }
    const hash = activationHash(d.iss, d.sub, importSubject);

    checkIssuedAt(d.iat, this.now(), this.maxClockSkewMs);
    refuseOnIssues(validateActivationClaims(d, Math.floor(this.now() / 1000)), "ACTIVATION_VALIDATION_FAILED");
    await this.checkTrust(d, issuerAccount);
    return { d, hash, importSubject };
  }

  /**
   * The signer must be a trusted operator key, or a stored (trusted) account, or one of that
   * account's signing keys named through `issuer_account`: the rule nats-server applies when
   * it uses the token, so nothing is stored that no server would honour.
   */
  private async checkTrust(d: DecodedJwt, issuerAccount: string): Promise<void> {
    const untrusted = (reason: string): AccountServerError =>
      new AccountServerError("UNTRUSTED_ACTIVATION_ISSUER", { reason });
    if (isPublicKey(d.iss, "operator")) {
      if (!this.accounts.isTrustedIssuer(d.iss)) throw untrusted(`operator key ${d.iss} is not trusted`);
      return;
    }
    const account = issuerAccount || d.iss;
    const view = this.accounts.view(account) ?? (await this.accounts.load(account));
    if (!view?.valid) throw untrusted(`exporting account ${account} is not stored here`);
    if (account === d.iss) return;
    if (!this.signingKeys(view).has(d.iss)) throw untrusted(`${d.iss} is not a signing key of account ${account}`);
  }

  /** The signing keys of a stored account JWT, read once per stored JWT (it may be a megabyte). */
  private signingKeys(view: AccountView): ReadonlySet<string> {
    let keys = this.signers.get(view.entry);
    if (!keys) {
      // The view's signature was checked when it was built: the payload is all that is needed.
      const nats = asObj(asObj(JSON.parse(Buffer.from(view.jwt.split(".")[1] ?? "", "base64url").toString("utf8")))?.["nats"]);
      const list = Array.isArray(nats?.["signing_keys"]) ? (nats["signing_keys"] as unknown[]) : [];
      keys = new Set(list.map((k) => (typeof k === "string" ? k : strField(asObj(k), "key"))));
      this.signers.set(view.entry, keys);
    }
    return keys;
  }

}
