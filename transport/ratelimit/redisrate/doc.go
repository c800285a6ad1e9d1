// Package redisrate is a ratelimit.Limiter kept in Redis, so any number of
// replicas share one budget per key: GCRA run as one atomic script on the
// Redis server (github.com/go-redis/redis_rate/v10), with a failure policy
// for when Redis cannot answer (FailClosed, the default, refuses with
// ratelimit.ErrUnavailable; FailOpen lets the event through and reports the
// error in Decision.FailedOpen).
//
// Typical wiring, with the client's timeouts kept short because every
// request waits on Redis:
//
//	rdb := redis.NewClient(&redis.Options{Addr: "redis:6379",
//		DialTimeout: 200 * time.Millisecond, ReadTimeout: 100 * time.Millisecond,
//		WriteTimeout: 100 * time.Millisecond, MaxRetries: 1})
//	lim, err := redisrate.New(redisrate.Config{Client: rdb})
//	...
//	requests, err := ratelimit.NewRequestLimit(ratelimit.RequestLimitConfig{
//		Limiter: lim, Limit: ratelimit.PerSecond(20)})
//
// # Dependencies
//
// With redisstore, one of the two mcpguard packages that import Redis:
// github.com/redis/go-redis/v9 (with github.com/cespare/xxhash/v2,
// go.uber.org/atomic and golang.org/x/sys) and
// github.com/go-redis/redis_rate/v10, besides what transport/ratelimit
// brings. Importing transport or ratelimit does not pull them in.
package redisrate
