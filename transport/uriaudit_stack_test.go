package transport

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestStackResourceUserinfoNotRecorded: a resources/read URI carrying
// userinfo ("user:password@", as in a database URL) is served as mcp-go
// serves it, but neither the audit trail nor a span records the password:
// the read that ran (resource_read), the edge's refusal of a caller without
// the scope (with step-up on) and the authoritative refusal (step-up off)
// all name the resource as notes://[REDACTED]@public/readme, in both eras.
func TestStackResourceUserinfoNotRecorded(t *testing.T) {
	const password = "hunter2-Pa55word"
	const uri = "notes://admin:" + password + "@public/readme?access_token=abc"
	const want = "notes://[REDACTED]@public/readme"
	for _, era := range eras {
		for _, stepUp := range []bool{true, false} {
			t.Run(era+"/stepup="+strconv.FormatBool(stepUp), func(t *testing.T) {
				sr := tracetest.NewSpanRecorder()
				tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
				t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
				st := newMediationStackWith(t, func(c *Config) { c.TracerProvider = tp; c.DisableStepUp = !stepUp }, nil)
				reader := st.token(t, map[string]any{"sub": "bob", "scope": "notes:read"})
				nobody := st.token(t, map[string]any{"sub": "carol", "scope": "other"})

				got, err := readResource(st.connect(t, reader, era), uri)
				require.NoError(t, err)
				assert.Contains(t, got, "note admin:"+password+"@public/readme", "mcp-go serves the URI")
				_, err = readResource(st.connect(t, nobody, era), uri)
				require.Error(t, err)

				require.NoError(t, st.rec.Close())
				out := st.audit.String()
				assert.NotContains(t, out, password)
				assert.NotContains(t, out, "access_token")
				var kinds []string
				for _, e := range auditEvents(t, st) {
					if r, ok := e["resource"]; ok {
						assert.Equal(t, want, r, e)
						kinds = append(kinds, e["kind"].(string)+":"+e["subject"].(string))
					}
				}
				assert.Contains(t, kinds, "resource_read:bob")
				assert.True(t, strings.Contains(strings.Join(kinds, ","), ":carol"), "the refusal of carol names the resource: %v", kinds)

				var uris []string
				for _, s := range sr.Ended() {
					for _, kv := range s.Attributes() {
						assert.NotContains(t, kv.Value.Emit(), password, "%s %s", s.Name(), kv.Key)
						if kv.Key == "mcp.resource.uri" {
							uris = append(uris, kv.Value.AsString())
						}
					}
					assert.NotContains(t, s.Name(), password)
				}
				require.NotEmpty(t, uris)
				for _, u := range uris {
					assert.Equal(t, want, u)
				}
			})
		}
	}
}
