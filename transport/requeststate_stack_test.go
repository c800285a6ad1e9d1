package transport

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/tenancy"
)

// mrtrStack is the full stack around a server whose "confirm" tool asks
// the client to confirm through a multi round-trip request: the first call
// answers input_required with requestState "step1:<item>", the retry
// answers with the state the handler got back. retries counts the calls
// that reached the handler carrying state.
type mrtrStack struct {
	*stack
	mu      sync.Mutex
	now     time.Time
	retries atomic.Int32
	seen    []string // the requestState the handler saw on each retry
}

func (m *mrtrStack) clock() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now
}

func (m *mrtrStack) advance(d time.Duration) {
	m.mu.Lock()
	m.now = m.now.Add(d)
	m.mu.Unlock()
}

func newMRTRStack(t *testing.T) *mrtrStack {
	t.Helper()
	idp := authtest.NewServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	base := "http://" + ln.Addr().String()
	m := &mrtrStack{stack: &stack{url: base + "/mcp", base: base, idp: idp, audit: &syncBuffer{}}, now: time.Now()}
	v, err := auth.NewJWTValidator(auth.JWTConfig{Issuer: idp.Issuer(), Audience: m.url})
	require.NoError(t, err)
	res, err := tenancy.New(tenancy.Config{})
	require.NoError(t, err)
	sink, err := audit.NewJSONSink(m.audit)
	require.NoError(t, err)
	m.rec, err = audit.New(audit.Config{Sink: sink})
	require.NoError(t, err)
	policy, err := authz.New(authz.Config{
		ReadScope:   "notes:read",
		WriteScope:  "notes:write",
		PromptRules: map[string]authz.Rule{"digest": {AllOf: []string{"notes:read"}}},
	})
	require.NoError(t, err)
	m.guard, err = New(Config{
		Resource:             m.url,
		AuthorizationServers: []string{idp.Issuer()},
		Validator:            v,
		Policy:               policy,
		Tenancy:              res,
		Audit:                m.rec,
		RequestState:         RequestStateConfig{Now: m.clock},
	})
	require.NoError(t, err)
	srv := server.NewMCPServer("notes", "1.0", m.guard.ServerOptions()...)
	srv.AddTool(mcp.NewTool("confirm", mcp.WithReadOnlyHintAnnotation(true), mcp.WithString("item")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			item := req.GetString("item", "")
			if req.Params.RequestState == "" {
				return server.NewInputRequestBuilder("step1:"+item).
					Elicit("ok", mcp.ElicitationParams{Message: "Confirm " + item + "?", RequestedSchema: map[string]any{"type": "object"}}).
					ToolResult(), nil
			}
			m.retries.Add(1)
			m.mu.Lock()
			m.seen = append(m.seen, req.Params.RequestState)
			m.mu.Unlock()
			ans := server.ElicitationResponse(req.Params.InputResponses, "ok")
			if ans == nil || ans.Action != mcp.ElicitationResponseActionAccept {
				return mcp.NewToolResultError("not confirmed"), nil
			}
			return mcp.NewToolResultText("confirmed " + item + " with " + req.Params.RequestState), nil
		})
	srv.AddPrompt(mcp.NewPrompt("digest", mcp.WithArgument("key")),
		func(ctx context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			key := req.Params.Arguments["key"]
			if req.Params.RequestState == "" {
				return server.NewInputRequestBuilder("prompt1:"+key).
					Elicit("ok", mcp.ElicitationParams{Message: "Digest " + key + "?", RequestedSchema: map[string]any{"type": "object"}}).
					PromptResult(), nil
			}
			m.retries.Add(1)
			return mcp.NewGetPromptResult("digest", []mcp.PromptMessage{
				mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent("digest of "+key+" with "+req.Params.RequestState)),
			}), nil
		})
	hs := &http.Server{Handler: m.guard.Handler(srv), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close(); _ = m.rec.Close() })
	return m
}

type acceptAll struct{}

