/**
 * What the rest of the server may use of the NATS services above the write path: announcements,
 * the resolver peer, pack sync, the signing branch. The connection itself is nats/connection.ts.
 */
export { Notifier } from "./notifier.js";
export { openOutbox } from "./outbox.js";
export { Responder, UPDATE_SUBJECT } from "./responder.js";
export { createSignRequests, SERVICE_ERROR_CODE_HEADER, SERVICE_ERROR_HEADER, type SignRequests } from "./sign-request.js";
export { PackSync, type SyncResult } from "./sync.js";
