// Package redisstore keeps the cross-request state of mcpguard in Redis,
// so that any number of replicas behind a load balancer agree: terminated
// sessions, live-session counts per principal, DPoP proof replay, the
// exchanged-token cache of package obo and the introspection cache of
// package auth. (The Redis rate limiter is transport/ratelimit/redisrate;
// share one client between both.)
//
// Every store is built on Shared: one redis.UniversalClient (standalone,
// Sentinel or Cluster), a key prefix, and a 32-byte seal key every replica
// holds. No identifier is stored in clear: each Redis key is the prefix, a
// namespace and the HMAC-SHA256 of the identifier under a key derived from
// the seal key. Cached tokens and introspection answers are sealed with
// AES-256-GCM (key derived from the seal key, the Redis key as associated
// data) before they leave the process, so a dump of Redis yields no token,
// secret or subject. Every expiry is the one the in-memory store would
// use, rounded down to the millisecond: never past a token's expiry or a
// session's idle time. What refuses rounds the other way: a DPoP proof's
// record and a revocation (its expiry and a subject's issued-before bound)
// round up, so none is weaker than in memory.
//
// # Failure policy
//
// Each store follows a FailurePolicy when Redis cannot answer:
//
//	store                 default       on failure
//	TerminatedSessions    FailClosed    once its copy is older than MaxStaleness (1 s), requests carrying a session ID it does not know as ended get 503, and Terminate is refused (DegradeLocal: the last copy answers); what it ended stays 404, and goes to Redis once back
//	SessionCounts         FailClosed    initialize answers 503 (DegradeLocal: per-replica caps); touches and releases are dropped, the slot expires
//	Limiter (rate limits) FailClosed    503 (DegradeLocal: counted in this replica's memory)
//	ReplayStore           FailClosed    DPoP proofs are refused with 503 (DegradeLocal: per-replica replay check)
//	TokenCache (obo)      DegradeLocal  the exchanger's own memory cache; a miss exchanges again
//	IntrospectionCache    DegradeLocal  the validator's own caches; a miss introspects again
//	Revoker               FailClosed    once its copy is older than MaxStaleness (1 s), tokens it does not refuse get 503 (DegradeLocal: the last copy answers); what the copy refuses stays refused
//
// After a failure a store skips Redis for Config.RetryAfter (500 ms by
// default), answering by its policy at once, then tries again: service
// resumes by itself when Redis is back, no restart needed. Config.Reporter
// hears of each failure (at most once a second per store) and of each
// recovery: pass the *audit.Recorder, which records them as
// audit.KindStoreFailure events and whose telemetry observer counts them
// (mcpguard.store.events), or a *telemetry.Telemetry alone for the metric.
//
// Typical wiring:
//
//	rdb := redis.NewClient(&redis.Options{Addr: "redis:6379",
//		DialTimeout: 200 * time.Millisecond, ReadTimeout: 100 * time.Millisecond,
//		WriteTimeout: 100 * time.Millisecond, MaxRetries: 1})
//	shared, err := redisstore.New(redisstore.Config{Client: rdb, SealKey: key, Reporter: rec})
//	terminated, err := shared.TerminatedSessions(redisstore.StoreConfig{}) // Close it on shutdown
//	counts, err := shared.SessionCounts(redisstore.StoreConfig{})
//	replay, err := shared.ReplayStore(redisstore.StoreConfig{})
//	limiter, err := shared.RateLimiter(redisstore.StoreConfig{})
//	... auth.JWTConfig{DPoP: auth.DPoPConfig{Replay: replay}}
//	... obo.Config{SharedCache: shared.TokenCache()}
//	... auth.IntrospectionConfig{SharedCache: shared.IntrospectionCache()}
//	guard, err := transport.New(transport.Config{
//		SessionKey: sessionKey, // the same on every replica
//		Sessions:   transport.SessionConfig{Terminated: terminated, Counts: counts},
//		...
//	})
//
// examples/prodmode wires all of it from MCPGUARD_REDIS_URL and
// MCPGUARD_SEAL_KEY.
//
// # Revocation
//
// Shared.Revoker is an auth.Revoker (set it as JWTConfig.Revoker or
// IntrospectionConfig.Revoker) whose list every replica shares: a token
// revoked on one replica (Revoker.Revoke, by jti, sid or subject-before-T)
// is refused by every replica within RevokerConfig.MaxStaleness, one second
// by default — a bound that holds by construction (a replica answers "not
// revoked" only from a copy confirmed against Redis less than MaxStaleness
// ago), measured by TestRevokerAcrossReplicas at about the poll interval
// (250 ms). Each replica polls a version counter (one GET every quarter of
// MaxStaleness) and reloads the entries when it moves, so Check does no
// Redis round trip on the warm path; see Revoker for why polling and not
// pub/sub. Entries are keyed digests, expire with the longest token they
// can affect, and are capped for all replicas together. If Redis loses its
// data, the replicas put their entries back.
//
// # Terminated sessions
//
// Shared.TerminatedSessions works the same way (the mechanism is shared):
// a session ended on one replica is refused (404) by every replica within
// StoreConfig.MaxStaleness, one second by default, measured by
// TestTerminatedAcrossReplicas at about the poll interval; the replica
// that ended it refuses it at once. A warm request carrying a session ID
// makes no Redis round trip for it (BenchmarkWarmCall/terminated_check:
// a map lookup under a read lock and one keyed hash, no allocation). The
// entries are keyed digests of the session keys, scored by the expiry
// Terminate was given (the session's idle time), capped for all replicas
// together at StoreConfig.LocalMax (transport.DefaultMaxTerminatedSessions
// when zero; a Terminate beyond it fails closed, 503).
//
// StoreConfig.Immediate trades that round trip for immediacy: a session
// the copy does not know as ended is looked up in Redis (one ZSCORE) on
// every request, so a session ended on one replica is refused by every
// other at once (TestTerminatedImmediate). examples/prodmode sets it.
//
// # Dependencies
//
// Besides the standard library: github.com/redis/go-redis/v9 (with its own
// cespare/xxhash/v2, go.uber.org/atomic and golang.org/x/sys) and, through
// transport/ratelimit/redisrate, github.com/go-redis/redis_rate/v10; through transport (whose stores it implements), auth
// and obo, everything transport brings in: github.com/mark3labs/mcp-go
// (with its own google/jsonschema-go, google/uuid,
// santhosh-tekuri/jsonschema, spf13/cast and yosida95/uritemplate),
// golang-jwt/jwt/v5, MicahParks/jwkset, golang.org/x/oauth2,
// golang.org/x/sync, golang.org/x/text, golang.org/x/time and the
// OpenTelemetry API (go.opentelemetry.io/otel with its metric, trace and
// log modules, go.opentelemetry.io/auto/sdk and go-logr), never the
// OpenTelemetry SDK. Importing transport, auth or obo does not pull Redis
// in: only this package and redisrate import go-redis.
package redisstore
