package telemetry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestSpanResourceURIUserinfo: a resources/read URI's userinfo
// ("user:password@", or a token as the user name) never reaches the span's
// mcp.resource.uri; the query (an access_token) does not either.
func TestSpanResourceURIUserinfo(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tel, err := New(Config{TracerProvider: tp})
	require.NoError(t, err)

	const password = "hunter2-Pa55word"
	body := `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"db://admin:` + password + `@host/table?access_token=abc"}}`
	h := tel.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tel.Begin(r, []byte(body))
		w.WriteHeader(http.StatusOK)
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(body)))

	spans := sr.Ended()
	require.Len(t, spans, 1)
	var uri string
	for _, kv := range spans[0].Attributes() {
		assert.NotContains(t, kv.Value.Emit(), password, kv.Key)
		if kv.Key == keyResourceURI {
			uri = kv.Value.AsString()
		}
	}
	assert.Equal(t, "db://[REDACTED]@host/table", uri)
	assert.NotContains(t, spans[0].Name(), password)
}

// TestSourceAndAudienceUserinfo: the JWK Set source and an exchange's
// audience lose their userinfo too.
func TestSourceAndAudienceUserinfo(t *testing.T) {
	assert.Equal(t, "https://[REDACTED]@idp.example/jwks", recordedURI("https://u:pw@idp.example/jwks?k=v"))
	assert.Equal(t, "https://idp.example/jwks", recordedURI("https://idp.example/jwks#f"))
}

// TestSpanTokenShapedNames: a tool or prompt name that looks like a token
// (a client that sent its credential as the name) names no span and no
// attribute: it is Other.
func TestSpanTokenShapedNames(t *testing.T) {
	const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl"
	for _, method := range []string{"tools/call", "prompts/get"} {
		t.Run(method, func(t *testing.T) {
			sr := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
			t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			tel, err := New(Config{TracerProvider: tp})
			require.NoError(t, err)
			body := `{"jsonrpc":"2.0","id":1,"method":"` + method + `","params":{"name":"` + jwt + `"}}`
			h := tel.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				tel.Begin(r, []byte(body))
				w.WriteHeader(http.StatusOK)
			}))
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(body)))
			spans := sr.Ended()
			require.Len(t, spans, 1)
			assert.Equal(t, method+" "+Other, spans[0].Name())
			for _, kv := range spans[0].Attributes() {
				assert.NotContains(t, kv.Value.Emit(), jwt[:20], kv.Key)
			}
		})
	}
}
