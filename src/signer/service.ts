/**
 * The signing service: answers the account servers' sign requests on NATS with an operator-signed
 * account JWT, a "queued" text, or an error reply, by the policy; one audit line per decision.
 */
import { statSync, readFileSync } from "node:fs";
import { headers, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { errorText, isAccountServerError } from "../errors.js";
import {
  decodeAccountJwt,
  decodeOperatorJwt,
  extractJwt,
  findSeed,
  parseSeed,
  Trust,
  validateAccountClaims,
  type AccountClaims,
  type DecodedJwt,
  type SigningKey,
} from "../jwt/index.js";
import type { Logger } from "../log.js";
import { NatsLink } from "../nats/connection.js";
import { SERVICE_ERROR_CODE_HEADER, SERVICE_ERROR_HEADER } from "../nats/index.js";
import type { SignerConfig } from "./config.js";
import { applyPolicy, signAccount } from "./policy.js";
import { requestId, SignerState } from "./queue.js";

/** A problem that keeps the signer from starting; the CLI prints it and exits 1. */
export class SignerStartupError extends Error {
  override readonly name = "SignerStartupError";
}

/**
 * The operator signing key from `seedFile`. Refused when others may read or change the file, when
 * it holds no operator seed, or (with `operatorjwtpath`) when the operator does not list the key.
 * Messages name the file, never its content.
 */
export function loadSigningKey(config: SignerConfig, operator: Trust | undefined = loadOperator(config)): SigningKey {
  const file = config.seedFile;
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch (err) {
    throw new SignerStartupError(`cannot read the seed file ${file}: ${(err as NodeJS.ErrnoException).code ?? errorText(err)}`);
  }
  if ((mode & 0o077) !== 0) {
    throw new SignerStartupError(
      `the seed file ${file} is accessible by others (mode ${(mode & 0o777).toString(8).padStart(4, "0")}); ` +
        `make it readable by its owner only: chmod 600 ${file}`,
    );
  }
  const seed = findSeed(readFileSync(file, "utf8"));
  if (seed === undefined) throw new SignerStartupError(`the seed file ${file} holds no nkey seed`);
  let key: SigningKey;
  try {
    key = parseSeed(seed);
  } catch (err) {
    throw new SignerStartupError(`the seed in ${file} is not valid: ${errorText(err)}`);
  }
  if (key.kind !== "operator") {
    throw new SignerStartupError(`the seed in ${file} is an ${key.kind} seed; the signer needs an operator signing key (SO...)`);
  }
  if (operator !== undefined) {
    if (key.publicKey === operator.operatorKey) {
      throw new SignerStartupError(`${file} holds the operator's identity key; give the signer one of its signing keys instead`);
    }
    if (!operator.isTrusted(key.publicKey)) {
      throw new SignerStartupError(`${key.publicKey} (from ${file}) is not a signing key of operator ${operator.operatorKey}`);
    }
  }
  return key;
}

/** The operator of `operatorjwtpath`, when configured. */
export function loadOperator(config: SignerConfig): Trust | undefined {
  if (config.operatorJwtPath === undefined) return undefined;
  try {
    return new Trust(decodeOperatorJwt(extractJwt(readFileSync(config.operatorJwtPath, "utf8"))));
  } catch (err) {
    throw new SignerStartupError(`cannot load the operator JWT ${config.operatorJwtPath}: ${errorText(err)}`);
  }
}

export type Answer =
  | { readonly kind: "jwt"; readonly jwt: string }
  | { readonly kind: "text"; readonly text: string }
  | { readonly kind: "error"; readonly text: string };

export interface SignerOptions {
  readonly config: SignerConfig;
  readonly key: SigningKey;
  /** Never re-signed from a self-signed request (its exports serve the whole deployment). */
  readonly systemAccount?: string | undefined;
  readonly log: Logger;
  /** Wall clock in milliseconds. */
  readonly now?: () => number;
}

/** `key=value` pairs; values with spaces or quotes are JSON-quoted. */
function kv(fields: Record<string, string | undefined>): string {
  return Object.entries(fields)
    .filter(([, v]) => v !== undefined && v !== "")
    .map(([k, v]) => `${k}=${/^[\w.:>-]+$/.test(v!) ? v : JSON.stringify(v)}`)
    .join(" ");
}

/** One line per decision: who asked, for which account, what was decided and which caps applied. */
export function audit(log: Logger, decision: string, fields: Record<string, string | undefined>): void {
  log.info(`audit ${kv({ decision, ...fields })}`);
}

export class SigningService {
  readonly state: SignerState;
  private readonly o: SignerOptions;
  private readonly now: () => number;
  private readonly link: NatsLink;
  private readonly attached = new WeakSet<NatsConnection>();

  constructor(o: SignerOptions) {
    this.o = o;
    this.now = o.now ?? Date.now;
    this.state = new SignerState(o.config.stateDir);
    this.link = new NatsLink({ config: o.config.nats, log: o.log, purpose: "sign requests", clientName: "nats-account-signer" });
    this.link.onConnected((nc) => this.attach(nc));
  }

  audit(decision: string, fields: Record<string, string | undefined>): void {
    audit(this.o.log, decision, fields);
  }

  async start(): Promise<void> {
    const { config, key, log } = this.o;
    log.info(`signing with operator signing key ${key.publicKey}`);
    log.info(
      `policy: new accounts ${config.policy.newAccounts === "sign" ? "signed at once" : "queued for approval"}, ` +
        `requests over the policy ${config.policy.overLimit === "clamp" ? "clamped" : "refused"}; state in ${config.stateDir}`,
    );
    await this.link.start();
  }

  async stop(): Promise<void> {
    await this.link.stop();
  }

  private attach(nc: NatsConnection): void {
    if (this.attached.has(nc)) return;
    this.attached.add(nc);
    const { subject, queue } = this.o.config;
    nc.subscribe(subject, {
      queue,
      callback: (err, m) => {
        if (err) {
          this.o.log.error(`subscription ${subject} failed: ${err.message}`);
          return;
        }
        void this.answer(m);
      },
    });
    // Said once the server has the subscription: from then on a request reaches us.
    nc.flush().then(
      () => this.o.log.info(`answering sign requests on ${subject} (queue group ${queue})`),
      (err: unknown) => this.o.log.warn(`subscribing to ${subject} not confirmed yet: ${errorText(err)}`),
    );
  }

  private async answer(m: Msg): Promise<void> {
    if (!m.reply) {
      this.o.log.warn(`ignoring a message on ${m.subject} without a reply subject`);
      return;
    }
    let a: Answer;
    try {
      a = await this.handle(m.data);
    } catch (err) {
      this.o.log.error(`sign request failed: ${errorText(err)}`);
      a = { kind: "error", text: "the signing service failed on this request; try again later" };
    }
    if (a.kind === "error") {
      const h = headers();
      h.set(SERVICE_ERROR_HEADER, a.text.slice(0, 200).replace(/[\r\n]+/g, " "));
      h.set(SERVICE_ERROR_CODE_HEADER, "400");
      m.respond(a.text, { headers: h });
    } else {
      m.respond(a.kind === "jwt" ? a.jwt : a.text);
    }
  }

  private refuse(text: string, fields: Record<string, string | undefined>): Answer {
    this.audit("refused", { ...fields, reason: text });
    return { kind: "error", text };
  }

  /** Decide one request (the raw payload of a sign request). */
  async handle(data: Uint8Array): Promise<Answer> {
    const { config } = this.o;
    if (data.length > config.maxRequestBytes) {
      return this.refuse(`request of ${data.length} bytes is over the limit of ${config.maxRequestBytes}`, {});
    }
    const text = Buffer.from(data).toString("utf8");
    let req: DecodedJwt<AccountClaims>;
    try {
      req = decodeAccountJwt(text);
    } catch (err) {
      const why = isAccountServerError(err) ? (err.reason ?? err.phrase) : errorText(err);
      return this.refuse(`not an account JWT: ${why}`, {});
    }
    const who = { requester: req.iss, account: req.sub };
    // The signature proves who asks; an account may only ask for itself.
    if (req.iss !== req.sub) {
      return this.refuse(`only self-signed account JWTs are signed: issuer ${req.iss} is not the account ${req.sub}`, who);
    }
    if (req.sub === this.o.systemAccount) return this.refuse("the system account is not signed on request", who);
    const nowSec = Math.floor(this.now() / 1000);
    if ((req.exp > 0 && req.exp <= nowSec) || (req.nbf > 0 && req.nbf > nowSec)) {
      return this.refuse("the request is expired or not yet valid", who);
    }
    const id = requestId(text);
    const outcome = await this.state.outcome(id);
    if (outcome?.decision === "rejected") {
      return this.refuse(`request ${id} was rejected${outcome.reason ? `: ${outcome.reason}` : ""}`, { ...who, request: id });
    }
    const policy = applyPolicy(req, config.policy);
    if (policy.refused.length > 0) return this.refuse(`refused by policy: ${policy.refused.join("; ")}`, { ...who, request: id });
    const caps = policy.applied.join("; ");
    // Signed now even when queued, so that only a request that can be signed waits for approval.
    const signed = this.sign(policy.claims, nowSec);
    if ("error" in signed) return this.refuse(signed.error, { ...who, request: id });

    const known = outcome?.decision === "approved" || (await this.state.known(req.sub));
    if (config.policy.newAccounts === "queue" && !known) {
      const queued = `account ${req.sub} is queued for approval as request ${id}; ` +
        `once an operator runs "nats-account-server signer approve ${id}" the account server has it`;
      if (await this.state.pending(id)) {
        this.audit("already-queued", { ...who, request: id });
        return { kind: "text", text: queued };
      }
      if ((await this.state.countPending()) >= config.policy.maxPending) {
        return this.refuse(`the approval queue is full (${config.policy.maxPending} requests); try again later`, { ...who, request: id });
      }
      await this.state.enqueue({ id, account: req.sub, name: String(req.claims.name ?? ""), received: this.now(), request: text });
      this.audit("queued", { ...who, request: id, caps });
      return { kind: "text", text: queued };
    }

    await this.state.markKnown(req.sub, `signed request ${id}`, this.now());
    this.audit("signed", { ...who, request: id, caps, jti: signed.jti });
    return { kind: "jwt", jwt: signed.jwt };
  }

  /** Sign, then check the result as an account server would; never hands out an invalid JWT. */
  sign(claims: Record<string, unknown>, nowSec: number): { jwt: string; jti: string } | { error: string } {
    const jwt = signAccount(claims, this.o.key, nowSec);
    const d = decodeAccountJwt(jwt);
    const issues = validateAccountClaims(d, nowSec, { checkActivationTimes: "warn" }).filter((i) => i.blocking || i.timeCheck);
    if (issues.length > 0) return { error: `the account would not be valid: ${issues.map((i) => i.description).join("; ")}` };
    return { jwt, jti: d.jti };
  }
}
