/**
 * The configuration of the user's seed document ("Store Notifications"), kept verbatim (trailing
 * commas and all): every test that claims it loads unchanged uses this one copy.
 */
export const SEED_CONF = `operatorjwtpath: "/users/synadia/.nsc/nats/AAA/AAA.jwt",
systemaccountjwtpath: "/users/synadia/.nsc/nats/AAA/accounts/SYS/SYS.jwt"
http {
port: 9090
},
store {
dir: "/tmp/as_store",
readonly: false,
shard: true
}
nats {
servers: [nats://localhost:4222]
usercredentials: "/Users/synadia/.nkeys/AAA/accounts/SYS/users/sys.creds"
}
`;
