package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDualDPoPReplayAcrossPaths: a DPoP proof accepted on the dual-token
// path (the service acting for a user) must not be accepted again on the
// direct path (the service acting as itself) when Direct is another
// validator: each validator's default replay store is its own, so the proof
// was remembered by Service only and Direct took it once more, with any
// request body.
func TestDualDPoPReplayAcrossPaths(t *testing.T) {
	for _, shared := range []bool{false, true} {
		t.Run(map[bool]string{false: "own stores", true: "one shared store"}[shared], func(t *testing.T) {
			var store ReplayStore
			if shared {
				store = NewMemoryReplayStore(0)
			}
			f := newDPoPFixture(t, DPoPAllowed, func(c *JWTConfig) { c.ClientIDs = []string{"svc"}; c.DPoP.Replay = store })
			direct := newValidator(t, f.idp, f.clock, func(c *JWTConfig) {
				c.DPoP = DPoPConfig{Mode: DPoPAllowed, Resource: dpopResource, Replay: store}
			})
			d, err := NewDualValidator(DualConfig{
				Service: f.v, User: direct, Direct: direct,
				ServiceClientIDs: []string{"svc"}, UserIssuers: []string{f.idp.Issuer()},
			})
			if !shared {
				// Separate stores: refused, naming what to fix.
				assert.ErrorIs(t, err, ErrConfig)
				assert.ErrorContains(t, err, "DualConfig.Direct")
				assert.ErrorContains(t, err, "DPoPConfig.Replay")
				// Before, it was accepted and the replay below was served.
				d = &DualValidator{service: f.v, user: direct, direct: direct, header: DefaultUserTokenHeader,
					clients: map[string][]string{"svc": {f.idp.Issuer()}}}
			} else {
				require.NoError(t, err)
			}
			mw, err := DualMiddleware(d, MiddlewareConfig{ResourceMetadataURL: testMetaURL})
			require.NoError(t, err)
			h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
			svc := f.idp.MustMintBound(map[string]any{"sub": "svc", "client_id": "svc"}, f.key)
			user := f.idp.MustMint(map[string]any{"sub": "bob"})
			do := func(userTok, proof string) int {
				r := httptest.NewRequest(http.MethodPost, dpopResource, nil)
				r.Header.Set("Authorization", "DPoP "+svc)
				if userTok != "" {
					r.Header.Set(DefaultUserTokenHeader, userTok)
				}
				r.Header.Set("DPoP", proof)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				return w.Code
			}
			proof := f.proof(svc, nil)
			require.Equal(t, http.StatusNoContent, do(user, proof), "the dual request is served")
			got := do("", proof)
			if shared {
				assert.Equal(t, http.StatusUnauthorized, got, "the same proof replayed on the direct path")
			} else {
				assert.Equal(t, http.StatusNoContent, got, "what the refused configuration allowed")
			}
		})
	}
}

// TestDualReplayStoreCheck: validators whose stores cannot be compared
// (func adapters) or that do not check proofs do not make NewDualValidator
// panic, and one validator on both paths is always accepted.
func TestDualReplayStoreCheck(t *testing.T) {
	f := newDPoPFixture(t, DPoPAllowed, nil)
	fn := ValidatorFunc(func(context.Context, string) (*Principal, error) { return nil, ErrInvalidToken })
	for _, tc := range []struct {
		name            string
		service, direct Validator
		ok              bool
	}{
		{"one validator", f.v, f.v, true},
		{"func validators", fn, fn, true},
		{"bearer-only direct", f.v, fn, true},
		{"func replay stores", f.v, newValidator(t, f.idp, f.clock, func(c *JWTConfig) {
			c.DPoP = DPoPConfig{Mode: DPoPAllowed, Resource: dpopResource, Replay: replayFunc(func(context.Context, string, time.Time) (bool, error) { return false, nil })}
		}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewDualValidator(DualConfig{Service: tc.service, User: tc.direct, Direct: tc.direct,
				ServiceClientIDs: []string{"svc"}, UserIssuers: []string{f.idp.Issuer()}})
			if tc.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, ErrConfig)
			}
		})
	}
}
