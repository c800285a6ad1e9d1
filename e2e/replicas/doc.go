// Package replicas runs two examples/prodmode processes behind one
// redis-server (MCPGUARD_REDIS_URL, MCPGUARD_SEAL_KEY) and checks that they
// agree on every shared store (sessions, DPoP replay, rate limits, and the
// exchanged tokens of downstream_get: one exchange for both replicas), what
// each store does while Redis is down,
// that service resumes when it is back, and that Redis holds no token,
// secret or subject. The tests skip when redis-server is not installed.
package replicas
