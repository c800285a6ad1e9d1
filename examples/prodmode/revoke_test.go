package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/auth/authtest"
)

func TestParseRevocations(t *testing.T) {
	good := `{"iss":"https://idp.example.com","jti":"j1"}` + "\n" +
		"# a comment\n\n" +
		`  {"iss":"https://idp.example.com","sid":"s1"}  ` + "\n" +
		`{"iss":"https://idp.example.com","sub":"alice","iat_before":"2026-12-03T11:00:00Z"}` + "\n"
	entries, lineErrs, err := parseRevocations([]byte(good))
	require.NoError(t, err)
	require.Empty(t, lineErrs)
	require.Len(t, entries, 3)
	assert.Equal(t, auth.Revocation{Issuer: "https://idp.example.com", TokenID: "j1"}, entries[0].r)
	assert.Equal(t, 1, entries[0].line)
	assert.Equal(t, auth.Revocation{Issuer: "https://idp.example.com", SessionID: "s1"}, entries[1].r)
	assert.Equal(t, 4, entries[1].line)
	assert.Equal(t, "alice", entries[2].r.Subject)
	assert.True(t, entries[2].r.IssuedBefore.Equal(time.Date(2026, 12, 3, 11, 0, 0, 0, time.UTC)))

	for _, tc := range []struct {
		name, line, want string
	}{
		{"not JSON", `iss=x jti=y`, "not a JSON object"},
		{"unknown field", `{"iss":"i","jti":"j","token":"secret-token-value"}`, "not a JSON object"},
		{"two values", `{"iss":"i","jti":"j"} {"iss":"i","jti":"k"}`, "more than one JSON value"},
		{"no issuer", `{"jti":"j"}`, "iss is required"},
		{"two targets", `{"iss":"i","jti":"j","sid":"s"}`, "exactly one"},
		{"subject without bound", `{"iss":"i","sub":"secret-subject"}`, "needs iat_before"},
		{"bad time", `{"iss":"i","sub":"u","iat_before":"yesterday"}`, "not a JSON object"},
		{"too long", `{"iss":"i","jti":"` + strings.Repeat("x", maxRevocationLineBytes) + `"}`, "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entries, lineErrs, err := parseRevocations([]byte("\n" + tc.line + "\n"))
			require.NoError(t, err)
			assert.Empty(t, entries)
			require.Len(t, lineErrs, 1)
			assert.ErrorIs(t, lineErrs[0], errRevocationLine)
			assert.ErrorContains(t, lineErrs[0], "line 2: ")
			assert.ErrorContains(t, lineErrs[0], tc.want)
			assert.NotContains(t, lineErrs[0].Error(), "secret")
		})
	}

	_, _, err = parseRevocations([]byte(strings.Repeat("\n", maxRevocationLines)))
	assert.ErrorContains(t, err, "more than 10000 lines")
	_, _, err = parseRevocations(make([]byte, maxRevocationFileBytes+1))
	assert.ErrorContains(t, err, "larger than")
}

