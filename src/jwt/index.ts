/**
 * What the rest of the server may use of `jwt/`: decoding as Go's jwt library does, the claim
 * types, nkeys, claim validation, the operator trust list, and nsc's file armour.
 */
export type * from "./claims.js";
export { extractJwt } from "./armour.js";
export { decodeAccountJwt, decodeActivationJwt, decodeGenericJwt, decodeJwt, decodeOperatorJwt, peekClaims } from "./decode.js";
export { encodePublicKey, isPublicKey, publicKeyKind, type KeyKind } from "./nkey.js";
export { goQuote } from "./subject.js";
export { Trust } from "./trust.js";
export {
  activationHash,
  validateAccountClaims,
  validateActivationClaims,
  type AccountValidationOptions,
  type ValidationIssue,
} from "./validate.js";
