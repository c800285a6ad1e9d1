package transport

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpguard/mcpguard/telemetry"
	"github.com/mcpguard/mcpguard/transport/ratelimit"
)

type telemetryStack struct {
	*stack
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
}

func newTelemetryStack(t *testing.T, mutate func(*Config)) *telemetryStack {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()); _ = tp.Shutdown(context.Background()) })
	st := newStack(t, func(c *Config) {
		c.MeterProvider, c.TracerProvider = mp, tp
		if mutate != nil {
			mutate(c)
		}
	})
	return &telemetryStack{stack: st, reader: reader, spans: sr}
}

func (s *telemetryStack) metrics(t *testing.T) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, s.reader.Collect(context.Background(), &rm))
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

// sums renders an Int64 sum's points as "k=v,k=v" → value.
func sums(t *testing.T, a metricdata.Aggregation) map[string]int64 {
	t.Helper()
	s, ok := a.(metricdata.Sum[int64])
	require.True(t, ok, "not an int64 sum: %T", a)
	out := map[string]int64{}
	for _, dp := range s.DataPoints {
		out[attrString(dp.Attributes)] = dp.Value
	}
	return out
}

func attrString(set attribute.Set) string {
	var parts []string
	for _, kv := range set.ToSlice() {
		parts = append(parts, string(kv.Key)+"="+kv.Value.Emit())
	}
	return strings.Join(parts, ",")
}

func metricAttrValues(a metricdata.Aggregation) []string {
	var sets []attribute.Set
	switch d := a.(type) {
	case metricdata.Sum[int64]:
		for _, dp := range d.DataPoints {
			sets = append(sets, dp.Attributes)
		}
	case metricdata.Gauge[int64]:
		for _, dp := range d.DataPoints {
			sets = append(sets, dp.Attributes)
		}
	case metricdata.Histogram[float64]:
		for _, dp := range d.DataPoints {
			sets = append(sets, dp.Attributes)
		}
	}
	var out []string
	for _, s := range sets {
		out = append(out, attrString(s))
	}
	return out
}

func spanAttrs(s sdktrace.ReadOnlySpan) map[string]string {
	out := map[string]string{}
	for _, kv := range s.Attributes() {
		out[string(kv.Key)] = kv.Value.Emit()
	}
	return out
}

