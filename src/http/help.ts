/**
 * The text served at `/jwt/v1/help`: every endpoint and what it answers, written for operators
 * who reach the server with curl.
 */
export const HELP_TEXT = `# nats-account-server HTTP API

All paths are relative to http(s)://<host>:<port>. Errors are plain text with a one-line reason.

## GET /jwt/v1/help
This text.

## GET /jwt/v1/accounts, GET /jwt/v1/accounts/
Resolver probe used by nats-server at startup: 200 with an empty body and no-cache headers.

## GET /jwt/v1/accounts/<account public key>
The account JWT as stored: 200, Content-Type application/jwt, ETag "<jti>", Cache-Control.
404 "no matching account JWT" when unknown. HEAD is answered like GET without a body.
If-None-Match with the ETag (lists, W/ and * accepted) answers 304.
Query flags (on when the value is "true"):
  text=true    the stored JWT as text/plain
  check=true   404 with an empty body when the JWT has expired
  notify=true  announce the JWT to the nats-servers again
The system account JWT configured with systemaccountjwtpath is served when the store lacks it.

## POST /jwt/v1/accounts/<account public key>
Body: the account JWT (what nsc push sends). The key must equal the JWT subject and the JWT must
be signed by the operator or one of its signing keys, be valid now, and pass claim validation.
200 stored (or identical to what is stored); 400 with the reason; 409 when a JWT with a newer
issue time (iat) is already stored; 405 on a read-only store; 413 when the body is too large.
Every accepted change is announced once to the nats-servers on
$SYS.ACCOUNT.<key>.CLAIMS.UPDATE.

## GET /jwt/v1/operator
The operator JWT (when operatorjwtpath is configured), Content-Type application/jwt.

## GET /healthz
200 with a JSON summary of the store and the NATS connection.
`;
