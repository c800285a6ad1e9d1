package transport

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/obo"
	"github.com/mcpguard/mcpguard/telemetry"
	"github.com/mcpguard/mcpguard/tenancy"
)

// hookStack is the prod stack with a JWT validator and, for opaque tokens,
// an introspection validator behind a chain, and a "downstream" tool that
// exchanges the caller's token with obo — every hook telemetry adapts.
type hookStack struct {
	url    string
	idp    *authtest.Server
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	guard  *Guard
}

const hookSecret = "rs-secret-0123456789"

func newHookStack(t *testing.T) *hookStack {
	t.Helper()
	idp := authtest.NewServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "http://" + ln.Addr().String() + "/mcp"
	require.NoError(t, idp.RegisterClient(authtest.Client{ID: "mcp-rs", Secret: hookSecret, AuthMethod: authtest.ClientSecretBasic, Audience: url}))

	jv, err := auth.NewJWTValidator(auth.JWTConfig{Issuer: idp.Issuer(), Audience: url, RefetchCooldown: 5 * time.Minute})
	require.NoError(t, err)
	t.Cleanup(func() { _ = jv.Close() })
	iv, err := auth.NewIntrospectionValidator(auth.IntrospectionConfig{
		Issuer: idp.Issuer(), Endpoint: idp.IntrospectionURL(), Audience: url,
		ClientID: "mcp-rs", ClientSecret: auth.NewCredential(hookSecret),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = iv.Close() })
	chain, err := auth.NewChainValidator(auth.ChainConfig{JWT: jv, Opaque: iv})
	require.NoError(t, err)
	res, err := tenancy.New(tenancy.Config{})
	require.NoError(t, err)
	sink, err := audit.NewJSONSink(io.Discard)
	require.NoError(t, err)
	rec, err := audit.New(audit.Config{Sink: sink})
	require.NoError(t, err)
	pl, err := authz.New(authz.Config{ToolRules: map[string]authz.Rule{
		"whoami": {Authenticated: true}, "downstream": {Authenticated: true},
	}})
	require.NoError(t, err)

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()); _ = tp.Shutdown(context.Background()) })

	g, err := New(Config{
		Resource: url, AuthorizationServers: []string{idp.Issuer()},
		Validator: chain, Policy: pl, Tenancy: res, Audit: rec,
		MeterProvider: mp, TracerProvider: tp,
	})
	require.NoError(t, err)
	ex, err := obo.New(obo.Config{
		TokenEndpoint: idp.TokenURL(), ClientID: "mcp-rs", ClientSecret: auth.NewCredential(hookSecret),
		AuthMethod: obo.ClientSecretBasic, Audit: rec, Observer: g.Telemetry(),
		HTTPClient: &http.Client{Transport: spanningTransport{tracer: tp.Tracer("test-httpclient"), base: http.DefaultTransport}},
	})
	require.NoError(t, err)

	srv := server.NewMCPServer("hooks", "1.0", g.ServerOptions()...)
	srv.AddTool(mcp.NewTool("whoami"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		p, _ := auth.FromContext(ctx)
		return mcp.NewToolResultText(p.Subject), nil
	})
	srv.AddTool(mcp.NewTool("downstream"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		if _, err := ex.Token(ctx, obo.Target{Flavor: obo.TokenExchange, Audience: "https://calendar.example.com", Scopes: []string{"calendar.read"}}); err != nil {
			return mcp.NewToolResultError("exchange failed: " + err.Error()), nil
		}
		return mcp.NewToolResultText("exchanged"), nil
	})
	hs := &http.Server{Handler: g.Handler(srv), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close(); _ = rec.Close() })
	return &hookStack{url: url, idp: idp, reader: reader, spans: sr, guard: g}
}

// spanHTTPClient is the name of the spans spanningTransport makes.
const spanHTTPClient = "HTTP POST"

