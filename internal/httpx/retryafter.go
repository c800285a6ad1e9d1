package httpx

import "time"

// RetryAfterSeconds renders d for a Retry-After header (RFC 9110 §10.2.3):
// whole seconds, rounded up, at least 1.
func RetryAfterSeconds(d time.Duration) int64 {
	s := int64(d / time.Second)
	if d%time.Second > 0 {
		s++
	}
	return max(s, 1)
}
