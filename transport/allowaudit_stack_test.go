package transport

import (
	"context"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStackMediatedAllowAudited: a mediated request with no middleware of
// its own — completion/complete, resources/subscribe — is decided by the
// policy's request hook; an allowed one is audited as access_allowed with
// the caller, tenant and method, as its refusal is audited as
// access_denied, in both eras. Before, the allow left no trace.
func TestStackMediatedAllowAudited(t *testing.T) {
	st := newMediationStack(t, nil)
	reader := st.token(t, map[string]any{"sub": "bob", "scope": "notes:read"})
	want := map[string]int{}
	for _, era := range eras {
		t.Run(era, func(t *testing.T) {
			c := st.connect(t, reader, era)
			got, err := complete(c, mcp.PromptReference{Type: "ref/prompt", Name: "notes_digest"})
			require.NoError(t, err)
			assert.Equal(t, []string{"secret-key"}, got)
			want[string(mcp.MethodCompletionComplete)]++
			_, err = complete(c, mcp.PromptReference{Type: "ref/prompt", Name: "admin_digest"})
			require.Error(t, err, "refused: notes:admin")
			if era == mcp.ProtocolVersion20251125 {
				require.NoError(t, c.Subscribe(context.Background(), mcp.SubscribeRequest{Params: mcp.SubscribeParams{URI: "notes://public/readme?x=1"}}))
				want[string(mcp.MethodResourcesSubscribe)]++
			}
		})
	}
	require.NoError(t, st.rec.Close())
	got := map[string]int{}
	denied := 0
	for _, e := range auditEvents(t, st) {
		switch e["kind"] {
		case "access_allowed":
			assert.Equal(t, "allow", e["decision"], e)
			assert.Equal(t, "bob", e["subject"], e)
			assert.Equal(t, "acme", e["tenant"], e)
			if e["method"] == string(mcp.MethodResourcesSubscribe) {
				assert.Equal(t, "notes://public/readme", e["resource"], e)
			}
			got[e["method"].(string)]++
		case "access_denied":
			if e["method"] == string(mcp.MethodCompletionComplete) {
				denied++
			}
		}
	}
	assert.Equal(t, want, got)
	assert.Equal(t, 2, denied, "the refusals, one per era")
}
