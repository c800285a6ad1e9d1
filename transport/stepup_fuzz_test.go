package transport

import (
	"bytes"
	"testing"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
)

// FuzzDecodeRouting: decodeRouting reads any body without panicking, and
// wherever both it and jsonrpc.Peek read a body (Peek does not validate
// members it skips, so it reads some bodies encoding/json — and so mcp-go —
// refuses), they read the same method and id: the edge decides alike
// whichever reader a body gets.
func FuzzDecodeRouting(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}}`,
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`,
		`{"jsonrpc":"2.0","id":null,"method":"ping"}`,
		`{"jsonrpc":"2.0","id":"x","METHOD":"ping"}`,
		`{"id":1,"method":"a","method":"b"}`,
		`{"method":"tools\u002fcall","id":-1.5e3}`,
		`[{"jsonrpc":"2.0","id":1,"method":"ping"}]`,
		`{"jsonrpc":"2.0","id":{"a":1},"method":7}`,
		"{\"method\":\"\xff\"}",
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, ok := decodeRouting(body)
		peeked, err := jsonrpc.Peek(body)
		if err != nil || !ok {
			return
		}
		if got.Method != peeked.Method || !bytes.Equal(got.ID, peeked.ID) {
			t.Fatalf("decodeRouting read method %q id %s, Peek method %q id %s", got.Method, got.ID, peeked.Method, peeked.ID)
		}
	})
}
