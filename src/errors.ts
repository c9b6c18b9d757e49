/**
 * One error type for everything the server refuses or fails at, with a closed set of codes.
 * The table below is the only place that maps a code to an HTTP status and its legacy phrase.
 */

/** Every reason a request, message or file can be refused. */
export type ErrorCode =
  // request shape
  | "BAD_JWT"
  | "KEY_MISMATCH"
  | "BAD_ISSUER"
  | "BAD_SUBJECT"
  | "SIGNING_NOT_ENABLED"
  | "ISSUER_NOT_OPERATOR"
  | "UNTRUSTED_ISSUER"
  | "FUTURE_IAT"
  | "VALIDATION_FAILED"
  | "OLDER_JWT"
  | "ACCOUNT_DELETED"
  | "DELETE_DISABLED"
  | "DELETE_NOT_SELF_SIGNED"
  | "DELETE_UNTRUSTED"
  | "DELETE_MALFORMED"
  | "DELETE_SYSTEM_ACCOUNT"
  | "READ_ONLY"
  | "READ_ONLY_NSC"
  | "PRIMARY_UNAVAILABLE"
  | "PRIMARY_BAD_RESPONSE"
  | "BODY_TOO_LARGE"
  | "BAD_REQUEST"
  | "BAD_MAX"
  // signing-service branch (legacy §2.5 step 6)
  | "SIGN_BAD_PAIR"
  | "SIGN_NOT_TRUSTED"
  | "SIGN_NATS_UNAVAILABLE"
  | "SIGN_TIMEOUT"
  | "SIGN_FAILED"
  | "SIGN_REFUSED"
  // activation tokens
  | "BAD_ACTIVATION"
  | "BAD_ACTIVATION_ISSUER"
  | "BAD_ACTIVATION_SUBJECT"
  | "BAD_ACTIVATION_HASH"
  | "UNTRUSTED_ACTIVATION_ISSUER"
  | "ACTIVATION_VALIDATION_FAILED"
  | "OLDER_ACTIVATION"
  | "ACTIVATION_NOT_FOUND"
  | "ACTIVATION_SAVE_FAILED"
  // lookups
  | "NOT_FOUND"
  | "JTI_UNSUPPORTED"
  | "LOAD_FAILED"
  // server side
  | "SAVE_FAILED"
  | "STORE_UNAVAILABLE"
  | "SHUTTING_DOWN"
  | "NOTIFY_FAILED"
  | "INTERNAL";

/** How an error body is written (legacy section 2.12). */
export type BodyStyle = "text" | "http-error";

interface ErrorSpec {
  readonly status: number;
  readonly phrase: string;
  readonly style: BodyStyle;
}

