/**
 * The ceiling reference: the smallest node:http server that answers one JWT from memory with
 * precomputed headers. Whatever our server does on top of this is what the ratio measures.
 */
import { createServer } from "node:http";
import { readFileSync } from "node:fs";

const [portArg, jwtFile] = process.argv.slice(2);
const body = Buffer.from(readFileSync(jwtFile!, "utf8"));
const headers = {
  "Content-Type": "application/jwt",
  "Content-Length": String(body.length),
  ETag: '"ceiling"',
  "Cache-Control": "no-cache",
  Vary: "Origin",
};

const server = createServer((_req, res) => {
  res.writeHead(200, headers);
  res.end(body);
});
server.keepAliveTimeout = 5000;
server.listen(Number(portArg), "127.0.0.1", () => process.stderr.write("ceiling listening\n"));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
