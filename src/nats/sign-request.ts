/**
 * The signing-service branch of an upload (legacy §2.5 step 6): a self-signed account JWT is sent
 * on `signrequestsubject`; a JWT that comes back goes through the registry's normal write path.
 */
import { TimeoutError, type Msg } from "@nats-io/transport-node";
import type { AcceptResult, AccountRegistry, ChangeSource } from "../accounts.js";
import type { Config } from "../config/types.js";
import { AccountServerError, ERROR_TABLE, errorText } from "../errors.js";
import { decodeAccountJwt, peekClaims } from "../jwt/index.js";
import type { Logger } from "../log.js";
import type { NatsLink } from "./connection.js";

/**
 * NATS micro-service error headers. A signing service that sets them refuses the request: the
 * uploader gets 400 with its text instead of the legacy 202 that any non-JWT reply means.
 */
export const SERVICE_ERROR_HEADER = "Nats-Service-Error";
export const SERVICE_ERROR_CODE_HEADER = "Nats-Service-Error-Code";

export type UploadResult =
  /** Stored (or already stored): the JWT came signed by a trusted key, from the client or the service. */
  | { readonly status: 200; readonly result: AcceptResult }
  /** The service took the request without signing it yet; `text` is its reply, verbatim. */
  | { readonly status: 202; readonly text: string };

export interface SignRequestOptions {
  readonly registry: AccountRegistry;
  /** Absent when no NATS servers are configured: every request then fails as "not connected". */
  readonly link: NatsLink | undefined;
  /** `signrequestsubject`. */
  readonly subject: string;
  /** `signrequesttimeout`, ms. */
  readonly timeoutMs: number;
  readonly log: Logger;
}

function failed(text: string, cause: unknown): AccountServerError {
  return new AccountServerError("SIGN_FAILED", { phrase: ERROR_TABLE.SIGN_FAILED.phrase + text, reason: text, cause });
}

export class SignRequests {
  private readonly o: SignRequestOptions;

  constructor(o: SignRequestOptions) {
    this.o = o;
  }

  /**
   * An upload to `key`: JWTs issued by a trusted key go straight to the registry; others take
   * the legacy branch. Throws AccountServerError for every refusal.
   */
  async upload(jwt: string, key: string, source: ChangeSource): Promise<UploadResult> {
    const { registry } = this.o;
    const iss = peekClaims(jwt)?.iss;
    if (iss !== undefined && registry.isTrustedIssuer(iss)) {
      return { status: 200, result: await registry.accept(jwt, { source, key }) };
    }
    const d = registry.checkAddressing(jwt, key);
    // Only an account speaking for itself may ask; Go looked for a stored account only to pick
    // which of two texts refuses the rest.
    if (d.iss !== d.sub) {
      throw new AccountServerError((await this.storedDecodes(d.sub)) ? "SIGN_NOT_TRUSTED" : "SIGN_BAD_PAIR", {
        reason: `issuer ${d.iss}`,
      });
    }
    const reply = await this.request(jwt, d.sub);
    const text = reply.string();
    const refusal = reply.headers?.get(SERVICE_ERROR_HEADER);
    if (reply.headers?.has(SERVICE_ERROR_CODE_HEADER) || (refusal !== undefined && refusal !== "")) {
      const why = text !== "" ? text : (refusal ?? "");
      this.o.log.warn(`signing service refused ${d.sub.slice(0, 12)}: ${why}`);
      throw new AccountServerError("SIGN_REFUSED", { phrase: why === "" ? ERROR_TABLE.SIGN_REFUSED.phrase : why });
    }
    let signed: string;
    try {
      signed = decodeAccountJwt(text).token;
    } catch {
      this.o.log.info(`signing service accepted ${d.sub.slice(0, 12)} without signing it yet`);
      return { status: 202, text };
    }
    // Unlike Go, the service's JWT is held to everything an upload to this path would be: its
    // subject must be the path key, its issuer trusted, its claims valid and not older.
    try {
      return { status: 200, result: await registry.accept(signed, { source, key }) };
    } catch (err) {
      const why = err instanceof AccountServerError ? (err.reason ?? err.phrase) : String(err);
      this.o.log.error(`signing service returned a JWT for ${d.sub.slice(0, 12)} that is refused: ${why}`);
      throw err;
    }
  }

  /** The stored JWT of `key` decodes (its view has an ETag only then). */
  private async storedDecodes(key: string): Promise<boolean> {
    const view = await this.o.registry.load(key).catch(() => undefined);
    return view?.etag !== undefined;
  }

  private async request(jwt: string, key: string): Promise<Msg> {
    const nc = this.o.link?.connection;
    if (!nc) throw new AccountServerError("SIGN_NATS_UNAVAILABLE", { reason: key });
    try {
      return await nc.request(this.o.subject, jwt, { timeout: this.o.timeoutMs });
    } catch (err) {
      const cause = (err as Error).cause;
      if (err instanceof TimeoutError || cause instanceof TimeoutError) {
        throw new AccountServerError("SIGN_TIMEOUT", { reason: key, cause: err });
      }
      // Go's texts for the errors a request most often meets.
      if ((err as { isNoResponders?: () => boolean }).isNoResponders?.() === true) {
        throw failed("nats: no responders available for request", err);
      }
      throw failed(`nats: ${errorText(err)}`, err);
    }
  }
}

/** The signing-service branch when `signrequestsubject` is set. */
export function createSignRequests(config: Config, registry: AccountRegistry, link: NatsLink | undefined, log: Logger): SignRequests | undefined {
  const subject = config.signRequestSubject;
  if (subject === undefined) return undefined;
  if (!link) log.warn("signrequestsubject is set but NATS is not configured: self-signed uploads will fail");
  else log.info(`self-signed account JWTs are sent to the signing service on ${subject}`);
  return new SignRequests({ registry, link, subject, timeoutMs: config.signRequestTimeout, log });
}