/** code → HTTP status, legacy phrase and body style. */
export const ERROR_TABLE: Readonly<Record<ErrorCode, ErrorSpec>> = {
  BAD_JWT: { status: 400, phrase: "bad JWT in request", style: "text" },
  KEY_MISMATCH: { status: 400, phrase: "pub keys don't match", style: "text" },
  BAD_ISSUER: { status: 400, phrase: "bad JWT Issuer in request", style: "text" },
  BAD_SUBJECT: { status: 400, phrase: "bad JWT Subject in request", style: "text" },
  SIGNING_NOT_ENABLED: { status: 400, phrase: "Signing service not enabled", style: "text" },
  ISSUER_NOT_OPERATOR: { status: 400, phrase: "Bad JWT Issuer in request", style: "text" },
  UNTRUSTED_ISSUER: { status: 400, phrase: "untrusted issuer in request", style: "text" },
  /** The phrase is replaced by one saying by how much (src/jwt/check.ts). */
  FUTURE_IAT: {
    status: 400,
    phrase: "the JWT's issue time (iat) is further ahead of this server's clock than the allowed clock skew",
    style: "text",
  },
  VALIDATION_FAILED: {
    status: 400,
    phrase: "the account JWT could not be updated because of validation issues:",
    style: "http-error",
  },
  OLDER_JWT: {
    status: 409,
    phrase: "a newer JWT is already stored for this account",
    style: "text",
  },
  ACCOUNT_DELETED: {
    status: 409,
    phrase: "the account was deleted; only a deliberate upload restores it",
    style: "text",
  },
  // Deletion refusals use nats-server's reasons (protocol §3.6) so HTTP and NATS agree.
  DELETE_DISABLED: { status: 405, phrase: "delete must be enabled in server config", style: "text" },
  DELETE_NOT_SELF_SIGNED: { status: 400, phrase: "not self signed", style: "text" },
  DELETE_UNTRUSTED: { status: 400, phrase: "not trusted", style: "text" },
  DELETE_MALFORMED: { status: 400, phrase: "malformed request", style: "text" },
  DELETE_SYSTEM_ACCOUNT: { status: 400, phrase: "not allowed to delete system account", style: "text" },
  READ_ONLY: {
    status: 405,
    phrase:
      "this account server is read-only: its store is maintained outside the server; push to a writable account server instead",
    style: "text",
  },
  READ_ONLY_NSC: {
    status: 405,
    phrase:
      "this account server serves an nsc folder read-only: edit the account with nsc, or run `nsc push` against a writable account server",
    style: "text",
  },
  // A replica forwards uploads to its primary; these say why the primary did not answer.
  PRIMARY_UNAVAILABLE: {
    status: 503,
    phrase: "the primary account server is unreachable; the JWT was not stored, try again later",
    style: "text",
  },
  PRIMARY_BAD_RESPONSE: {
    status: 502,
    phrase: "the primary account server sent an unreadable answer; the JWT may not be stored",
    style: "text",
  },
  BODY_TOO_LARGE: { status: 413, phrase: "request body too large", style: "text" },
  BAD_REQUEST: { status: 400, phrase: "bad request", style: "text" },
  /** The phrase is replaced by one naming the value (legacy pack endpoint wording). */
  BAD_MAX: { status: 400, phrase: "bad max parameter", style: "text" },
  SIGN_BAD_PAIR: { status: 400, phrase: "bad JWT Issuer/Subject pair in request", style: "text" },
  SIGN_NOT_TRUSTED: { status: 400, phrase: "bad JWT issuer is not trusted", style: "text" },
  SIGN_NATS_UNAVAILABLE: {
    status: 500,
    phrase: "Failure during signature request. nats-server unavailable.",
    style: "http-error",
  },
  SIGN_TIMEOUT: {
    status: 500,
    phrase: "Failure during signature request. signing service unavailable.",
    style: "http-error",
  },
  /** The phrase is followed by the NATS error text. */
  SIGN_FAILED: {
    status: 500,
    phrase: "Failure during signature request. Try again at a later time. Error: ",
    style: "http-error",
  },
  /** The phrase is replaced by the signing service's own reason (an error reply, see src/nats/sign-request.ts). */
  SIGN_REFUSED: { status: 400, phrase: "the signing service refused the request", style: "http-error" },
  BAD_ACTIVATION: { status: 400, phrase: "bad activation JWT in request", style: "text" },
  BAD_ACTIVATION_ISSUER: { status: 400, phrase: "bad activation JWT Issuer in request", style: "text" },
  BAD_ACTIVATION_SUBJECT: { status: 400, phrase: "bad activation JWT Subject in request", style: "text" },
  BAD_ACTIVATION_HASH: { status: 400, phrase: "bad activation hash in request", style: "text" },
  UNTRUSTED_ACTIVATION_ISSUER: {
    status: 400,
    phrase: "untrusted activation JWT issuer in request: it must be a stored account (or one of its signing keys) or a trusted operator key",
    style: "text",
  },
  ACTIVATION_VALIDATION_FAILED: {
    status: 400,
    phrase: "the activation JWT could not be stored because of validation issues:",
    style: "http-error",
  },
  OLDER_ACTIVATION: {
    status: 409,
    phrase: "a newer activation JWT is already stored for this hash",
    style: "text",
  },
  ACTIVATION_NOT_FOUND: { status: 404, phrase: "No Matching JWT", style: "http-error" },
  ACTIVATION_SAVE_FAILED: { status: 500, phrase: "error saving activation JWT", style: "text" },
  NOT_FOUND: { status: 404, phrase: "no matching account JWT", style: "text" },
  JTI_UNSUPPORTED: { status: 501, phrase: "lookup by jti is no longer supported", style: "text" },
  LOAD_FAILED: { status: 500, phrase: "error loading JWT", style: "text" },
  SAVE_FAILED: { status: 500, phrase: "error saving JWT", style: "text" },
  STORE_UNAVAILABLE: { status: 503, phrase: "the account store is not available, try again", style: "text" },
  SHUTTING_DOWN: { status: 503, phrase: "the account server is shutting down, try again", style: "text" },
  NOTIFY_FAILED: { status: 500, phrase: "error sending notification of change", style: "text" },
  INTERNAL: { status: 500, phrase: "internal server error", style: "text" },
};

export interface AccountServerErrorOptions {
  /** Lines listed under the phrase (validation issues). */
  readonly details?: readonly string[];
  /** Extra text for logs only; never sent to clients. */
  readonly reason?: string;
  /** Replaces the table phrase in the body (e.g. a precise 400 for a bad parameter). */
  readonly phrase?: string;
  readonly cause?: unknown;
}

/** The one error class thrown for refusals; `code` says why. */
export class AccountServerError extends Error {
  readonly code: ErrorCode;
  readonly details: readonly string[];
  readonly reason: string | undefined;
  readonly phrase: string;

  constructor(code: ErrorCode, opts: AccountServerErrorOptions = {}) {
    const phrase = opts.phrase ?? ERROR_TABLE[code].phrase;
    // A refusal is an answer, not a bug: capturing its stack cost a third of a 404's CPU time.
    const limit = Error.stackTraceLimit;
    if (ERROR_TABLE[code].status < 500) Error.stackTraceLimit = 0;
    try {
      super(opts.reason ? `${phrase} - ${opts.reason}` : phrase, { cause: opts.cause });
    } finally {
      Error.stackTraceLimit = limit;
    }
    this.name = "AccountServerError";
    this.code = code;
    this.phrase = phrase;
    this.details = opts.details ?? [];
    this.reason = opts.reason;
  }

  get status(): number {
    return ERROR_TABLE[this.code].status;
  }

  /** The body a client sees: the phrase, then one tab-dash line per detail. */
  body(): string {
    const lines = [this.phrase, ...this.details.map((d) => `\t - ${d}`)];
    return lines.join("\n") + "\n";
  }
}

export function isAccountServerError(e: unknown): e is AccountServerError {
  return e instanceof AccountServerError;
}

/** A problem that prevents the server from starting; the CLI prints it and exits 1. */
export class StartupError extends Error {
  override readonly name = "StartupError";
}

/** The message of anything thrown: an Error's message, else its text. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
