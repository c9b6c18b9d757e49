#!/usr/bin/env node
// Launcher for the compiled CLI; `npm ci` builds dist/ through the `prepare` script.
// Durable writes block libuv pool threads in fsync; more threads let concurrent uploads share
// journal commits instead of queueing four at a time. It must be set before the pool starts.
process.env.UV_THREADPOOL_SIZE ??= "16";
const { run } = await import("../dist/cli.js");

run(process.argv.slice(2));
