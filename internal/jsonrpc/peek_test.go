package jsonrpc

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPeek(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    Message
		wantErr error
	}{
		{name: "tools call", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"notes_write","arguments":{"name":"x"}}}`,
			want: Message{ID: json.RawMessage("1"), Method: "tools/call", Name: "notes_write"}},
		{name: "resources read", body: `{"jsonrpc":"2.0","id":"a","method":"resources/read","params":{"uri":"file:///x"}}`,
			want: Message{ID: json.RawMessage(`"a"`), Method: "resources/read", URI: "file:///x"}},
		{name: "notification", body: `{"jsonrpc":"2.0","method":"notifications/initialized"}`,
			want: Message{Method: "notifications/initialized"}},
		{name: "escaped name", body: `{"method":"tools/call","params":{"name":"a\u0062c"}}`,
			want: Message{Method: "tools/call", Name: "abc"}},
		{name: "params array", body: `{"method":"x","params":[1,2]}`, want: Message{Method: "x"}},
		{name: "duplicate name", body: `{"method":"tools/call","params":{"name":"read","name":"write"}}`, wantErr: ErrAmbiguous},
		{name: "case variant name", body: `{"method":"tools/call","params":{"name":"read","NAME":"write"}}`, wantErr: ErrAmbiguous},
		{name: "escaped case variant", body: `{"method":"tools/call","params":{"name":"read","\u004eame":"write"}}`, wantErr: ErrAmbiguous},
		{name: "duplicate method", body: `{"method":"ping","method":"tools/call"}`, wantErr: ErrAmbiguous},
		{name: "case variant method", body: `{"Method":"tools/call"}`, wantErr: ErrAmbiguous},
		{name: "duplicate params", body: `{"method":"tools/call","params":{"name":"a"},"params":{"name":"b"}}`, wantErr: ErrAmbiguous},
		{name: "kelvin sign", body: `{"method":"tools/call","params":{"name":"a","nam\u212a":"b"}}`, want: Message{Method: "tools/call", Name: "a"}},
		{name: "long s in params", body: `{"method":"tools/call","params":{"name":"a"},"param\u017f":{"name":"b"}}`, wantErr: ErrAmbiguous},
		{name: "escaped params", body: `{"method":"tools/call","p\u0061rams":{"name":"b"}}`, wantErr: ErrAmbiguous},
		{name: "escaped id", body: `{"method":"tools/call","\u0049D":5}`, wantErr: ErrAmbiguous},
		{name: "kelvin and long s elsewhere", body: `{"method":"x","\u212a":1,"\u017fs":2,"jsonrpc\u212a":3}`, want: Message{Method: "x"}},
		{name: "escaped punctuation", body: `{"method":"x","na\/me":1,"\"name\"":2,"name\u0000":3,"\ud83dname":4}`, want: Message{Method: "x"}},
		{name: "invalid UTF-8 in a name", body: "{\"method\":\"x\",\"nam\xff\":1,\"\xc5\xbf\":2}", want: Message{Method: "x"}},
		{name: "bad escape in a name", body: `{"method":"x","na\qme":1}`, wantErr: ErrMalformed},
		{name: "short unicode escape in a name", body: `{"method":"x","\u00":1}`, wantErr: ErrMalformed},
		{name: "batch", body: `[{"method":"tools/call"}]`, wantErr: ErrMalformed},
		{name: "not json", body: `nope`, wantErr: ErrMalformed},
		{name: "empty", body: ``, wantErr: ErrMalformed},
		{name: "name not string", body: `{"method":"tools/call","params":{"name":5}}`, wantErr: ErrMalformed},
		{name: "truncated", body: `{"method":"tools/call","params":{"name":"a"`, wantErr: ErrMalformed},
		{name: "too large", body: `{"method":"x","pad":"` + strings.Repeat("a", MaxPeekBytes) + `"}`, wantErr: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Peek([]byte(tt.body))
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestPeekKnownMethods(t *testing.T) {
	for _, m := range knownMethods {
		t.Run(m, func(t *testing.T) {
			got, err := Peek([]byte(`{"method":"` + m + `"}`))
			require.NoError(t, err)
			assert.Equal(t, m, got.Method)
			// An escaped spelling decodes to the same method.
			got, err = Peek([]byte(`{"method":"\u00` + strconv.FormatInt(int64(m[0]), 16) + m[1:] + `"}`))
			require.NoError(t, err)
			assert.Equal(t, m, got.Method)
		})
	}
	for _, body := range []string{`{"method":"tools/call2"}`, `{"method":"tools/cal"}`, `{"method":"Tools/call"}`} {
		got, err := Peek([]byte(body))
		require.NoError(t, err)
		assert.NotContains(t, knownMethods, got.Method, body)
	}
	_, err := Peek([]byte(`{"method":["tools/call"]}`))
	assert.ErrorIs(t, err, ErrMalformed)
}

// TestPeekEscapedNamesCost: member names that are escaped or not ASCII
// cost Peek no allocation, as plain ones do. Each was decoded with
// json.Unmarshal and folded with a strings.Replacer built per routing
// name, so a 4 MiB body of such names took Peek about two seconds, twenty
// times what encoding/json takes to decode it, before authentication when
// telemetry is on (found in review).
func TestPeekEscapedNamesCost(t *testing.T) {
	for name, member := range map[string]string{
		"escaped":    `"\u0061":0,`,
		"not ASCII":  `"\u00e9t\u00e9":0,`,
		"raw UTF-8":  `"été":0,`,
		"long s":     `"param\u017f\u017f":0,`,
		"surrogates": `"\ud83d\ude00":0,`,
	} {
		t.Run(name, func(t *testing.T) {
			body := []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{` + strings.Repeat(member, 1000) + `"name":"notes_write"}}`)
			allocs := testing.AllocsPerRun(10, func() {
				m, err := Peek(body)
				if err != nil || m.Name != "notes_write" {
					t.Fatal(m, err)
				}
			})
			assert.LessOrEqual(t, allocs, 1.0, "only the tool name is copied")
		})
	}
}