// spanningTransport stands in for an instrumented HTTP client
// (otelhttp.NewTransport): each request gets a CLIENT span started from
// the request's context, and the request goes out in the span's context.
type spanningTransport struct {
	tracer trace.Tracer
	base   http.RoundTripper
}

func (s spanningTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, span := s.tracer.Start(r.Context(), spanHTTPClient, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("server.address", r.URL.Host)))
	defer span.End()
	resp, err := s.base.RoundTrip(r.WithContext(ctx))
	if err == nil {
		span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	}
	return resp, err
}

// httpChildOf returns the one spanningTransport span whose parent is
// parent.
func httpChildOf(t *testing.T, sr *tracetest.SpanRecorder, parent sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range findSpans(sr, spanHTTPClient) {
		if s.Parent().SpanID() == parent.SpanContext().SpanID() && s.Parent().TraceID() == parent.SpanContext().TraceID() {
			found = append(found, s)
		}
	}
	require.Len(t, found, 1, "one HTTP client span under %s", parent.Name())
	return found[0]
}

// open starts a 2025-11-25 session for token, returning its ID; for
// 2026-07-28 it does nothing and returns "".
func (s *hookStack) open(t *testing.T, era, token string) string {
	t.Helper()
	if era == mcp.ProtocolVersion20260728 {
		return ""
	}
	resp := rawInit(t, s.url, token)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	sid := resp.Header.Get("Mcp-Session-Id")
	require.NotEmpty(t, sid)
	return sid
}