func (acceptAll) Elicit(context.Context, mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionAccept, Content: map[string]any{}}}, nil
}

// TestStackRequestStateClient: an mcp-go client that answers elicitations
// completes a multi round-trip tool call in both eras — in 2026-07-28 by
// retrying with the sealed state, in 2025-11-25 through mcp-go's bridge —
// and the handler sees only its own plain state.
func TestStackRequestStateClient(t *testing.T) {
	m := newMRTRStack(t)
	tok := m.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
	for _, era := range eras {
		t.Run(era, func(t *testing.T) {
			tr, err := mcptransport.NewStreamableHTTP(m.url, mcptransport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + tok}))
			require.NoError(t, err)
			c := client.NewClient(tr, client.WithProtocolVersion(era), client.WithElicitationHandler(acceptAll{}))
			t.Cleanup(func() { _ = c.Close() })
			require.NoError(t, c.Start(t.Context()))
			_, err = c.Initialize(t.Context(), initReq(era))
			require.NoError(t, err)
			res, err := c.CallTool(t.Context(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "confirm", Arguments: map[string]any{"item": "x"}}})
			require.NoError(t, err)
			require.False(t, res.IsError, "%+v", res)
			assert.Equal(t, "confirmed x with step1:x", res.Content[0].(mcp.TextContent).Text)

			pr, err := c.GetPrompt(t.Context(), mcp.GetPromptRequest{Params: mcp.GetPromptParams{Name: "digest", Arguments: map[string]string{"key": "k"}}})
			require.NoError(t, err)
			require.Len(t, pr.Messages, 1)
			assert.Equal(t, "digest of k with prompt1:k", pr.Messages[0].Content.(mcp.TextContent).Text)
		})
	}
}

// firstRound makes the first, stateless call of "confirm" for item and
// returns the requestState it was handed.
func (m *mrtrStack) firstRound(t *testing.T, tok, item string) string {
	t.Helper()
	status, msg := rpc(t, m.url, tok, "", mcp.ProtocolVersion20260728, "tools/call", map[string]any{"name": "confirm", "arguments": map[string]any{"item": item}})
	require.Equal(t, http.StatusOK, status, msg)
	var r struct {
		Result struct {
			ResultType   string `json:"resultType"`
			RequestState string `json:"requestState"`
		} `json:"result"`
	}
	require.NoError(t, json.Unmarshal([]byte(msg), &r), msg)
	require.Equal(t, "input_required", r.Result.ResultType, msg)
	require.True(t, strings.HasPrefix(r.Result.RequestState, requestStatePrefix), "state leaves sealed: %s", msg)
	assert.NotContains(t, r.Result.RequestState, "step1")
	return r.Result.RequestState
}

// retry is the second round of "confirm" carrying state.
func (m *mrtrStack) retry(t *testing.T, tok, item, state string) (int, string) {
	t.Helper()
	return rpc(t, m.url, tok, "", mcp.ProtocolVersion20260728, "tools/call", map[string]any{
		"name": "confirm", "arguments": map[string]any{"item": item}, "requestState": state,
		"inputResponses": map[string]any{"ok": map[string]any{"action": "accept", "content": map[string]any{}}},
	})
}

