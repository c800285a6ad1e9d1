package transport

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
)

// TestStackRevocation drives mcp-go clients in both eras through the full
// stack: tokens already served (so held by the verified-token cache) are
// refused once revoked by jti, by sid and by subject-before-T, with 401
// invalid_token and an audit event of reason "revoked" holding no token;
// unrelated tokens are still served.
func TestStackRevocation(t *testing.T) {
	rev, err := auth.NewMemoryRevoker(auth.RevokerConfig{})
	require.NoError(t, err)
	var st *stack
	st = newStack(t, func(c *Config) {
		v, err := auth.NewJWTValidator(auth.JWTConfig{Issuer: c.AuthorizationServers[0], Audience: c.Resource, Revoker: rev})
		require.NoError(t, err)
		t.Cleanup(func() { _ = v.Close() })
		c.Validator = v
	})
	iss := st.idp.Issuer()
	for _, era := range eras {
		t.Run(era, func(t *testing.T) {
			claims := func(sub, jti, sid string) map[string]any {
				m := map[string]any{"sub": sub + "-" + era, "jti": jti + "-" + era, "scope": "notes:read"}
				if sid != "" {
					m["sid"] = sid + "-" + era
				}
				return m
			}
			byJTI := st.token(t, claims("alice", "j1", ""))
			sibling := st.token(t, claims("alice", "j2", ""))
			bySID := st.token(t, claims("bob", "j3", "s1"))
			otherSID := st.token(t, claims("bob", "j4", "s2"))
			bySub := st.token(t, claims("carol", "j5", ""))
			unrelated := st.token(t, claims("dave", "j6", ""))

			all := []string{byJTI, sibling, bySID, otherSID, bySub, unrelated}
			clients := make(map[string]func() error, len(all))
			for _, tok := range all {
				c, err := eraClient(t, st.url, tok, era)
				require.NoError(t, err)
				_, err = callText(t, c, "whoami") // warms the verified-token cache
				require.NoError(t, err)
				clients[tok] = func() error { _, err := callText(t, c, "whoami"); return err }
			}

			require.NoError(t, rev.Revoke(t.Context(), auth.Revocation{Issuer: iss, TokenID: "j1-" + era}))
			require.NoError(t, rev.Revoke(t.Context(), auth.Revocation{Issuer: iss, SessionID: "s1-" + era}))
			require.NoError(t, rev.Revoke(t.Context(), auth.Revocation{Issuer: iss, Subject: "carol-" + era}))

			for _, tok := range []string{byJTI, bySID, bySub} {
				assert.Error(t, clients[tok](), "a revoked token is refused on a warm cache")
				status, h, body := rawCall(t, st.url, tok, "whoami", "")
				assert.Equal(t, http.StatusUnauthorized, status)
				assert.Contains(t, h.Get("WWW-Authenticate"), `error="invalid_token", error_description="the access token has been revoked"`)
				assert.NotContains(t, body, "rid=")
			}
			for _, tok := range []string{sibling, otherSID, unrelated} {
				assert.NoError(t, clients[tok](), "an unrelated token is still served")
			}
		})
	}
	require.NoError(t, st.rec.Close())
	log := st.audit.String()
	assert.Contains(t, log, `"reason":"revoked"`)
	assert.Equal(t, 3*2*2, strings.Count(log, `"reason":"revoked"`), "three revoked tokens, each refused twice, in both eras")
	for _, tok := range st.minted {
		assert.NotContains(t, log, tok)
	}
}
