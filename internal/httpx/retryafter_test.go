package httpx

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int64{
		0:                      1,
		time.Nanosecond:        1,
		999 * time.Millisecond: 1,
		time.Second:            1,
		time.Second + 1:        2,
		90 * time.Second:       90,
		12*time.Minute - 1:     720,
		-5 * time.Second:       1,
	} {
		assert.Equal(t, want, RetryAfterSeconds(d), "%v", d)
	}
}
