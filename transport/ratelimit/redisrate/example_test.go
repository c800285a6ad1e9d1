package redisrate_test

import (
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcpguard/mcpguard/transport/ratelimit"
	"github.com/mcpguard/mcpguard/transport/ratelimit/redisrate"
)

// Replicas share budgets through Redis. Fail closed is the default; keep
// the client's timeouts short, since every request waits on Redis.
func ExampleNew() {
	rdb := redis.NewClient(&redis.Options{
		Addr:         "127.0.0.1:6379",
		DialTimeout:  200 * time.Millisecond,
		ReadTimeout:  100 * time.Millisecond,
		WriteTimeout: 100 * time.Millisecond,
		MaxRetries:   1,
	})
	lim, err := redisrate.New(redisrate.Config{
		Client:        rdb,
		FailurePolicy: redisrate.FailClosed,
	})
	if err != nil {
		panic(err)
	}
	_, _ = ratelimit.NewRequestLimit(ratelimit.RequestLimitConfig{Limiter: lim, Limit: ratelimit.PerSecond(20)})
}