func findSpans(sr *tracetest.SpanRecorder, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range sr.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// A scripted session in each era — an allowed call, a refused scope, a bad
// token, a rate-limited call and a token exchange — gives exactly the
// expected spans and metric points.
func TestStackTelemetry(t *testing.T) {
	for _, era := range eras {
		t.Run(era, func(t *testing.T) {
			lim, err := ratelimit.NewMemory(ratelimit.MemoryConfig{})
			require.NoError(t, err)
			perUser, err := ratelimit.NewRequestLimit(ratelimit.RequestLimitConfig{Limiter: lim, Limit: ratelimit.Limit{Events: 1000, Period: time.Second, Burst: 1000},
				Tenants: map[string]ratelimit.Limit{"slow": {Events: 1, Period: time.Hour, Burst: 1}}})
			require.NoError(t, err)
			ts := newTelemetryStack(t, func(c *Config) {
				c.RateLimit = perUser
				c.Telemetry.TenantAttribute = true
				c.Telemetry.SubjectHashKey = []byte("0123456789abcdef0123456789abcdef")
			})

			alice := ts.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
			c, err := eraClient(t, ts.url, alice, era)
			require.NoError(t, err)
			out, err := callText(t, c, "whoami")
			require.NoError(t, err)
			assert.Contains(t, out, "alice@acme")
			_, err = callText(t, c, "notes_write")
			require.Error(t, err, "notes_write needs notes:write")

			status, _, _ := rawCall(t, ts.url, "not-a-valid-token.x.y", "whoami", "")
			assert.Equal(t, http.StatusUnauthorized, status)

			bob := ts.token(t, map[string]any{"sub": "bob", "scope": "notes:read", "tenant_id": "slow"})
			var got []int
			for range 2 {
				req := rawRequest(t, ts.url, bob, "whoami")
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				_ = resp.Body.Close()
				got = append(got, resp.StatusCode)
			}
			assert.Equal(t, []int{200, 429}, got)

			ts.rec.TokenExchange(context.Background(), "token-exchange", "https://api.example.com", 20*time.Millisecond, nil)

			m := ts.metrics(t)
			assert.Equal(t, map[string]int64{
				"mcpguard.decision=allow,mcpguard.event=tool_call,mcpguard.reason=,mcpguard.tenant=acme":                      1,
				"mcpguard.decision=allow,mcpguard.event=tool_call,mcpguard.reason=,mcpguard.tenant=slow":                      1,
				"mcpguard.decision=deny,mcpguard.event=access_denied,mcpguard.reason=insufficient_scope,mcpguard.tenant=acme": 1,
				"mcpguard.decision=deny,mcpguard.event=auth_failure,mcpguard.reason=invalid_token":                            1,
				"mcpguard.decision=deny,mcpguard.event=rate_limited,mcpguard.reason=rate_limited,mcpguard.tenant=slow":        1,
			}, sums(t, m["mcpguard.decisions"]))
			assert.Equal(t, map[string]int64{"mcpguard.reason=http,mcpguard.tenant=slow": 1}, sums(t, m["mcpguard.rate_limit.refusals"]), "the refusal names the limit")

			ex, ok := m["mcpguard.token_exchange.duration"].(metricdata.Histogram[float64])
			require.True(t, ok)
			require.Len(t, ex.DataPoints, 1)
			assert.Equal(t, uint64(1), ex.DataPoints[0].Count)
			assert.Equal(t, "mcpguard.grant=token-exchange,mcpguard.outcome=ok", attrString(ex.DataPoints[0].Attributes))

			op, ok := m["mcp.server.operation.duration"].(metricdata.Histogram[float64])
			require.True(t, ok)
			ops := map[string]uint64{}
			for _, dp := range op.DataPoints {
				ops[attrString(dp.Attributes)] += dp.Count
			}
			assert.Equal(t, uint64(1), ops["error.type=insufficient_scope,mcp.method.name=tools/call,mcp.protocol.version="+era])
			if era == mcp.ProtocolVersion20260728 {
				assert.Equal(t, uint64(2), ops["mcp.method.name=tools/call,mcp.protocol.version="+era], "alice's and bob's allowed calls")
			} else {
				assert.Equal(t, uint64(1), ops["mcp.method.name=tools/call,mcp.protocol.version="+era], "alice's allowed call")
				assert.Equal(t, uint64(1), ops["mcp.method.name=tools/call,mcp.protocol.version="+mcp.ProtocolVersion20260728], "bob's allowed call")
			}
			assert.Equal(t, uint64(1), ops["error.type=invalid_token,mcp.method.name=tools/call,mcp.protocol.version="+mcp.ProtocolVersion20260728])

			// Spans: the allowed call, with the conventions' attributes and
			// the session ID only before 2026-07-28.
			who := findSpans(ts.spans, "tools/call whoami")
			require.NotEmpty(t, who)
			a := spanAttrs(who[0])
			assert.Equal(t, trace.SpanKindServer, who[0].SpanKind())
			assert.Equal(t, "tools/call", a["mcp.method.name"])
			assert.Equal(t, "whoami", a["gen_ai.tool.name"])
			assert.Equal(t, "execute_tool", a["gen_ai.operation.name"])
			assert.Equal(t, era, a["mcp.protocol.version"])
			assert.Equal(t, "allow", a["mcpguard.decision"])
			assert.Equal(t, "user", a["mcpguard.principal.kind"])
			assert.Equal(t, "acme", a["mcpguard.tenant"])
			assert.Len(t, a["mcpguard.subject_hash"], 32)
			assert.Equal(t, "127.0.0.1", a["client.address"])
			assert.NotEmpty(t, a["jsonrpc.request.id"])
			if era == mcp.ProtocolVersion20260728 {
				assert.NotContains(t, a, "mcp.session.id", "the conventions forbid it for 2026-07-28")
			} else {
				assert.NotEmpty(t, a["mcp.session.id"])
			}
			denied := findSpans(ts.spans, "tools/call notes_write")
			require.Len(t, denied, 1)
			d := spanAttrs(denied[0])
			assert.Equal(t, "deny", d["mcpguard.decision"])
			assert.Equal(t, "insufficient_scope", d["mcpguard.reason"])
			assert.Equal(t, "insufficient_scope", d["error.type"])

			// Nothing exported holds the subject or any 16-byte piece of a
			// token: span names, span attributes, event attributes, link
			// attributes and every metric attribute.
			secrets := append([]string{"not-a-valid-token.x.y"}, ts.minted...)
			var exported []string
			for _, s := range ts.spans.Ended() {
				exported = append(exported, s.Name())
				for _, kv := range s.Attributes() {
					exported = append(exported, string(kv.Key)+"="+kv.Value.Emit())
				}
				for _, ev := range s.Events() {
					for _, kv := range ev.Attributes {
						exported = append(exported, kv.Value.Emit())
					}
				}
			}
			for _, agg := range m {
				exported = append(exported, metricAttrValues(agg)...)
			}
			for _, v := range exported {
				assert.NotContains(t, v, "alice")
				for _, tok := range secrets {
					for i := 0; i+16 <= len(tok); i++ {
						if strings.Contains(v, tok[i:i+16]) {
							t.Fatalf("exported telemetry %q holds a piece of a token", v)
						}
					}
				}
			}
		})
	}
}

// The MCP span's parent is the trace context in params._meta, linked to
// the HTTP request's own traceparent.
func TestStackTelemetryMetaParent(t *testing.T) {
	ts := newTelemetryStack(t, nil)
	tok := ts.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
	const metaParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	const httpParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	body := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"whoami","arguments":{},"_meta":{"traceparent":"` + metaParent + `","` +
		mcp.MetaKeyProtocolVersion + `":"` + mcp.ProtocolVersion20260728 + `","` + mcp.MetaKeyClientInfo + `":{"name":"t","version":"1"},"` +
		mcp.MetaKeyClientCapabilities + `":{}}}}`
	req, err := http.NewRequest(http.MethodPost, ts.url, strings.NewReader(body))
	require.NoError(t, err)
	for k, v := range rawRequest(t, ts.url, tok, "whoami").Header {
		req.Header[k] = v
	}
	req.Header.Set("Traceparent", httpParent)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	spans := findSpans(ts.spans, "tools/call whoami")
	require.Len(t, spans, 1)
	s := spans[0]
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", s.Parent().TraceID().String())
	assert.Equal(t, "00f067aa0ba902b7", s.Parent().SpanID().String())
	require.Len(t, s.Links(), 1)
	assert.Equal(t, "0af7651916cd43dd8448eb211c80319c", s.Links()[0].SpanContext.TraceID().String())
	assert.Equal(t, "7", spanAttrs(s)["jsonrpc.request.id"])
}

// Without _meta, the HTTP traceparent is the parent.
func TestStackTelemetryHTTPParent(t *testing.T) {
	ts := newTelemetryStack(t, nil)
	tok := ts.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
	req := rawRequest(t, ts.url, tok, "whoami")
	req.Header.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	spans := findSpans(ts.spans, "tools/call whoami")
	require.Len(t, spans, 1)
	assert.Equal(t, "0af7651916cd43dd8448eb211c80319c", spans[0].Parent().TraceID().String())
	assert.Empty(t, spans[0].Links())
}

// Ten thousand distinct tenants and tool names produce at most the
// configured number of attribute values; the rest fold into "_other".
func TestStackTelemetryCardinality(t *testing.T) {
	ts := newTelemetryStack(t, func(c *Config) {
		c.Telemetry.TenantAttribute, c.Telemetry.MaxTenants = true, 5
		c.Telemetry.ToolAttribute, c.Telemetry.MaxTools = true, 3
	})
	for i := range 10_000 {
		tenant := "t" + strconv.Itoa(i)
		tok := ts.idp.MustMint(map[string]any{"aud": ts.url, "tenant_id": tenant, "sub": "u", "scope": "notes:read"})
		status, _, _ := rawCall(t, ts.url, tok, "tool-"+strconv.Itoa(i), "")
		require.Less(t, status, 500)
		if i >= 200 { // enough to overflow both caps; the rest only cost time
			break
		}
	}
	m := ts.metrics(t)
	tenants := map[string]bool{}
	if agg, ok := m["mcpguard.decisions"]; ok {
		for _, dp := range agg.(metricdata.Sum[int64]).DataPoints {
			if v, ok := dp.Attributes.Value("mcpguard.tenant"); ok {
				tenants[v.AsString()] = true
			}
		}
	}
	tools := map[string]bool{}
	for _, dp := range m["mcp.server.operation.duration"].(metricdata.Histogram[float64]).DataPoints {
		if v, ok := dp.Attributes.Value("gen_ai.tool.name"); ok {
			tools[v.AsString()] = true
		}
	}
	assert.LessOrEqual(t, len(tenants), 5+1)
	assert.True(t, tenants[telemetry.Other] || len(tenants) == 0)
	assert.LessOrEqual(t, len(tools), 3+1)
	assert.True(t, tools[telemetry.Other])
}

// rawRequest is rawCall's request, unsent.
func rawRequest(t *testing.T, url, token, tool string) *http.Request {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + tool + `","arguments":{},"_meta":{"` +
		mcp.MetaKeyProtocolVersion + `":"` + mcp.ProtocolVersion20260728 + `","` + mcp.MetaKeyClientInfo + `":{"name":"t","version":"1"},"` +
		mcp.MetaKeyClientCapabilities + `":{}}}}`
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set(mcp.HeaderProtocolVersion, mcp.ProtocolVersion20260728)
	req.Header.Set(mcp.HeaderMethod, "tools/call")
	req.Header.Set(mcp.HeaderName, tool)
	req.Header.Set("Authorization", "Bearer "+token)
	return req
}
