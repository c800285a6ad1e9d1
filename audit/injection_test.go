package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hostile holds names crafted to forge a second record, overwrite a
// terminal line, reorder text or overflow a field.
var hostile = []string{
	"search\n{\"time\":\"2026-01-01T00:00:00Z\",\"kind\":\"tool_call\",\"subject\":\"admin\"}",
	"x\r\ntime=2026-01-01T00:00:00Z level=INFO msg=audit kind=tool_call subject=admin",
	`","kind":"auth_failure","subject":"root`,
	"a\u2028b\u2029c",
	"\x1b[2K\x1b[1Goverwritten",
	"\u202eevil\u2066",
	"\xff\xfe invalid utf8",
	"\x00nul\x7fdel\u0085nel",
	"\\n escaped-looking \\u000a",
	strings.Repeat("A", 100_000),
	"tab\there",
	"key=value subject=admin",
}

// naiveHandler prints attributes raw, without quoting or escaping, the way
// a careless custom handler might: only Event's own escaping keeps one
// event on one line.
type naiveHandler struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (h naiveHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h naiveHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h naiveHandler) WithGroup(string) slog.Handler            { return h }
func (h naiveHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.buf.WriteString(r.Message)
	var write func(prefix string, a slog.Attr)
	write = func(prefix string, a slog.Attr) {
		v := a.Value.Resolve()
		if v.Kind() == slog.KindGroup {
			for _, g := range v.Group() {
				write(prefix+a.Key+".", g)
			}
			return
		}
		fmt.Fprintf(h.buf, " %s%s=%v", prefix, a.Key, v.Any())
	}
	r.Attrs(func(a slog.Attr) bool { write("", a); return true })
	h.buf.WriteByte('\n')
	return nil
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func TestLogInjection(t *testing.T) {
	var jsonLines, slogJSON, slogText lockedBuffer
	var naiveMu sync.Mutex
	var naive bytes.Buffer

	js, err := NewJSONSink(&jsonLines)
	require.NoError(t, err)
	sj, err := NewSlogSink(SlogConfig{Handler: slog.NewJSONHandler(&slogJSON, nil)})
	require.NoError(t, err)
	st, err := NewSlogSink(SlogConfig{Handler: slog.NewTextHandler(&slogText, nil)})
	require.NoError(t, err)
	sn, err := NewSlogSink(SlogConfig{Handler: naiveHandler{&naiveMu, &naive}})
	require.NoError(t, err)

	allow := map[string][]string{}
	for _, name := range hostile {
		allow[name] = []string{"q"}
	}
	r, err := New(Config{Sink: Fanout{js, sj, st, sn}, Mode: Async, ArgValues: allow})
	require.NoError(t, err)
	h := r.ToolMiddleware(func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("ok"), nil
	})
	for _, name := range hostile {
		args := map[string]any{"q": name}
		for i, argName := range hostile {
			args[argName+fmt.Sprint(i)] = 1
		}
		ctx := NewRequestIDContext(context.Background(), name)
		_, err := h(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: name, Arguments: args}})
		require.NoError(t, err)
	}
	require.NoError(t, r.Close())
	require.Zero(t, r.Stats().SinkErrors)
	n := len(hostile)

	t.Run("json lines", func(t *testing.T) {
		lines := splitLines(t, jsonLines.buf.Bytes(), n)
		for i, line := range lines {
			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(line), &m), "line %d is one JSON object", i)
			assert.Equal(t, "tool_call", m["kind"], "kind cannot be overridden")
			assert.Nil(t, m["subject"], "no forged subject")
			tool, _ := m["tool"].(string)
			assert.LessOrEqual(t, len(tool), MaxNameLen+len("…")+3*MaxNameLen, "bounded")
			assert.True(t, strings.HasPrefix(hostile[i], strings.TrimSuffix(tool, "…")) || !utf8.ValidString(hostile[i]),
				"the name decodes back to what was sent: %q", tool)
			assertPrintable(t, line)
		}
	})
	t.Run("slog json handler", func(t *testing.T) {
		for i, line := range splitLines(t, slogJSON.buf.Bytes(), n) {
			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(line), &m), "line %d", i)
			assert.Equal(t, "tool_call", m["kind"])
			assert.Nil(t, m["subject"])
		}
	})
	t.Run("slog text handler", func(t *testing.T) {
		for _, line := range splitLines(t, slogText.buf.Bytes(), n) {
			assert.True(t, strings.HasPrefix(line, "time="), "%q", line)
			keys := logfmtKeys(t, line)
			assert.Equal(t, 1, keys["kind"], "%q", line)
			assert.Equal(t, 1, keys["time"], "%q", line)
			assert.Zero(t, keys["subject"], "no forged subject: %q", line)
			assertPrintable(t, line)
		}
	})
	t.Run("naive handler", func(t *testing.T) {
		for _, line := range splitLines(t, naive.Bytes(), n) {
			assert.True(t, strings.HasPrefix(line, "audit kind=tool_call "), "%q", line)
			assertPrintable(t, line)
		}
	})
}

