#!/usr/bin/env node
// Launcher for the compiled CLI: `npm pack` ships dist/ (built by `prepack`); in a checkout,
// `npm run build` (or `npm start`, `npm test`) builds it.
// Durable writes block libuv pool threads in fsync; more threads let concurrent uploads share
// journal commits instead of queueing four at a time. It must be set before the pool starts.
process.env.UV_THREADPOOL_SIZE ??= "16";
let cli;
try {
  cli = await import("../dist/cli.js");
} catch (err) {
  if (err?.code !== "ERR_MODULE_NOT_FOUND" || !String(err.message).includes("dist/cli.js")) throw err;
  process.stderr.write("nats-account-server is not built: run `npm run build` in the checkout first\n");
  process.exit(1);
}
cli.run(process.argv.slice(2));
