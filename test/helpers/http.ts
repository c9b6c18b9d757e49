/**
 * A raw HTTP request for tests: nothing followed, nothing decoded, so redirects, HEAD answers,
 * header order and exact bodies can be asserted.
 */
import { createHash } from "node:crypto";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";

export interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** Header lines in the order sent, `Name: value`. */
  readonly rawHeaders: readonly string[];
  readonly body: string;
}

export function raw(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const u = new URL(path, base);
    const req = httpRequest({ method, host: u.hostname, port: u.port, path: u.pathname + u.search, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const rawHeaders: string[] = [];
        for (let i = 0; i < res.rawHeaders.length; i += 2) rawHeaders.push(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`);
        resolve({ status: res.statusCode!, headers: res.headers, rawHeaders, body: Buffer.concat(chunks).toString() });
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** The ETag we serve for `jwt`: a short SHA-256 of its bytes, quoted (computed here independently). */
export function etagOf(jwt: string): string {
  return `"${createHash("sha256").update(jwt).digest().subarray(0, 16).toString("base64url")}"`;
}