// TestStackRequestStateRefused: over real HTTP in the stateless era, a
// requestState replayed by another principal or tenant, sent for another
// request, tampered with, expired, oversized or forged in the clear is
// refused with a JSON-RPC error and an audit event, and the handler does
// not run; the owner's own state is served.
func TestStackRequestStateRefused(t *testing.T) {
	m := newMRTRStack(t)
	alice := m.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
	bob := m.token(t, map[string]any{"sub": "bob", "scope": "notes:read"})
	aliceElsewhere := m.token(t, map[string]any{"sub": "alice", "tenant_id": "globex", "scope": "notes:read"})

	tamper := func(s string) string {
		b := []byte(s)
		i := len(b) / 2
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	tests := []struct {
		name   string
		tok    string
		item   string
		state  func(sealed string) string
		before func()
		reason string
	}{
		{"another principal", bob, "x", func(s string) string { return s }, nil, "request_state_foreign_principal"},
		{"another tenant", aliceElsewhere, "x", func(s string) string { return s }, nil, "request_state_foreign_principal"},
		{"another request", alice, "y", func(s string) string { return s }, nil, "request_state_other_request"},
		{"tampered", alice, "x", tamper, nil, "request_state_tampered"},
		{"forged in the clear", alice, "x", func(string) string { return "step1:x" }, nil, "request_state_malformed"},
		{"oversized", alice, "x", func(s string) string { return s + strings.Repeat("A", DefaultMaxRequestStateBytes) }, nil, "request_state_too_large"},
		{"expired", alice, "x", func(s string) string { return s }, func() { m.advance(DefaultRequestStateTTL + time.Second) }, "request_state_expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed := m.firstRound(t, alice, "x")
			if tt.before != nil {
				tt.before()
			}
			before := m.retries.Load()
			status, msg := m.retry(t, tt.tok, tt.item, tt.state(sealed))
			require.Equal(t, http.StatusOK, status, msg)
			var r struct {
				Result *json.RawMessage         `json:"result"`
				Error  *mcp.JSONRPCErrorDetails `json:"error"`
			}
			require.NoError(t, json.Unmarshal([]byte(msg), &r), msg)
			require.NotNil(t, r.Error, "refused with a JSON-RPC error: %s", msg)
			assert.Nil(t, r.Result)
			assert.Equal(t, ErrRequestState.Error(), r.Error.Message, "the client learns nothing more")
			assert.Equal(t, before, m.retries.Load(), "the handler did not run")
			assert.Regexp(t, `"kind":"tool_denied".*"tool":"confirm".*"reason":"`+tt.reason+`"`, m.audit.String())
		})
	}

	t.Run("prompt", func(t *testing.T) {
		get := func(tok, key, state string) (int, string) {
			params := map[string]any{"name": "digest", "arguments": map[string]any{"key": key}}
			if state != "" {
				params["requestState"] = state
				params["inputResponses"] = map[string]any{"ok": map[string]any{"action": "accept", "content": map[string]any{}}}
			}
			return rpc(t, m.url, tok, "", mcp.ProtocolVersion20260728, "prompts/get", params)
		}
		status, msg := get(alice, "k", "")
		require.Equal(t, http.StatusOK, status, msg)
		var r struct {
			Result struct {
				RequestState string `json:"requestState"`
			} `json:"result"`
		}
		require.NoError(t, json.Unmarshal([]byte(msg), &r), msg)
		require.True(t, strings.HasPrefix(r.Result.RequestState, requestStatePrefix), msg)
		before := m.retries.Load()
		for _, bad := range []struct{ tok, key, state string }{
			{bob, "k", r.Result.RequestState},
			{alice, "other", r.Result.RequestState},
			{alice, "k", "prompt1:k"},
		} {
			_, msg := get(bad.tok, bad.key, bad.state)
			assert.Contains(t, msg, `"error"`, msg)
			assert.Contains(t, msg, ErrRequestState.Error())
		}
		assert.Equal(t, before, m.retries.Load(), "the handler did not run")
		assert.Regexp(t, `"kind":"prompt_denied".*"prompt":"digest".*"reason":"request_state_foreign_principal"`, m.audit.String())
		_, msg = get(alice, "k", r.Result.RequestState)
		assert.Contains(t, msg, "digest of k with prompt1:k")
	})

	t.Run("own state served", func(t *testing.T) {
		sealed := m.firstRound(t, alice, "x")
		status, msg := m.retry(t, alice, "x", sealed)
		require.Equal(t, http.StatusOK, status, msg)
		assert.Contains(t, msg, "confirmed x with step1:x", "the handler got its own plain state back")
	})
}

