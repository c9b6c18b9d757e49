/**
 * Which keys may sign account JWTs: the operator identity (unless strict signing-key usage)
 * and the operator's signing keys. With no operator configured nothing is trusted.
 */
import { readFile } from "node:fs/promises";
import type { Config } from "../config/types.js";
import { errorText, StartupError } from "../errors.js";
import type { Logger } from "../log.js";
import { extractJwt } from "./armour.js";
import type { DecodedJwt, OperatorClaims } from "./claims.js";
import { decodeAccountJwt, decodeOperatorJwt } from "./decode.js";

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

/** The operator and system account JWT files, read and checked. */
export interface TrustFiles {
  readonly trust: Trust;
  readonly operatorJwt: string | undefined;
  readonly systemAccountJwt: string | undefined;
}

async function readJwtFile(path: string, what: string): Promise<string> {
  try {
    return extractJwt(await readFile(path, "utf8"));
  } catch (err) {
    throw new StartupError(`error reading ${what} from ${path}: ${errorText(err)}`);
  }
}

/** Read and check the operator and system account JWT files. */
export async function loadTrustFiles(config: Config, log: Logger): Promise<TrustFiles> {
  let operator;
  let operatorJwt: string | undefined;
  if (config.operatorJwtPath) {
    log.info(`loading operator from ${config.operatorJwtPath}`);
    operatorJwt = await readJwtFile(config.operatorJwtPath, "operator JWT");
    try {
      operator = decodeOperatorJwt(operatorJwt);
    } catch (err) {
      throw new StartupError(`error decoding operator JWT ${config.operatorJwtPath}: ${errorText(err)}`);
    }
  }
  const trust = new Trust(operator);
  let systemAccountJwt: string | undefined;
  if (config.systemAccountJwtPath) {
    log.info(`loading system account from ${config.systemAccountJwtPath}`);
    systemAccountJwt = await readJwtFile(config.systemAccountJwtPath, "system account JWT");
    let sub: string;
    try {
      sub = decodeAccountJwt(systemAccountJwt).sub;
    } catch (err) {
      throw new StartupError(
        `error decoding system account JWT ${config.systemAccountJwtPath}: ${errorText(err)}`,
      );
    }
    const declared = trust.systemAccount;
    if (declared !== undefined && declared !== sub) {
      throw new StartupError(
        `operator declares system account ${declared} but ${config.systemAccountJwtPath} holds ${sub}`,
      );
    }
  }
  if (!operator) log.warn("no operator configured: uploads will be refused as untrusted");
  return { trust, operatorJwt, systemAccountJwt };
}