// logfmtKeys counts the keys of a slog.TextHandler line, honouring its
// quoting: a quoted value is one Go string literal however many "k=v"
// pairs it seems to contain.
func logfmtKeys(t *testing.T, line string) map[string]int {
	t.Helper()
	keys := map[string]int{}
	for rest := line; rest != ""; {
		eq := strings.IndexByte(rest, '=')
		require.Positive(t, eq, "key expected in %q", rest)
		keys[rest[:eq]]++
		rest = rest[eq+1:]
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			require.NoError(t, err, "bad quoting in %q", rest)
			rest = rest[len(q):]
		} else if sp := strings.IndexByte(rest, ' '); sp >= 0 {
			rest = rest[sp:]
		} else {
			rest = ""
		}
		rest = strings.TrimPrefix(rest, " ")
	}
	return keys
}

// splitLines splits output into lines and requires exactly n of them.
func splitLines(t *testing.T, b []byte, n int) []string {
	t.Helper()
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	require.NoError(t, sc.Err())
	require.Len(t, lines, n, "one line per event, no forged lines")
	return lines
}

// assertPrintable fails on any control character, line separator, bidi
// override or invalid UTF-8 in a log line.
func assertPrintable(t *testing.T, line string) {
	t.Helper()
	require.True(t, utf8.ValidString(line), "invalid UTF-8 in %q", line)
	for _, r := range line {
		bad := r < 0x20 || (r >= 0x7f && r <= 0x9f) || r == 0x2028 || r == 0x2029 ||
			(r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
		require.False(t, bad, "unsafe rune %U in %q", r, line)
	}
}

func FuzzEventJSON(f *testing.F) {
	for _, s := range hostile[:len(hostile)-3] {
		f.Add(s, s, s)
	}
	f.Fuzz(func(t *testing.T, tool, arg, value string) {
		e := Event{Kind: KindToolCall, Tool: tool, Subject: value, Reason: arg,
			Args: []Arg{{Name: arg, Value: value, HasValue: true}, {Name: tool}}}
		b := appendJSON(nil, &e)
		if bytes.ContainsAny(b, "\n\r") {
			t.Fatalf("newline in %q", b)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("invalid JSON %q: %v", b, err)
		}
		if m["kind"] != "tool_call" {
			t.Fatalf("kind changed: %q", b)
		}
		if len(b) > 20_000 {
			t.Fatalf("unbounded: %d bytes", len(b))
		}
		var text bytes.Buffer
		l := slog.New(slog.NewTextHandler(&text, nil))
		l.Info("x", "e", e)
		if bytes.Count(text.Bytes(), []byte("\n")) != 1 {
			t.Fatalf("text handler wrote several lines: %q", text.Bytes())
		}
	})
}
