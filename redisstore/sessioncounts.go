package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcpguard/mcpguard/transport"
)

// reservationTTL bounds how long a reserved slot lives uncommitted, as in
// transport.MemorySessionCounts: a replica that dies between reserving and
// committing leaks nothing past it.
const reservationTTL = time.Minute

// touchFraction: a Touch reaches Redis only when it extends the slot by
// more than 1/touchFraction of the time left, so a busy session costs one
// round trip per minute or so (15-minute idle time), not one per request.
const touchFraction = 16

// maxTouchMemo caps the sessions whose last touch this replica remembers;
// the memo is emptied when full (the next touch of each goes to Redis).
const maxTouchMemo = 16_384

// SessionCounts is a transport.SessionCounts in Redis, so the live-session
// caps (per owner and in total) hold across replicas. Each owner's slots are
// a sorted set scored by the time the slot expires (its lease: a reservation
// for a minute, a session for its idle time, extended by its requests), the
// total is one more sorted set, and a hash maps each slot to its owner.
// Every change is one Lua script, atomic on the server; expired slots are
// dropped by the scripts, and each key expires with its last slot, so a
// replica that dies leaks nothing: its slots simply run out.
//
// All keys carry the hash tag {sc}, so the scripts work on Redis Cluster
// (one slot holds the counts). Owner keys and members are keyed hashes.
//
// Policy: with FailClosed (the default) a Redis failure makes Reserve fail
// (initialize answers 503); with DegradeLocal Reserve falls back on a
// transport.MemorySessionCounts (per-replica caps) while Redis fails. Touch
// and Release never fail a request: when Redis cannot take them the failure
// is reported and the slot runs out at its lease. A Touch reaches Redis only
// when it extends the lease by more than a sixteenth of the time left, so a
// slot may run out up to that much before its session does.
//
// Construct it with Shared.SessionCounts; it is safe for concurrent use.
type SessionCounts struct {
	s      *Shared
	health *health
	local  *transport.MemorySessionCounts // DegradeLocal reservations

	allKey, slotsKey string

	mu      sync.Mutex
	touched map[string]time.Time // session key → lease last sent
}

var _ transport.SessionCounts = (*SessionCounts)(nil)

// SessionCounts returns the shared live-session counts.
func (s *Shared) SessionCounts(cfg StoreConfig) (*SessionCounts, error) {
	if err := cfg.check("SessionCounts"); err != nil {
		return nil, err
	}
	return &SessionCounts{
		s:        s,
		health:   s.health(StoreSessionCounts, cfg.Policy),
		local:    &transport.MemorySessionCounts{},
		allKey:   s.prefix + "{sc}all",
		slotsKey: s.prefix + "{sc}slots",
		touched:  make(map[string]time.Time),
	}, nil
}

// Reservations are "r." + owner digest + "." + random, so Commit and
// Release know the owner's key; local ones (DegradeLocal) start "l.".
const (
	remotePrefix = "r."
	localPrefix  = "l."
)

var reserveScript = redis.NewScript(`
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, tonumber(first[2]) - now}
end
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 128)
for _, m in ipairs(gone) do
  redis.call('ZREM', KEYS[2], m)
  redis.call('HDEL', KEYS[3], m)
end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then
  return {0, 1000}
end
redis.call('ZADD', KEYS[1], ARGV[5], ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4])
redis.call('HSET', KEYS[3], ARGV[4], KEYS[1])
for i = 1, 2 do
  local last = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[i], last[2])
  if i == 2 then redis.call('PEXPIREAT', KEYS[3], last[2]) end
end
return {1, 0}
`)

// commitScript renames reservation ARGV[1] to session ARGV[2] with lease
// ARGV[3]; a reservation that ran out meanwhile commits nothing.
var commitScript = redis.NewScript(`
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[2], KEYS[1])
for i = 1, 2 do
  local last = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[i], last[2])
  if i == 2 then redis.call('PEXPIREAT', KEYS[3], last[2]) end
end
return 1
`)

// touchScript extends member ARGV[1]'s lease to ARGV[2] if it is still
// held by owner KEYS[1].
var touchScript = redis.NewScript(`
if redis.call('HGET', KEYS[3], ARGV[1]) ~= KEYS[1] then return 0 end
redis.call('ZADD', KEYS[1], 'XX', 'GT', ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[2], 'XX', 'GT', ARGV[2], ARGV[1])
for i = 1, 2 do
  local last = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
  if last[2] then
    redis.call('PEXPIREAT', KEYS[i], last[2])
    if i == 2 then redis.call('PEXPIREAT', KEYS[3], last[2]) end
  end
end
return 1
`)

var releaseScript = redis.NewScript(`
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
`)