// call posts one tools/call in era and returns the status and body.
func (s *hookStack) call(t *testing.T, era, sid, token, tool string) (int, string) {
	t.Helper()
	meta := ""
	if era == mcp.ProtocolVersion20260728 {
		meta = `,"_meta":{"` + mcp.MetaKeyProtocolVersion + `":"` + era + `","` + mcp.MetaKeyClientInfo + `":{"name":"t","version":"1"},"` +
			mcp.MetaKeyClientCapabilities + `":{}}`
	}
	body := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"` + tool + `","arguments":{}` + meta + `}}`
	req, err := http.NewRequest(http.MethodPost, s.url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set(mcp.HeaderProtocolVersion, era)
	if era == mcp.ProtocolVersion20260728 {
		req.Header.Set(mcp.HeaderMethod, "tools/call")
		req.Header.Set(mcp.HeaderName, tool)
	} else {
		req.Header.Set("Mcp-Session-Id", sid)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// serverSpanOf returns the SERVER span that is span's parent.
func serverSpanOf(t *testing.T, sr *tracetest.SpanRecorder, span sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan {
	t.Helper()
	for _, s := range sr.Ended() {
		if s.SpanContext().SpanID() == span.Parent().SpanID() && s.SpanContext().TraceID() == span.Parent().TraceID() {
			return s
		}
	}
	t.Fatalf("span %s has no recorded parent", span.Name())
	return nil
}

// In each era, a scripted run — a JWT's first and later use, a forged JWT,
// an opaque token's first and later use, a token exchange and its cached
// reuse — gives exactly the expected cache, JWKS and exchange metrics, and
// child spans for the cold validations, the JWK Set fetch, the
// introspection and the exchange, each under the request's MCP span.
func TestStackTelemetryHooks(t *testing.T) {
	for _, era := range eras {
		t.Run(era, func(t *testing.T) {
			s := newHookStack(t)
			alice := s.idp.MustMint(map[string]any{"sub": "alice", "aud": s.url, "tenant_id": "acme"})
			sid := s.open(t, era, alice)
			tool := "whoami"
			if era == mcp.ProtocolVersion20251125 {
				tool = "" // the initialize above was alice's first, cold request
			}
			if tool != "" {
				status, body := s.call(t, era, sid, alice, tool)
				require.Equal(t, http.StatusOK, status, body)
			}
			for _, tool := range []string{"whoami", "downstream", "downstream"} {
				status, body := s.call(t, era, sid, alice, tool)
				require.Equal(t, http.StatusOK, status, body)
				require.NotContains(t, body, "exchange failed")
			}
			forged, err := s.idp.MintBadSignature(map[string]any{"sub": "mallory", "aud": s.url, "tenant_id": "acme"})
			require.NoError(t, err)
			status, _ := s.call(t, era, "", forged, "whoami")
			require.Equal(t, http.StatusUnauthorized, status)

			opaque := s.idp.MustMintOpaque(map[string]any{"sub": "olga", "aud": s.url, "tenant_id": "acme"})
			osid := s.open(t, era, opaque)
			if era == mcp.ProtocolVersion20260728 {
				status, body := s.call(t, era, osid, opaque, "whoami")
				require.Equal(t, http.StatusOK, status, body)
			}
			status, body := s.call(t, era, osid, opaque, "whoami")
			require.Equal(t, http.StatusOK, status, body)
			assert.Contains(t, body, "olga")

			ts := &telemetryStack{reader: s.reader, spans: s.spans}
			m := ts.metrics(t)
			assert.Equal(t, map[string]int64{
				"mcpguard.cache=token,mcpguard.result=miss":         2, // alice's first request, the forged token
				"mcpguard.cache=token,mcpguard.result=hit":          3,
				"mcpguard.cache=introspection,mcpguard.result=miss": 1,
				"mcpguard.cache=introspection,mcpguard.result=hit":  1,
				"mcpguard.cache=exchange,mcpguard.result=miss":      1,
				"mcpguard.cache=exchange,mcpguard.result=hit":       1,
			}, sums(t, m["mcpguard.cache.lookups"]))
			keySet := "mcpguard.key_set=" + s.idp.Issuer()
			assert.Equal(t, map[string]int64{keySet + ",mcpguard.outcome=ok": 1}, sums(t, m["mcpguard.jwks.fetches"]))
			keys, ok := m["mcpguard.jwks.keys"].(metricdata.Gauge[int64])
			require.True(t, ok)
			require.Len(t, keys.DataPoints, 1)
			assert.Equal(t, keySet, attrString(keys.DataPoints[0].Attributes))
			assert.Equal(t, int64(len(s.idp.Keys())), keys.DataPoints[0].Value)
			age, ok := m["mcpguard.jwks.age"].(metricdata.Gauge[float64])
			require.True(t, ok)
			require.Len(t, age.DataPoints, 1)
			assert.GreaterOrEqual(t, age.DataPoints[0].Value, 0.0)
			assert.Less(t, age.DataPoints[0].Value, 3600.0)

			// Spans: two cold validations (alice's first request, the
			// forged token), each a child of its request's MCP span.
			validations := findSpans(s.spans, telemetry.SpanValidate)
			require.Len(t, validations, 2)
			var failed sdktrace.ReadOnlySpan
			for _, v := range validations {
				parent := serverSpanOf(t, s.spans, v)
				assert.Equal(t, trace.SpanKindServer, parent.SpanKind())
				assert.Equal(t, trace.SpanKindInternal, v.SpanKind())
				assert.Equal(t, s.idp.Issuer(), spanAttrs(v)["mcpguard.source"])
				if spanAttrs(v)["error.type"] != "" {
					failed = v
				}
			}
			require.NotNil(t, failed, "the forged token's validation failed")
			assert.Equal(t, "invalid_token", spanAttrs(failed)["error.type"])
			assert.Equal(t, "Error", failed.Status().Code.String())

			// The one JWK Set fetch is nested in the validation that waited
			// for it.
			fetches := findSpans(s.spans, telemetry.SpanFetchKeys)
			require.Len(t, fetches, 1)
			f := fetches[0]
			assert.Equal(t, trace.SpanKindClient, f.SpanKind())
			fp := serverSpanOf(t, s.spans, f)
			assert.Equal(t, telemetry.SpanValidate, fp.Name())
			assert.Empty(t, spanAttrs(fp)["error.type"], "alice's validation, not the forged one")
			assert.Equal(t, int64(len(s.idp.Keys())), attrInt(f, "mcpguard.keys"))

			intro := findSpans(s.spans, telemetry.SpanIntrospect)
			require.Len(t, intro, 1)
			assert.Equal(t, trace.SpanKindServer, serverSpanOf(t, s.spans, intro[0]).SpanKind())
			assert.Empty(t, spanAttrs(intro[0])["error.type"])

			exch := findSpans(s.spans, telemetry.SpanTokenExchange)
			require.Len(t, exch, 1, "the cached reuse made no exchange")
			xp := serverSpanOf(t, s.spans, exch[0])
			assert.Equal(t, "tools/call downstream", xp.Name())
			assert.Equal(t, trace.SpanKindServer, xp.SpanKind())
			assert.Equal(t, trace.SpanKindClient, exch[0].SpanKind())
			xa := spanAttrs(exch[0])
			assert.Equal(t, "token-exchange", xa["mcpguard.grant"])
			assert.Equal(t, "https://calendar.example.com", xa["mcpguard.audience"])
			assert.False(t, exch[0].StartTime().Before(xp.StartTime()), "the exchange starts inside its request")
			assert.False(t, exch[0].EndTime().After(xp.EndTime()))
			// The HTTP client's span of the call to the token endpoint is
			// the exchange span's child, not its sibling, and inside it.
			hc := httpChildOf(t, s.spans, exch[0])
			assert.Equal(t, trace.SpanKindClient, hc.SpanKind())
			assert.Equal(t, exch[0].SpanContext().TraceID(), hc.SpanContext().TraceID())
			assert.False(t, hc.StartTime().Before(exch[0].StartTime()))
			assert.False(t, hc.EndTime().After(exch[0].EndTime()))
			assert.Len(t, findSpans(s.spans, spanHTTPClient), 1, "the cached reuse made no HTTP call")

			// No credential in any span or metric attribute.
			secrets := []string{alice, forged, opaque, hookSecret}
			var exported []string
			for _, sp := range s.spans.Ended() {
				exported = append(exported, sp.Name())
				for _, kv := range sp.Attributes() {
					exported = append(exported, kv.Value.Emit())
				}
			}
			for _, agg := range m {
				exported = append(exported, metricAttrValues(agg)...)
			}
			for _, v := range exported {
				for _, sec := range secrets {
					for i := 0; i+16 <= len(sec); i++ {
						if strings.Contains(v, sec[i:i+16]) {
							t.Fatalf("exported telemetry %q holds a piece of a credential", v)
						}
					}
				}
			}
		})
	}
}

func attrInt(s sdktrace.ReadOnlySpan, key string) int64 {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.AsInt64()
		}
	}
	return -1
}

// In each era, failures carry a class in error.type, never error text: an
// exchange the authorization server refuses, an introspection endpoint
// that fails.
func TestStackTelemetryHookFailures(t *testing.T) {
	for _, era := range eras {
		t.Run(era, func(t *testing.T) {
			s := newHookStack(t)
			alice := s.idp.MustMint(map[string]any{"sub": "alice", "aud": s.url, "tenant_id": "acme"})
			sid := s.open(t, era, alice)
			s.idp.SetTokenError(authtest.InvalidGrant("the grant was revoked"))
			status, body := s.call(t, era, sid, alice, "downstream")
			require.Equal(t, http.StatusOK, status)
			require.Contains(t, body, "exchange failed")

			s.idp.SetIntrospectionFault(authtest.FaultStatus500)
			opaque := s.idp.MustMintOpaque(map[string]any{"sub": "olga", "aud": s.url, "tenant_id": "acme"})
			status, _ = s.call(t, era, "", opaque, "whoami")
			require.Equal(t, http.StatusServiceUnavailable, status)

			exch := findSpans(s.spans, telemetry.SpanTokenExchange)
			require.Len(t, exch, 1)
			assert.Equal(t, "invalid_grant", spanAttrs(exch[0])["error.type"])
			assert.Equal(t, "Error", exch[0].Status().Code.String())
			assert.Equal(t, "invalid_grant", exch[0].Status().Description)
			xp := serverSpanOf(t, s.spans, exch[0])
			assert.Equal(t, "tools/call downstream", xp.Name())
			assert.Equal(t, trace.SpanKindServer, xp.SpanKind())
			hc := httpChildOf(t, s.spans, exch[0])
			assert.Equal(t, "POST", spanAttrs(hc)["http.request.method"])

			intro := findSpans(s.spans, telemetry.SpanIntrospect)
			require.Len(t, intro, 1)
			assert.Equal(t, "unavailable", spanAttrs(intro[0])["error.type"])
			assert.Equal(t, trace.SpanKindServer, serverSpanOf(t, s.spans, intro[0]).SpanKind())

			for _, sp := range append(append(exch, intro...), hc) {
				for _, kv := range sp.Attributes() {
					assert.NotContains(t, kv.Value.Emit(), "revoked", "no error text in an attribute")
				}
				assert.NotContains(t, sp.Status().Description, "revoked")
			}
			want := map[string]int64{
				"mcpguard.cache=token,mcpguard.result=miss":         1,
				"mcpguard.cache=exchange,mcpguard.result=miss":      1, // a failure is no hit, and is not cached
				"mcpguard.cache=introspection,mcpguard.result=miss": 1, // nor is an outage
			}
			if era == mcp.ProtocolVersion20251125 {
				want["mcpguard.cache=token,mcpguard.result=hit"] = 1 // the call after the initialize
			}
			m := (&telemetryStack{reader: s.reader}).metrics(t)
			assert.Equal(t, want, sums(t, m["mcpguard.cache.lookups"]))
		})
	}
}

// In each era, a JWK Set that cannot be fetched shows as a failed fetch
// span inside a failed validation, a fetch counted with its class, and a
// key-set gauge of zero keys with no age.
func TestStackTelemetryKeySetOutage(t *testing.T) {
	for _, era := range eras {
		t.Run(era, func(t *testing.T) {
			s := newHookStack(t)
			s.idp.SetJWKSFault(authtest.FaultStatus500)
			alice := s.idp.MustMint(map[string]any{"sub": "alice", "aud": s.url, "tenant_id": "acme"})
			status, _ := s.call(t, era, "", alice, "whoami")
			require.Equal(t, http.StatusServiceUnavailable, status)

			// The fetch releases its waiters before it ends its span (nothing
			// a request waits on may wait on reporting), so the span may end
			// just after the 503 is written.
			require.Eventually(t, func() bool { return len(findSpans(s.spans, telemetry.SpanFetchKeys)) > 0 },
				5*time.Second, 5*time.Millisecond, "the failed fetch's span ends")
			fetches := findSpans(s.spans, telemetry.SpanFetchKeys)
			require.Len(t, fetches, 1)
			assert.Equal(t, "fetch_failed", spanAttrs(fetches[0])["error.type"])
			v := serverSpanOf(t, s.spans, fetches[0])
			assert.Equal(t, telemetry.SpanValidate, v.Name())
			assert.Equal(t, "unavailable", spanAttrs(v)["error.type"])
			assert.Equal(t, trace.SpanKindServer, serverSpanOf(t, s.spans, v).SpanKind())

			m := (&telemetryStack{reader: s.reader}).metrics(t)
			keySet := "mcpguard.key_set=" + s.idp.Issuer()
			assert.Equal(t, map[string]int64{"error.type=fetch_failed," + keySet + ",mcpguard.outcome=error": 1}, sums(t, m["mcpguard.jwks.fetches"]))
			keys, ok := m["mcpguard.jwks.keys"].(metricdata.Gauge[int64])
			require.True(t, ok)
			require.Len(t, keys.DataPoints, 1)
			assert.Zero(t, keys.DataPoints[0].Value)
			_, hasAge := m["mcpguard.jwks.age"]
			assert.False(t, hasAge, "no set was ever fetched: no age")
		})
	}
}