func FuzzParseRevocations(f *testing.F) {
	f.Add([]byte(`{"iss":"https://idp.example.com","jti":"j1"}` + "\n" + `{"iss":"i","sub":"u","iat_before":"2026-12-03T11:00:00Z"}`))
	f.Add([]byte("# c\n\n{\"iss\":\"i\",\"sid\":\"s\"}\r\n{"))
	f.Add([]byte(`{"iss":"i","jti":"j","jti":"k"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, lineErrs, err := parseRevocations(data)
		if err != nil {
			assert.Empty(t, entries)
			return
		}
		lines := strings.Count(string(data), "\n") + 1
		assert.LessOrEqual(t, len(entries)+len(lineErrs), lines)
		for _, e := range entries {
			kind, err := e.r.Kind()
			require.NoError(t, err)
			if kind == auth.RevokeSubject {
				assert.False(t, e.r.IssuedBefore.IsZero())
			}
			assert.True(t, e.line >= 1 && e.line <= lines)
		}
	})
}

// TestRevocationFile runs prodmode with MCPGUARD_REVOCATIONS_FILE and, in
// both eras, revokes already-served tokens by appending lines: each is
// refused within the poll interval, unrelated tokens are still served,
// and the audit says "revoked" without any token.
func TestRevocationFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "revocations")
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	in := start(t, map[string]*string{"MCPGUARD_REVOCATIONS_FILE": ptr(path)})
	iss := in.idp.Issuer()
	appendLine := func(line string) {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		require.NoError(t, err)
		_, err = f.WriteString(line + "\n")
		require.NoError(t, err)
		require.NoError(t, f.Close())
	}
	appendLine(`{"iss":"` + iss + `","sub":"no-bound"}`) // malformed: logged, skipped

	for _, era := range eras {
		t.Run(era, func(t *testing.T) {
			claims := func(sub, jti, sid string) map[string]any {
				m := map[string]any{"sub": sub + "-" + era, "jti": jti + "-" + era}
				if sid != "" {
					m["sid"] = sid + "-" + era
				}
				return m
			}
			byJTI := in.token(t, claims("alice", "j1", ""))
			bySID := in.token(t, claims("bob", "j2", "s1"))
			bySub := in.token(t, claims("carol", "j3", ""))
			unrelated := in.token(t, claims("alice", "j4", "s2"))
			call := map[string]func() error{}
			for _, tok := range []string{byJTI, bySID, bySub, unrelated} {
				c := in.clientIn(t, tok, era)
				call[tok] = func() error {
					_, err := c.CallTool(context.Background(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "whoami"}})
					return err
				}
				require.NoError(t, call[tok](), "served before the revocation (and now cached)")
			}

			began := time.Now()
			appendLine(`{"iss":"` + iss + `","jti":"j1-` + era + `"}`)
			appendLine(`{"iss":"` + iss + `","sid":"s1-` + era + `"}`)
			appendLine(`{"iss":"` + iss + `","sub":"carol-` + era + `","iat_before":"` + time.Now().Add(time.Second).UTC().Format(time.RFC3339) + `"}`)
			for _, tok := range []string{byJTI, bySID, bySub} {
				for in.call(t, tok, "whoami", nil).status != http.StatusUnauthorized {
					require.Less(t, time.Since(began), 10*time.Second, "the revocation never took effect")
					time.Sleep(20 * time.Millisecond)
				}
			}
			t.Logf("revocations took effect after %v (file polled every %v)", time.Since(began), revocationPoll)
			for _, tok := range []string{byJTI, bySID, bySub} {
				r := in.call(t, tok, "whoami", nil)
				assert.Equal(t, http.StatusUnauthorized, r.status)
				assert.Contains(t, r.header.Get("WWW-Authenticate"), `error_description="the access token has been revoked"`)
				assert.Error(t, call[tok](), "the era's own client is refused too")
			}
			assert.NoError(t, call[unrelated](), "an unrelated token is still served")
			text, isErr := in.toolText(t, unrelated, "whoami", nil)
			assert.False(t, isErr)
			assert.Contains(t, text, "alice-"+era)
		})
	}
	require.NoError(t, in.stop())
	logs := in.stderr.String()
	assert.Contains(t, logs, `"reason":"revoked"`)
	assert.Contains(t, logs, "line 1: sub needs iat_before")
	assert.NotContains(t, logs, "no-bound")
	for _, tok := range in.minted {
		assert.NotContains(t, logs, tok)
	}
}

// TestRevocationFileMissing: a revocation file that cannot be read stops
// prodmode before it listens, naming the variable.
func TestRevocationFileMissing(t *testing.T) {
	idp := authtest.NewServer(t)
	vars := map[string]string{
		"MCPGUARD_ADDR": "127.0.0.1:0", "MCPGUARD_ISSUER": idp.Issuer(),
		"MCPGUARD_REVOCATIONS_FILE": filepath.Join(t.TempDir(), "absent"),
	}
	err := run(t.Context(), func(k string) string { return vars[k] }, &syncBuffer{}, &syncBuffer{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "MCPGUARD_REVOCATIONS_FILE")
	assert.True(t, errors.Is(err, os.ErrNotExist), err.Error())
}

// flakyRevoker fails its first Revoke calls, as a Redis revoker does while
// Redis is down.
type flakyRevoker struct {
	auth.Revoker
	mu       sync.Mutex
	failures int
	got      []auth.Revocation
}

func (f *flakyRevoker) Revoke(_ context.Context, r auth.Revocation) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failures > 0 {
		f.failures--
		return errors.New("redis unavailable")
	}
	f.got = append(f.got, r)
	return nil
}

func (f *flakyRevoker) revoked() []auth.Revocation {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]auth.Revocation(nil), f.got...)
}

// TestRevocationFileRetries: a line whose revocation failed is applied
// later without the file changing; a line applied is never applied twice.
func TestRevocationFileRetries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "revocations")
	require.NoError(t, os.WriteFile(path, []byte(`{"iss":"i","jti":"a"}`+"\n"), 0o600))
	rev := &flakyRevoker{failures: 2}
	logs := &syncBuffer{}
	f := newRevocationFile(path, rev, slog.New(slog.NewJSONHandler(logs, nil)))
	f.changed()
	require.NoError(t, f.load(context.Background()))
	require.Empty(t, rev.revoked())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.watch(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for len(rev.revoked()) == 0 {
		require.True(t, time.Now().Before(deadline), "the failed line was never retried")
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	assert.Equal(t, []auth.Revocation{{Issuer: "i", TokenID: "a"}}, rev.revoked())
	assert.Contains(t, logs.String(), "revocation failed, retried every second")
	assert.Contains(t, logs.String(), `"line":1`)
	require.NoError(t, f.load(context.Background()))
	assert.Len(t, rev.revoked(), 1, "an applied line is not applied again")
}
