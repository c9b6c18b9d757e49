/**
 * The legacy-equivalent upload reference: per POST what the Go server does — decode the JWT, check
 * its Ed25519 signature and that an operator key issued it, write the file (temp + rename, no fsync).
 */
import { verify, type KeyObject } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { rename, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import { join } from "node:path";
import { publicKeyObject } from "../../src/jwt/nkey.js";

const [portArg, dir, operatorFile] = process.argv.slice(2);

function claimsOf(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split(".")[1] ?? "", "base64url").toString("utf8")) as Record<string, unknown>;
}

// The operator and its signing keys, as the Go server reads them from the operator JWT at start.
const operator = claimsOf(readFileSync(operatorFile!, "utf8").trim());
const nats = (operator["nats"] ?? {}) as { signing_keys?: string[] };
const trusted = new Map<string, KeyObject>(
  [String(operator["sub"]), ...(nats.signing_keys ?? [])].map((k) => [k, publicKeyObject(k)]),
);

let n = 0;
const shards = new Set<string>();

/** The refusal text, or undefined when `jwt` is an account JWT for `key` signed by an operator key. */
function check(key: string, jwt: string): string | undefined {
  const parts = jwt.split(".");
  if (parts.length !== 3) return "not a JWT";
  let header: { alg?: unknown };
  let claims: { sub?: unknown; iss?: unknown; nats?: { type?: unknown } };
  try {
    header = JSON.parse(Buffer.from(parts[0]!, "base64url").toString("utf8")) as typeof header;
    claims = JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8")) as typeof claims;
  } catch {
    return "undecodable JWT";
  }
  if (header.alg !== "ed25519-nkey" && header.alg !== "ed25519") return "unexpected algorithm";
  if (claims.nats?.type !== "account") return "not an account JWT";
  if (claims.sub !== key) return "subject does not match the URL";
  const issuer = typeof claims.iss === "string" ? trusted.get(claims.iss) : undefined;
  if (!issuer) return "not issued by the operator";
  const sig = Buffer.from(parts[2]!, "base64url");
  if (!verify(null, Buffer.from(`${parts[0]}.${parts[1]}`), issuer, sig)) return "bad signature";
  return undefined;
}

async function store(key: string, jwt: string): Promise<void> {
  const shard = key.slice(-2);
  const sub = join(dir!, shard);
  if (!shards.has(shard)) {
    mkdirSync(sub, { recursive: true });
    shards.add(shard);
  }
  const tmp = join(sub, `.${key}.${++n}.tmp`);
  await writeFile(tmp, jwt, { mode: 0o640 });
  await rename(tmp, join(sub, `${key}.jwt`));
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const key = (req.url ?? "").split("/").pop() ?? "";
    const jwt = Buffer.concat(chunks).toString("utf8").trim();
    const refused = check(key, jwt);
    if (refused !== undefined) {
      res.writeHead(400, { "Content-Type": "text/plain" });
      res.end(refused);
      return;
    }
    store(key, jwt).then(
      () => {
        res.writeHead(200, { "Content-Length": "0" });
        res.end();
      },
      (err: Error) => {
        res.writeHead(500);
        res.end(err.message);
      },
    );
  });
});
server.listen(Number(portArg), "127.0.0.1", () => process.stderr.write("legacy-ref listening\n"));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
