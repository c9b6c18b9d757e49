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
The account JWT as stored: 200, Content-Type application/jwt, ETag "<hash>" (a short SHA-256
of the stored bytes, not the jti: Go-issued edits within one second share it), Cache-Control.
404 "no matching account JWT" when unknown. HEAD is answered like GET without a body.
If-None-Match with the ETag (lists, W/ and * accepted) answers 304.
Query flags (on when the value is "true"):
  text=true    the stored JWT as text/plain
  decode=true  a readable text/plain view: header and claims as indented JSON (keys sorted,
               iat/exp/nbf followed by their UTC date, activation tokens of imports decoded
               in place), then the signature; parts that do not decode are shown as
               <bad ... - reason>. text wins over decode; both skip If-None-Match, check
               and notify.
  check=true   404 with an empty body when the JWT has expired
  notify=true  announce the JWT to the nats-servers again
The system account JWT configured with systemaccountjwtpath is served when the store lacks it.
With NATS configured, a key the store lacks (and never deleted) is first asked for on
$SYS.REQ.ACCOUNT.<key>.CLAIMS.LOOKUP; a valid answer is stored and served. The wait is at most
signrequesttimeout once a peer outside this server's group (account servers sharing one KV
bucket) has answered a lookup or brought JWTs in a pack sync; until then the first reply
(another group member's "not held", "no responders") ends it, and after an unanswered lookup
misses wait at most 100 ms. At most nats.maxlookups (64) lookups are open at once; a miss over
that answers 404 at once. A key that missed is not asked again for nats.lookupmissttl (5 s)
unless it changes.

## POST /jwt/v1/accounts/<account public key>
Body: the account JWT (what nsc push sends). The key must equal the JWT subject and the JWT must
be signed by the operator or one of its signing keys, be valid now, not be issued more than
maxclockskew (5 minutes unless configured) ahead of this server's clock, and pass claim
validation (at most 100 issues are listed). JWTs over 16 KiB are validated on a worker thread.
200 stored (or identical to what is stored); 400 with the reason; 409 when a JWT with a newer
issue time (iat) is already stored; 405 on a read-only store or nsc folder; 413 when the body
is too large. Every accepted change is announced once to the nats-servers on
$SYS.ACCOUNT.<key>.CLAIMS.UPDATE.
With signrequestsubject configured, a JWT not signed by a trusted key goes to the signing
service instead, if it is self-signed (iss = sub; a new account, or an update of a stored one):
the JWT it answers with is stored as if uploaded here (200; its sub must be the key, its issuer
trusted); any other answer is relayed as 202 Accepted with the service's text (approval happens
out of band: GET the key later). A JWT signed by another account answers 400 "bad JWT issuer is
not trusted" (key stored) or "bad JWT Issuer/Subject pair in request" (new key). 500
"Failure during signature request. ..." when NATS is down, the service does not answer within
signrequesttimeout, or the request fails; 400 with the service's reason when it refuses.
On a replica (primary configured) the upload is forwarded to the primary and its answer
(status, content type, body) is relayed; after a 200 the replica serves the JWT at once.
503 when the primary cannot be reached (nothing was stored), 502 when its answer broke off.

## GET /jwt/v1/operator, GET /jwt/v2/operator
The operator JWT (when operatorjwtpath is configured), Content-Type application/jwt.
nsc pull -A asks the v2 path first.
Flags text=true and decode=true as for accounts.

## GET /jwt/v1/pack?max=<n>
Every stored account JWT that has not expired, one "<account public key>|<jwt>" per line
(lines separated by a newline, none after the last), text/plain; used to seed replicas.
max limits the number of lines; it defaults to, and may not exceed, maxreplicationpack
(10000 unless configured): a larger value answers 400, as does a max that is not an integer.
max=0 answers an empty body; a negative max means the configured limit.

## POST /jwt/v1/activations
Body: an activation JWT (the token an exporting account gives an importing account). Its
subject must be an account public key and it must name an import subject; it is signed by a
stored account (directly, or by one of its signing keys named with issuer_account) or by a
trusted operator key, must be valid now, not be issued more than maxclockskew ahead of this
server's clock, and pass claim validation. It is stored under its
hash id: base32 (no padding) of SHA-256 of "<issuer>.<subject>.<import subject>", the import
subject cut before its first wildcard ("_" when it starts with one).
200 stored (or identical); 400 with the reason; 409 when a token with a newer iat is stored
under the same hash; 405 on a read-only store or a replica. Each stored token is announced
once on $SYS.ACCOUNT.<issuer>.CLAIMS.ACTIVATE.<hash>.

## GET /jwt/v1/activations/<hash>
The activation JWT stored under that hash id (the padded form with trailing "=" is accepted
too), answered like an account: ETag, Cache-Control, If-None-Match, HEAD, and the text,
decode, check and notify flags. 404 "No Matching JWT" when unknown.

## DELETE /jwt/v1/accounts
Body: an operator-signed delete request, the JWT nsc push --prune and nsc push -R send over
NATS (sub = iss = the operator or one of its signing keys, nats.accounts = the account keys).
The accounts are deleted for good: a tombstone <KEY>.jwt.deleted stays in the store, GET
answers 404, and no sync path brings them back until a new JWT is uploaded deliberately.
200 {"code":200,"message":"deleted <n> accounts","accounts":[...]}; errors are JSON
{"error":{"code":<status>,"description":"<reason>"}} with nats-server's reasons: not self
signed, not trusted, malformed request, not allowed to delete system account, delete must be
enabled in server config (store.allowdelete). The request is forwarded to the nats-servers on
$SYS.REQ.CLAIMS.DELETE.

## GET /jwt/v1/accounts/<account public key>/history
JSON {"account": <key>, "versions": [{"revision", "stored", "iat", "jti", "hash", "issuer",
"size"} or {"revision", "stored", "deleted": true}]}, oldest first: the last store.history
versions; "hash" is the ETag that version was served with (two versions can share iat and jti)
(a JetStream bucket keeps them itself; the directory store in <statedir>/history).
404 (JSON) when there is none.

## GET /jwt/v1/accounts/<account public key>/history/<revision>
The JWT of that past version, application/jwt. To roll back, sign that version anew with the
operator's tooling and upload it: the newest iat always wins.

## GET /healthz
200 with a JSON summary of the store and the NATS connection (liveness).

## GET /readyz
200 {"ready":true} once the store can answer; 503 {"ready":false} while it cannot (a
JetStream bucket not yet reachable or still loading).

## GET /metrics
Prometheus text format: requests by route and status, latencies, store size, lookups, uploads
accepted and refused (by error code), notifications, the NATS link, pack syncs, journal timings.
Configured in the metrics { } section (off, another path, or a listener of its own).

## GET /ui/, /ui/accounts/<key>, /ui/deployment
The read-only console (HTML), when enabled with ui { enabled: true }: accounts with search,
expiry filter and paging; one account's decoded claims, history and diff; the NATS deployment.
Loopback clients only unless ui.user/ui.password or ui.token are set (then required).
`;