func TestPeekAllocs(t *testing.T) {
	body := []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"notes_write"}}`)
	allocs := testing.AllocsPerRun(100, func() {
		m, err := Peek(body)
		if err != nil || m.Name != "notes_write" {
			t.Fatal(m, err)
		}
	})
	assert.LessOrEqual(t, allocs, 1.0, "only the tool name is copied")
}

// mcpGoView decodes like mcp-go does: plain encoding/json into structs.
func mcpGoView(body []byte) (method, name string, ok bool) {
	var req struct {
		Method string `json:"method"`
		Params struct {
			Name string `json:"name"`
		} `json:"params"`
	}
	if json.Unmarshal(body, &req) != nil {
		return "", "", false
	}
	return req.Method, req.Params.Name, true
}

// FuzzPeek checks that whatever Peek accepts, it reads the same method and
// tool name as encoding/json's struct decoding, which mcp-go dispatches on.
func FuzzPeek(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}}`,
		`{"method":"tools/call","params":{"name":"a","NAME":"b"}}`,
		`{"method":"tools/call","params":{"name":"a","nam\u212a":"b"}}`,
		`{"method":"tools/call","params":{"nAme":"a"}}`,
		`{"method":"tools/call","params":{"name":"\ud800"}}`,
		`{"method":"tools\/call","params":{"name":"a"}}`,
		`{"method":"tools/call","param\u017f":{"name":"a"}}`,
		`{"method":"tools/call","params":{"n\u0061me":"a","\u00e9":1}}`,
		`{"method":"tools/call","params":{"name":"a","\ud83d\ude00":1,"na\/me":2}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := Peek(body)
		if err != nil {
			return
		}
		method, name, ok := mcpGoView(body)
		if !ok {
			return // mcp-go rejects it as well
		}
		if method != m.Method {
			t.Fatalf("method: peek %q, encoding/json %q", m.Method, method)
		}
		if name != m.Name {
			t.Fatalf("name: peek %q, encoding/json %q", m.Name, name)
		}
	})
}

func BenchmarkPeek(b *testing.B) {
	body := []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"notes_write","arguments":{"key":"k","text":"hello world"}}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Peek(body); err != nil {
			b.Fatal(err)
		}
	}
}