func unixMilli(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

func (c *SessionCounts) ownerKey(ownerDigest string) string {
	return c.s.prefix + "{sc}o:" + ownerDigest
}

func (c *SessionCounts) sessionMember(session string) string {
	sum := c.s.digest("session", []byte(session))
	return "s:" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// Reserve implements transport.SessionCounts.
func (c *SessionCounts) Reserve(ctx context.Context, owner string, limits transport.SessionLimits, now time.Time) (string, time.Duration, error) {
	if c.health.Skip() {
		return c.reserveLocal(ctx, owner, limits, now, nil)
	}
	sum := c.s.digest("owner", []byte(owner))
	od := base64.RawURLEncoding.EncodeToString(sum[:])
	var rnd [16]byte
	_, _ = rand.Read(rnd[:])
	member := remotePrefix + od + "." + base64.RawURLEncoding.EncodeToString(rnd[:])
	res, err := reserveScript.Run(ctx, c.s.client,
		[]string{c.ownerKey(od), c.allKey, c.slotsKey},
		now.UnixMilli(), limits.PerOwner, limits.Total, member, unixMilli(now.Add(reservationTTL)),
	).Int64Slice()
	if err != nil {
		return c.reserveLocal(ctx, owner, limits, now, err)
	}
	c.health.OK(ctx)
	if len(res) != 2 {
		return c.reserveLocal(ctx, owner, limits, now, errors.New("unexpected script answer"))
	}
	if res[0] == 0 {
		return "", max(time.Duration(res[1])*time.Millisecond, 0), transport.ErrSessionLimit
	}
	return member, 0, nil
}

func (c *SessionCounts) reserveLocal(ctx context.Context, owner string, limits transport.SessionLimits, now time.Time, cause error) (string, time.Duration, error) {
	err := c.health.Fail(ctx, cause)
	if c.health.Policy() != DegradeLocal {
		return "", 0, err
	}
	r, retry, err := c.local.Reserve(ctx, owner, limits, now)
	if err != nil {
		return "", retry, err
	}
	return localPrefix + r, 0, nil
}

// remoteOwner returns the owner key of a remote reservation.
func (c *SessionCounts) remoteOwner(reservation string) (string, bool) {
	rest, ok := strings.CutPrefix(reservation, remotePrefix)
	if !ok {
		return "", false
	}
	od, _, ok := strings.Cut(rest, ".")
	return c.ownerKey(od), ok
}

// Commit implements transport.SessionCounts. A failure is reported, not
// returned: the reservation runs out within a minute.
func (c *SessionCounts) Commit(ctx context.Context, reservation, session string, until time.Time) error {
	if r, ok := strings.CutPrefix(reservation, localPrefix); ok {
		return c.local.Commit(ctx, r, session, until)
	}
	ownerKey, ok := c.remoteOwner(reservation)
	if !ok {
		return nil
	}
	err := commitScript.Run(ctx, c.s.client, []string{ownerKey, c.allKey, c.slotsKey},
		reservation, c.sessionMember(session), unixMilli(until)).Err()
	c.report(ctx, err)
	if err == nil {
		c.remember(session, until)
	}
	return nil
}

// Touch implements transport.SessionCounts. It reaches Redis only when the
// lease grows by more than a sixteenth of the time left; a failure is
// reported, not returned.
func (c *SessionCounts) Touch(ctx context.Context, session string, until time.Time) error {
	_ = c.local.Touch(ctx, session, until)
	now := c.s.now()
	c.mu.Lock()
	last, ok := c.touched[session]
	c.mu.Unlock()
	if ok && until.Sub(last) <= until.Sub(now)/touchFraction {
		return nil
	}
	if c.health.Skip() {
		_ = c.health.Fail(ctx, nil)
		return nil
	}
	member := c.sessionMember(session)
	ownerKey, err := c.s.client.HGet(ctx, c.slotsKey, member).Result()
	if isRedisNil(err) {
		c.health.OK(ctx)
		return nil // not counted here (committed while Redis failed, or run out)
	}
	if err == nil {
		err = touchScript.Run(ctx, c.s.client, []string{ownerKey, c.allKey, c.slotsKey}, member, unixMilli(until)).Err()
	}
	c.report(ctx, err)
	if err == nil {
		c.remember(session, until)
	}
	return nil
}

// Release implements transport.SessionCounts; a failure is reported, not
// returned: the slot runs out at its lease.
func (c *SessionCounts) Release(ctx context.Context, key string) error {
	if r, ok := strings.CutPrefix(key, localPrefix); ok {
		return c.local.Release(ctx, r)
	}
	_ = c.local.Release(ctx, key)
	c.mu.Lock()
	delete(c.touched, key)
	c.mu.Unlock()
	if c.health.Skip() {
		_ = c.health.Fail(ctx, nil)
		return nil
	}
	ownerKey, ok := c.remoteOwner(key)
	member := key
	if !ok {
		member = c.sessionMember(key)
		var err error
		ownerKey, err = c.s.client.HGet(ctx, c.slotsKey, member).Result()
		if isRedisNil(err) {
			c.health.OK(ctx)
			return nil
		}
		if err != nil {
			c.report(ctx, err)
			return nil
		}
	}
	err := releaseScript.Run(ctx, c.s.client, []string{ownerKey, c.allKey, c.slotsKey}, member).Err()
	c.report(ctx, err)
	return nil
}

func (c *SessionCounts) report(ctx context.Context, err error) {
	if err != nil {
		_ = c.health.Fail(ctx, err)
		return
	}
	c.health.OK(ctx)
}

func (c *SessionCounts) remember(session string, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.touched) >= maxTouchMemo {
		clear(c.touched)
	}
	c.touched[session] = until
}

// Len reports the slots held in Redis (live or not yet pruned) plus the
// local ones, for the sessions gauge; -1 when Redis cannot answer.
func (c *SessionCounts) Len() int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	n, err := c.s.client.ZCard(ctx, c.allKey).Result()
	if err != nil {
		return c.local.Len()
	}
	return int(n) + c.local.Len()
}
