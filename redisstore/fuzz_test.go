package redisstore

import (
	"testing"

	"github.com/redis/go-redis/v9"
)

// FuzzOpen: whatever a Redis value holds (another deployment's, a forged
// one), Open never panics and opens only what Seal produced under the key.
func FuzzOpen(f *testing.F) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	s, err := New(Config{Client: c, SealKey: testKey(3)})
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(nil))
	f.Add([]byte{sealVersion})
	f.Add(s.seal("k", []byte(`{"t":"x","e":1,"r":1}`)))
	f.Fuzz(func(t *testing.T, v []byte) {
		p, err := s.open("k", v)
		if err == nil {
			// Only a sealed value opens: sealing p again must give a value
			// of the same length (version, nonce, ciphertext, tag).
			if len(s.seal("k", p)) != len(v) {
				t.Fatalf("opened a value that Seal did not make")
			}
		}
	})
}

// FuzzDecodeTerminated: whatever a member of the terminated-sessions set
// holds, decodeTerminated never panics and accepts only what
// encodeTerminated writes (so it round-trips).
func FuzzDecodeTerminated(f *testing.F) {
	f.Add("")
	f.Add(encodeTerminated([32]byte{1, 2, 3}))
	f.Add(encodeTerminated([32]byte{1, 2, 3}) + "=")
	f.Add("tAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB")
	f.Fuzz(func(t *testing.T, m string) {
		d, ok := decodeTerminated(m)
		if ok && encodeTerminated(d) != m {
			t.Fatalf("accepted %q, which encodes as %q", m, encodeTerminated(d))
		}
	})
}
