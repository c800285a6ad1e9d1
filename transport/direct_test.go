package transport

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// directRequest is a POST as the edge hands it on: its context holds the
// body the edge read, and its Body is the edge's reader of that body.
func directRequest(t *testing.T, body, host string, local net.Addr) *http.Request {
	t.Helper()
	ec := &edgeContext{Context: context.WithValue(context.Background(), http.LocalAddrContextKey, local)}
	ec.body.buf = []byte(body)
	ec.body.Reset(ec.body.buf)
	ec.hasBody = true
	r := httptest.NewRequestWithContext(ec, http.MethodPost, "http://"+host+"/mcp", nil)
	r.Host = host
	r.Body = &ec.body
	r.ContentLength = int64(len(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Accept", "application/json, text/event-stream")
	r.Header.Set(mcp.HeaderProtocolVersion, mcp.ProtocolVersion20260728)
	r.Header.Set(mcp.HeaderMethod, "tools/call")
	r.Header.Set(mcp.HeaderName, "echo")
	return r
}

func TestDirect(t *testing.T) {
	srv := server.NewMCPServer("direct", "1.0.0")
	srv.AddTool(mcp.NewTool("echo", mcp.WithString("text")), func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("echo:" + req.GetString("text", "")), nil
	})
	s := server.NewStreamableHTTPServer(srv, server.WithEndpointPath("/mcp"))
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	d := direct{s: s}
	call := func(text string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + text + `"},"_meta":{"` +
			mcp.MetaKeyProtocolVersion + `":"` + mcp.ProtocolVersion20260728 + `","` + mcp.MetaKeyClientCapabilities + `":{}}}}`
	}
	loop := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	serve := func(h http.Handler, r *http.Request) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec.Code, rec.Body.String()
	}

	t.Run("answers as ServeHTTP does", func(t *testing.T) {
		code, body := serve(d, directRequest(t, call("one"), "127.0.0.1:8080", loop))
		wantCode, want := serve(s, directRequest(t, call("one"), "127.0.0.1:8080", loop))
		assert.Equal(t, wantCode, code)
		assert.Equal(t, want, body)
		assert.Contains(t, body, "echo:one")
	})

	t.Run("a body a layer replaced is the one mcp-go reads", func(t *testing.T) {
		r := directRequest(t, call("edge"), "127.0.0.1:8080", loop)
		r.Body = io.NopCloser(strings.NewReader(call("layer")))
		_, body := serve(d, r)
		assert.Contains(t, body, "echo:layer")
	})

	t.Run("a body a layer began to read is not handed on whole", func(t *testing.T) {
		r := directRequest(t, call("edge"), "127.0.0.1:8080", loop)
		var b [1]byte
		_, err := r.Body.Read(b[:]) // mcp-go now reads the rest, which is not JSON
		require.NoError(t, err)
		_, body := serve(d, r)
		assert.NotContains(t, body, "echo:edge")
		assert.Contains(t, body, `"error"`)
	})

	t.Run("DNS rebinding of a loopback listener is refused", func(t *testing.T) {
		for _, local := range []net.Addr{loop, &net.TCPAddr{IP: net.IPv6loopback, Port: 8080}, &net.UnixAddr{Name: "127.0.0.1:8080", Net: "unix"}} {
			code, body := serve(d, directRequest(t, call("x"), "evil.example", local))
			wantCode, want := serve(s, directRequest(t, call("x"), "evil.example", local))
			assert.Equal(t, http.StatusForbidden, code, local.String())
			assert.Equal(t, wantCode, code)
			assert.Equal(t, want, body)
		}
	})

	t.Run("a non-loopback listener takes any Host", func(t *testing.T) {
		code, body := serve(d, directRequest(t, call("far"), "mcp.example.com", &net.TCPAddr{IP: net.IPv4(10, 0, 0, 5), Port: 443}))
		assert.Equal(t, http.StatusOK, code)
		assert.Contains(t, body, "echo:far")
	})
}
