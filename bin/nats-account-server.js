#!/usr/bin/env -S node --max-semi-space-size=4 --heap-growing-percent=30
// Launcher for the compiled CLI: `npm pack` ships dist/ (built by `prepack`); in a checkout,
// `npm run build` (or `npm start`, `npm test`) builds it.
// The heap settings above bound the memory a big store needs (bench/RESULTS.md): the account
// index lives outside the JS heap, so what the heap holds is the view cache and short-lived
// garbage; V8's defaults let the young generation grow to 48 MB and the old one to 4x what is
// live before collecting, which at 100,000 accounts is 40% of the process's memory.
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
