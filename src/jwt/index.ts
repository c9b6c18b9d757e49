/**
 * What the rest of the server may use of `jwt/`: decoding as Go's jwt library does, the claim
 * types, nkeys, claim validation, the operator trust list, nsc's file armour, and signing.
 */
export type * from "./claims.js";
export { ACCOUNT_LIMIT_COUNTS, JETSTREAM_LIMIT_COUNTS } from "./claims.js";
export { extractJwt } from "./armour.js";
export { checkAddressing, checkIssuedAt, type CheckedJwt } from "./check.js";
export { CheckPool } from "./check-pool.js";
export { decodeAccountJwt, decodeActivationJwt, decodeGenericJwt, decodeJwt, decodeOperatorJwt, peekClaims } from "./decode.js";
export { base32Encode, encodePublicKey, isPublicKey, publicKeyKind, type KeyKind } from "./nkey.js";
export { claimsId, encodeJwt, findSeed, formatCreds, mintKey, parseSeed, signClaims, type SigningKey } from "./sign.js";
export { goQuote, isValidLiteralSubject } from "./subject.js";
export { loadTrustFiles, Trust, type TrustFiles } from "./trust.js";
export { asObj, strField } from "./fields.js";
export {
  activationHash,
  activationView,
  refuseOnIssues,
  validateAccountClaims,
  validateActivationClaims,
  type AccountValidationOptions,
  type ValidationIssue,
} from "./validate.js";
