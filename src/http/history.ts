/**
 * `/jwt/v1/accounts/<key>/history[/<revision>]`: every stored version of an account JWT, as JSON,
 * and the JWT of one past version. Rollback is a re-upload of a past version signed anew.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { AccountServerError } from "../errors.js";
import { peekClaims } from "../jwt/index.js";
import { contentId, type HistoryEntry, type HistorySource, sha256 } from "../store/index.js";
import { send } from "./respond.js";
import type { RequestContext } from "./router.js";

function describe(e: HistoryEntry): Record<string, unknown> {
  if (e.jwt === undefined) return { revision: e.revision, stored: e.stored.toISOString(), deleted: true };
  const c = peekClaims(e.jwt);
  return {
    revision: e.revision,
    stored: e.stored.toISOString(),
    iat: c?.iat ?? 0,
    jti: c?.jti ?? "",
    // What tells two versions apart: Go-issued edits within one second share `iat` and `jti`.
    hash: contentId(sha256(e.jwt)),
    issuer: c?.iss ?? "",
    size: Buffer.byteLength(e.jwt),
  };
}

export function historyRoutes(source: HistorySource) {
  const versions = (key: string): Promise<HistoryEntry[]> => source.history(key);

  async function list(_req: IncomingMessage, res: ServerResponse, ctx: RequestContext): Promise<void> {
    const key = ctx.params["key"]!;
    const all = await versions(key);
    if (all.length === 0) throw new AccountServerError("NOT_FOUND", { reason: `${key}: no history` });
    send(res, 200, { "Content-Type": "application/json" }, JSON.stringify({ account: key, versions: all.map(describe) }));
  }

  async function version(_req: IncomingMessage, res: ServerResponse, ctx: RequestContext): Promise<void> {
    const key = ctx.params["key"]!;
    const revision = Number(ctx.params["revision"]);
    const e = (await versions(key)).find((v) => v.revision === revision);
    if (!e || e.jwt === undefined) throw new AccountServerError("NOT_FOUND", { reason: `${key} revision ${ctx.params["revision"]}` });
    send(res, 200, { "Content-Type": "application/jwt" }, e.jwt);
  }

  return { list, version };
}
