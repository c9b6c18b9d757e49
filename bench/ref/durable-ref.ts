/**
 * The durable-write reference: a node:http server that stores each POST body with the naive
 * atomic sequence (temp file, write, fsync, rename, directory fsync) and no validation at all.
 */
import { createServer } from "node:http";
import { mkdirSync } from "node:fs";
import { open, rename } from "node:fs/promises";
import { join } from "node:path";

const [portArg, dir] = process.argv.slice(2);
let n = 0;

async function store(key: string, body: Buffer): Promise<void> {
  const sub = join(dir!, key.slice(-2));
  mkdirSync(sub, { recursive: true });
  const file = join(sub, `${key}.jwt`);
  const tmp = join(sub, `.${key}.${++n}.tmp`);
  const fh = await open(tmp, "wx", 0o640);
  try {
    await fh.writeFile(body);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
  const dh = await open(sub, "r");
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const key = (req.url ?? "").split("/").pop() ?? "";
    store(key, Buffer.concat(chunks)).then(
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
server.listen(Number(portArg), "127.0.0.1", () => process.stderr.write("durable-ref listening\n"));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