// TestStackRequestStateBoundToRawArguments: typed handlers read the
// arguments as the client sent them (RawArguments), so the state is bound
// to those bytes in canonical form. Before, it was bound to mcp-go's
// decoded map, and a retry the handler read as another transfer — members
// reordered around a case variant, an integer one float64 away — was
// accepted with the state the user had confirmed for the first (found in
// review). Members in another order, with nothing ambiguous, are the same
// request.
func TestStackRequestStateBoundToRawArguments(t *testing.T) {
	type transferArgs struct {
		Account string `json:"account"`
		Amount  int64  `json:"amount"`
	}
	var executed atomic.Int32
	st := newMediationStack(t, func(_ *Guard, s *server.MCPServer) {
		s.AddTool(mcp.NewTool("transfer", mcp.WithReadOnlyHintAnnotation(true), mcp.WithString("account"), mcp.WithNumber("amount")),
			mcp.NewTypedToolHandler(func(_ context.Context, req mcp.CallToolRequest, a transferArgs) (*mcp.CallToolResult, error) {
				what := strconv.FormatInt(a.Amount, 10) + " to " + a.Account
				if req.Params.RequestState == "" {
					return server.NewInputRequestBuilder("confirm:"+what).
						Elicit("ok", mcp.ElicitationParams{Message: "Transfer " + what + "?", RequestedSchema: map[string]any{"type": "object"}}).
						ToolResult(), nil
				}
				executed.Add(1)
				return mcp.NewToolResultText("transferred " + what), nil
			}))
	})
	tok := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
	era := mcp.ProtocolVersion20260728
	meta := `"_meta":{"` + mcp.MetaKeyProtocolVersion + `":"` + era + `","` + mcp.MetaKeyClientInfo + `":{"name":"t","version":"1"},"` +
		mcp.MetaKeyClientCapabilities + `":{}}`
	call := func(args, extra string) string {
		req, err := http.NewRequest(http.MethodPost, st.url, strings.NewReader(
			`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"transfer","arguments":`+args+extra+`,`+meta+`}}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set(mcp.HeaderProtocolVersion, era)
		req.Header.Set(mcp.HeaderMethod, "tools/call")
		req.Header.Set(mcp.HeaderName, "transfer")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	retry := func(args, state string) string {
		return call(args, `,"requestState":"`+state+`","inputResponses":{"ok":{"action":"accept","content":{}}}`)
	}
	first := func(t *testing.T, args string) string {
		t.Helper()
		body := call(args, "")
		state := between(body, `"requestState":"`, `"`)
		require.NotEmpty(t, state, body)
		return state
	}

	t.Run("an integer one float64 away", func(t *testing.T) {
		state := first(t, `{"account":"alice-savings","amount":9007199254740992}`)
		body := retry(`{"account":"alice-savings","amount":9007199254740993}`, state)
		assert.NotContains(t, body, "transferred")
		assert.Contains(t, body, ErrRequestState.Error())
	})
	t.Run("members that differ only in case", func(t *testing.T) {
		// Ambiguous: a map and a struct read different members. No state
		// is sealed for such a call, and none opens for it.
		body := call(`{"ACCOUNT":"mallory","account":"alice-savings","amount":5}`, "")
		assert.NotContains(t, body, `"requestState"`, body)
		state := first(t, `{"account":"alice-savings","amount":5}`)
		body = retry(`{"account":"alice-savings","ACCOUNT":"mallory","amount":5}`, state)
		assert.NotContains(t, body, "transferred")
		assert.Contains(t, body, ErrRequestState.Error())
	})
	t.Run("the same arguments in another order", func(t *testing.T) {
		state := first(t, `{"account":"alice-savings","amount":5}`)
		body := retry(` { "amount" : 5 , "account" : "alice-savings" } `, state)
		assert.Contains(t, body, "transferred 5 to alice-savings", body)
	})
	assert.Equal(t, int32(1), executed.Load(), "only the genuine retry ran")
}
