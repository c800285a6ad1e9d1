package redisstore_test

import (
	"crypto/rand"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/obo"
	"github.com/mcpguard/mcpguard/redisstore"
	"github.com/mcpguard/mcpguard/transport"
)

// Every store shared among replicas, on one client and one seal key (read
// it from your secret store: every replica needs the same 32 bytes).
func ExampleNew() {
	rdb := redis.NewClient(&redis.Options{
		Addr:         "127.0.0.1:6379",
		DialTimeout:  200 * time.Millisecond,
		ReadTimeout:  100 * time.Millisecond,
		WriteTimeout: 100 * time.Millisecond,
		MaxRetries:   1,
	})
	defer rdb.Close()
	sealKey := make([]byte, redisstore.SealKeySize)
	_, _ = rand.Read(sealKey)

	shared, err := redisstore.New(redisstore.Config{Client: rdb, SealKey: sealKey})
	if err != nil {
		panic(err)
	}
	terminated, err := shared.TerminatedSessions(redisstore.StoreConfig{}) // fail closed
	if err != nil {
		panic(err)
	}
	defer terminated.Close() // stops its poller
	counts, err := shared.SessionCounts(redisstore.StoreConfig{})
	if err != nil {
		panic(err)
	}
	replay, err := shared.ReplayStore(redisstore.StoreConfig{})
	if err != nil {
		panic(err)
	}
	_ = transport.SessionConfig{Terminated: terminated, Counts: counts}
	_ = auth.DPoPConfig{Mode: auth.DPoPAllowed, Replay: replay}
	_ = obo.Config{SharedCache: shared.TokenCache()}
	_ = auth.IntrospectionConfig{SharedCache: shared.IntrospectionCache()}
}
