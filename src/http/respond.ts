/**
 * Small response helpers and the one place that turns a thrown error into an HTTP answer
 * (status, legacy phrase, body style) and a log line.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { AccountServerError, ERROR_TABLE, errorText, isAccountServerError, type ErrorCode } from "../errors.js";
import type { Logger } from "../log.js";

export function send(
  res: ServerResponse,
  status: number,
  headers: OutgoingHttpHeaders,
  body?: string,
): void {
  if (body !== undefined && body !== "") {
    headers["Content-Length"] = Buffer.byteLength(body);
    res.writeHead(status, headers);
    res.end(body);
  } else {
    res.writeHead(status, headers);
    res.end();
  }
}

/** Plain `text/plain` body with the phrase and a newline (legacy style A). */
export function sendText(res: ServerResponse, status: number, text: string): void {
  send(res, status, { "Content-Type": "text/plain" }, text);
}

/** Answer an error thrown by a handler; `key` prefixes the log line as the Go server did. */
export function sendError(
  req: IncomingMessage,
  res: ServerResponse,
  err: unknown,
  log: Logger,
  key = "",
  json = false,
  extra: Readonly<Record<string, string>> = {},
): void {
  const e = isAccountServerError(err)
    ? err
    : new AccountServerError("INTERNAL", { reason: errorText(err) ?? String(err), cause: err });
  const fields = { ...(key !== "" ? { account: key } : {}), ...extra, source: "http", code: e.code };
  if (e.code === "INTERNAL") log.error(`${req.method} ${req.url}: ${(err as Error)?.stack ?? String(err)}`, fields);
  else log.error(refusalLine(key, e.phrase, e.reason), fields);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (json) {
    const body = { error: { code: e.status, description: [e.phrase, ...e.details].join("\n"), reason: e.code } };
    send(res, e.status, { "Content-Type": "application/json" }, JSON.stringify(body));
    return;
  }
  const headers = errorHeaders(e.code);
  if (e.code === "BODY_TOO_LARGE") headers["Connection"] = "close";
  send(res, e.status, headers, e.body());
}

/** The log line of a refusal, as the Go server wrote it: `<key prefix> - <phrase> - <reason>`. */
export function refusalLine(key: string, phrase: string, reason: string | undefined): string {
  return [key.slice(0, 12), phrase, reason].filter((p) => p).join(" - ");
}

/** The headers of a plain-text error answer of `code`, by its body style (legacy section 2.12). */
export function errorHeaders(code: ErrorCode): OutgoingHttpHeaders {
  return ERROR_TABLE[code].style === "http-error"
    ? { "Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff" }
    : { "Content-Type": "text/plain" };
}

/** Read a request body, refusing (413) as soon as it exceeds `limit` bytes. */
export function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"] ?? -1);
    if (declared > limit) {
      reject(new AccountServerError("BODY_TOO_LARGE", { reason: `${declared} bytes declared` }));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on("data", (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > limit) {
        done = true;
        req.pause();
        reject(new AccountServerError("BODY_TOO_LARGE", { reason: `more than ${limit} bytes` }));
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => {
      if (done) return;
      done = true;
      resolve(Buffer.concat(chunks, size).toString("utf8"));
    });
    req.on("error", (err) => {
      if (done) return;
      done = true;
      reject(new AccountServerError("BAD_JWT", { reason: `reading body: ${err.message}`, cause: err }));
    });
  });
}
