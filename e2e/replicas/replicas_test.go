package replicas

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth/authtest"
)

// sealKey is the MCPGUARD_SEAL_KEY both replicas share (32 bytes, base64).
const sealKey = "c2VhbC1rZXktZm9yLXRoZS1yZXBsaWNhcy10ZXN0ISE="

// redisServer is a redis-server on loopback with an append-only file, so a
// restart keeps what was written (as a production Redis would).
type redisServer struct {
	t        *testing.T
	bin, dir string
	port     int
	addr     string
	mu       sync.Mutex
	cmd      *exec.Cmd
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not found in PATH (apt-get install redis-server; .ci/run does)")
	}
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Skip("redis-cli not found in PATH")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	s := &redisServer{t: t, bin: bin, dir: t.TempDir(), port: port, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *redisServer) start() {
	s.t.Helper()
	cmd := exec.Command(s.bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(s.port), "--save", "",
		"--appendonly", "yes", "--appendfsync", "always", "--dir", s.dir, "--loglevel", "warning")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	require.NoError(s.t, cmd.Start())
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if out, err := s.cli("PING"); err == nil && strings.TrimSpace(out) == "PONG" {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on %s did not answer", s.addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *redisServer) stop() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}

func (s *redisServer) cli(args ...string) (string, error) {
	out, err := exec.Command("redis-cli", append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(s.port), "--raw"}, args...)...).Output()
	return string(out), err
}

// buildProdmode compiles examples/prodmode from the root module once.
var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func buildProdmode(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		dir, err := os.MkdirTemp("", "prodmode-replicas")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "prodmode")
		out, err := exec.Command("go", "build", "-C", root, "-o", binPath, "./examples/prodmode").CombinedOutput()
		if err != nil {
			buildErr = err
			t.Log(string(out))
		}
	})
	require.NoError(t, buildErr)
	return binPath
}

// replica is one prodmode process.
type replica struct {
	url    string // where it listens: http://<addr>/mcp
	stderr *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startReplica starts prodmode listening on addr with env.
func startReplica(t *testing.T, addr string, env []string) *replica {
	t.Helper()
	cmd := exec.Command(buildProdmode(t))
	cmd.Env = append(append(os.Environ(), env...), "MCPGUARD_ADDR="+addr)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	r := &replica{url: "http://" + addr + "/mcp", stderr: &lockedBuffer{}}
	cmd.Stderr = r.stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case l := <-line:
		require.True(t, strings.HasPrefix(l, "listening on "), l)
	case <-time.After(60 * time.Second):
		t.Fatalf("replica did not start: %s", r.stderr.String())
	}
	return r
}

// freeAddr returns a loopback address nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

type response struct {
	status int
	header http.Header
	body   string
}

func send(t *testing.T, method, url, body string, hdr map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{resp.StatusCode, resp.Header, string(b)}
}

const initBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"replicas-test","version":"1"}}}`

func listBody() string { return `{"jsonrpc":"2.0","id":2,"method":"tools/list"}` }

// statelessCall is a 2026-07-28 stateless tools/call of whoami.
func statelessCall() (string, map[string]string) { return toolCall("whoami") }

// toolCall is a 2026-07-28 stateless tools/call of tool.
func toolCall(tool string) (string, map[string]string) {
	b, _ := json.Marshal(map[string]any{
		"jsonrpc": "2.0", "id": 1, "method": "tools/call",
		"params": map[string]any{
			"name": tool,
			"_meta": map[string]any{
				mcp.MetaKeyProtocolVersion:    mcp.ProtocolVersion20260728,
				mcp.MetaKeyClientInfo:         map[string]any{"name": "replicas-test", "version": "1"},
				mcp.MetaKeyClientCapabilities: map[string]any{},
			},
		},
	})
	return string(b), map[string]string{
		mcp.HeaderProtocolVersion: mcp.ProtocolVersion20260728,
		mcp.HeaderMethod:          "tools/call",
		mcp.HeaderName:            tool,
	}
}

func with(h map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func TestTwoReplicasShareRedis(t *testing.T) {
	rds := startRedis(t)
	idp := authtest.NewServer(t)
	// Both replicas serve one resource URL, as behind a load balancer: the
	// token audience and the DPoP htu are the same for both.
	resource := "http://" + freeAddr(t) + "/mcp"
	require.NoError(t, idp.RegisterClient(authtest.Client{ID: "prodmode", Secret: "replicas-client-secret", AuthMethod: authtest.ClientSecretBasic, Audience: resource}))
	var apiMu sync.Mutex
	var apiSeen []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apiMu.Lock()
		apiSeen = append(apiSeen, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		apiMu.Unlock()
		_, _ = w.Write([]byte("calendar"))
	}))
	t.Cleanup(api.Close)
	env := []string{
		"MCPGUARD_DOWNSTREAM_URL=" + api.URL + "/events",
		"MCPGUARD_DOWNSTREAM_AUDIENCE=https://calendar.example.com",
		"MCPGUARD_CLIENT_ID=prodmode",
		"MCPGUARD_CLIENT_SECRET=replicas-client-secret",
		"MCPGUARD_ISSUER=" + idp.Issuer(),
		"MCPGUARD_RESOURCE=" + resource,
		"MCPGUARD_REDIS_URL=redis://" + rds.addr,
		"MCPGUARD_SEAL_KEY=" + sealKey,
		"MCPGUARD_DPOP=allowed",
		"MCPGUARD_RATE_LIMIT=1000",
	}
	// The operator's revocation file is replica 1's; the list is shared.
	revocations := filepath.Join(t.TempDir(), "revocations")
	require.NoError(t, os.WriteFile(revocations, nil, 0o600))
	r1 := startReplica(t, freeAddr(t), append(env, "MCPGUARD_REVOCATIONS_FILE="+revocations))
	// Replica 1 keeps the revocation list's default outage policy (fail
	// closed); replica 2 opts into serving from its last copy.
	r2 := startReplica(t, freeAddr(t), append(env, "MCPGUARD_REVOCATION_ON_OUTAGE=degrade"))
	u1, u2 := r1.url, r2.url

	minted := []string{}
	token := func(sub string) string {
		tok := idp.MustMint(map[string]any{"aud": resource, "sub": sub, "tenant_id": "acme", "scope": "notes:read"})
		minted = append(minted, tok)
		return tok
	}
	alice := token("alice-replicas")
	bearer := map[string]string{"Authorization": "Bearer " + alice}
	sessionHdr := func(id string) map[string]string {
		return with(bearer, "Mcp-Session-Id", id, mcp.HeaderProtocolVersion, "2025-11-25")
	}

	// 2025-11-25 sessions: created on 1, served by 2, deleted on 2, refused
	// by both.
	res := send(t, http.MethodPost, u1, initBody, bearer)
	require.Equal(t, http.StatusOK, res.status, res.body)
	sid := res.header.Get("Mcp-Session-Id")
	require.NotEmpty(t, sid)
	assert.Equal(t, http.StatusOK, send(t, http.MethodPost, u2, listBody(), sessionHdr(sid)).status, "replica 2 serves replica 1's session")
	assert.Equal(t, http.StatusOK, send(t, http.MethodPost, u1, listBody(), sessionHdr(sid)).status)
	del := send(t, http.MethodDelete, u2, "", sessionHdr(sid))
	require.Less(t, del.status, 300, del.body)
	deleted := time.Now()
	assert.Equal(t, http.StatusNotFound, send(t, http.MethodPost, u2, listBody(), sessionHdr(sid)).status, "refused at once where deleted")
	// prodmode's terminated sessions are Immediate: refused on the other
	// replica at once.
	assert.Equal(t, http.StatusNotFound, send(t, http.MethodPost, u1, listBody(), sessionHdr(sid)).status, "deleted on 2, refused on 1 at once")
	t.Logf("deleted on 2, refused on 1 after %v", time.Since(deleted))

	// 2026-07-28 stateless calls with DPoP: a proof used on 1 is refused on 2.
	key, err := authtest.NewDPoPKey("ES256")
	require.NoError(t, err)
	bound := idp.MustMintBound(map[string]any{"aud": resource, "sub": "dpop-user", "tenant_id": "acme", "scope": "notes:read"}, key)
	minted = append(minted, bound)
	body, hdr := statelessCall()
	proof := key.MustSign(authtest.Proof{Method: http.MethodPost, URL: resource, AccessToken: bound})
	dpopHdr := with(hdr, "Authorization", "DPoP "+bound, "DPoP", proof)
	res = send(t, http.MethodPost, u1, body, dpopHdr)
	require.Equal(t, http.StatusOK, res.status, res.body)
	res = send(t, http.MethodPost, u2, body, dpopHdr)
	assert.Equal(t, http.StatusUnauthorized, res.status, "the proof used on 1 is a replay on 2")
	assert.Contains(t, strings.Join(res.header.Values("WWW-Authenticate"), "\n"), `error="invalid_dpop_proof"`)
	fresh := with(hdr, "Authorization", "DPoP "+bound, "DPoP", key.MustSign(authtest.Proof{Method: http.MethodPost, URL: resource, AccessToken: bound}))
	assert.Equal(t, http.StatusOK, send(t, http.MethodPost, u2, body, fresh).status, "a fresh proof passes on 2")

	// Stateless bearer calls in the 2026-07-28 era work on both.
	for _, u := range []string{u1, u2} {
		assert.Equal(t, http.StatusOK, send(t, http.MethodPost, u, body, with(hdr, "Authorization", "Bearer "+alice)).status)
	}

	// The same user and target on both replicas: one exchange between them.
	downstream := func(u, tok string) int {
		b, h := toolCall("downstream_get")
		res := send(t, http.MethodPost, u, b, with(h, "Authorization", "Bearer "+tok))
		require.Equal(t, http.StatusOK, res.status, res.body)
		require.Contains(t, res.body, `\"status\":200`, res.body)
		return idp.TokenRequests()
	}
	before := idp.TokenRequests()
	assert.Equal(t, before+1, downstream(u1, alice))
	assert.Equal(t, before+1, downstream(u2, alice), "replica 2 uses replica 1's exchanged token")
	bob := token("bob-replicas")
	assert.Equal(t, before+2, downstream(u2, bob), "another user exchanges")

	// The limits live in Redis too.
	keys, err := rds.cli("KEYS", "*mcpguard:ratelimit:*")
	require.NoError(t, err)
	assert.NotEmpty(t, strings.TrimSpace(keys), "rate-limit budgets are kept in Redis")

	// A token revoked on replica 1 (its revocation file) is refused by both,
	// on a warm cache, within the stated delay: once replica 1 refuses it
	// (the entry is in Redis), replica 2 refuses it within one second.
	revokedJTI := "replicas-revoked-jti"
	doomed := idp.MustMint(map[string]any{"aud": resource, "sub": "bob-replicas", "tenant_id": "acme", "scope": "notes:read", "jti": revokedJTI})
	minted = append(minted, doomed)
	doomedHdr := with(hdr, "Authorization", "Bearer "+doomed)
	for _, u := range []string{u1, u2} {
		require.Equal(t, http.StatusOK, send(t, http.MethodPost, u, body, doomedHdr).status, "served (and cached) before the revocation")
	}
	line := `{"iss":"` + idp.Issuer() + `","jti":"` + revokedJTI + `"}` + "\n"
	require.NoError(t, os.WriteFile(revocations, []byte(line), 0o600))
	written := time.Now()
	for send(t, http.MethodPost, u1, body, doomedHdr).status != http.StatusUnauthorized {
		require.Less(t, time.Since(written), 20*time.Second, "replica 1 never applied its revocation file")
		time.Sleep(10 * time.Millisecond)
	}
	inRedis := time.Now()
	var onBoth time.Duration
	for {
		res := send(t, http.MethodPost, u2, body, doomedHdr)
		if res.status == http.StatusUnauthorized {
			onBoth = time.Since(inRedis)
			assert.Contains(t, res.header.Get("WWW-Authenticate"), "the access token has been revoked")
			break
		}
		if time.Since(inRedis) > time.Second {
			// By construction a check made a second after the entry
			// reached Redis refuses; one more, now that it is past.
			res = send(t, http.MethodPost, u2, body, doomedHdr)
			require.Equal(t, http.StatusUnauthorized, res.status, "replica 2 still serves a token revoked over a second ago")
			onBoth = time.Since(inRedis)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("revocation: replica 1 applied its file after %v; replica 2 refused %v later (bound 1 s)", inRedis.Sub(written), onBoth)
	for _, u := range []string{u1, u2} {
		assert.Equal(t, http.StatusOK, send(t, http.MethodPost, u, body, with(hdr, "Authorization", "Bearer "+alice)).status, "an unrelated token is still served")
	}

	// A live session for the outage.
	res = send(t, http.MethodPost, u1, initBody, bearer)
	require.Equal(t, http.StatusOK, res.status, res.body)
	live := res.header.Get("Mcp-Session-Id")

	// Redis killed: each store answers by its policy.
	rds.stop()
	assert.Equal(t, http.StatusServiceUnavailable, send(t, http.MethodPost, u2, initBody, bearer).status,
		"session counts fail closed")
	down := with(hdr, "Authorization", "DPoP "+bound, "DPoP", key.MustSign(authtest.Proof{Method: http.MethodPost, URL: resource, AccessToken: bound}))
	// (On replica 2: replica 1's revocation list may already refuse for
	// want of Redis, before the proof's replay check is reached.)
	assert.Equal(t, http.StatusServiceUnavailable, send(t, http.MethodPost, u2, body, down).status, "DPoP replay fails closed")
	assert.Equal(t, http.StatusOK, send(t, http.MethodPost, u2, body, with(hdr, "Authorization", "Bearer "+alice)).status,
		"rate limits degrade to local: stateless bearer calls go on")
	assert.Equal(t, http.StatusNotFound, send(t, http.MethodPost, u2, listBody(), sessionHdr(sid)).status,
		"a session this replica deleted stays refused without Redis")
	// Once a replica's copy of the revocation list is a second old: replica
	// 1 (default) fails closed for every authenticated request; replica 2
	// (degrade) keeps refusing the revoked token and serves the others.
	// Likewise the copies of the ended sessions: requests carrying a live
	// session ID fail closed on both replicas.
	time.Sleep(1100 * time.Millisecond)
	for _, u := range []string{u1, u2} {
		assert.Equal(t, http.StatusServiceUnavailable, send(t, http.MethodPost, u, listBody(), sessionHdr(live)).status,
			"terminated sessions fail closed")
	}
	assert.Equal(t, http.StatusServiceUnavailable, send(t, http.MethodPost, u1, body, with(hdr, "Authorization", "Bearer "+alice)).status,
		"revocation fails closed by default")
	assert.Equal(t, http.StatusUnauthorized, send(t, http.MethodPost, u2, body, doomedHdr).status, "still revoked without Redis")
	assert.Equal(t, http.StatusOK, send(t, http.MethodPost, u2, body, with(hdr, "Authorization", "Bearer "+alice)).status,
		"revocation degrades to the local copy where chosen")
	carol := token("carol-replicas")
	n := idp.TokenRequests()
	assert.Equal(t, n+1, downstream(u2, carol), "the token cache degrades to local: exchanged")
	assert.Equal(t, n+1, downstream(u2, carol), "and cached in the replica")

	// Redis back (with its append-only file): service resumes, replicas untouched.
	rds.start()
	deadline := time.Now().Add(30 * time.Second)
	for send(t, http.MethodPost, u2, listBody(), sessionHdr(live)).status != http.StatusOK {
		require.True(t, time.Now().Before(deadline), "replica 2 did not resume")
		time.Sleep(100 * time.Millisecond)
	}
	// Replica 1 too: its client may still be waiting out go-redis's dial
	// back-off (its revocation poller kept dialling through the outage).
	for send(t, http.MethodPost, u1, listBody(), sessionHdr(live)).status != http.StatusOK {
		require.True(t, time.Now().Before(deadline), "replica 1 did not resume")
		time.Sleep(100 * time.Millisecond)
	}
	assert.Equal(t, http.StatusNotFound, send(t, http.MethodPost, u1, listBody(), sessionHdr(sid)).status, "still deleted after the restart")
	res = send(t, http.MethodPost, u2, initBody, bearer)
	assert.Equal(t, http.StatusOK, res.status, res.body)
	again := with(hdr, "Authorization", "DPoP "+bound, "DPoP", key.MustSign(authtest.Proof{Method: http.MethodPost, URL: resource, AccessToken: bound}))
	assert.Equal(t, http.StatusOK, send(t, http.MethodPost, u1, body, again).status)
	assert.Equal(t, http.StatusUnauthorized, send(t, http.MethodPost, u2, body, again).status, "replay refused across replicas again")
	for _, u := range []string{u1, u2} {
		assert.Equal(t, http.StatusUnauthorized, send(t, http.MethodPost, u, body, doomedHdr).status, "still revoked after the restart")
	}

	// The outage was audited, per store, and its end too.
	for _, want := range []string{`"reason":"terminated_sessions:fail_closed"`, `"reason":"session_counts:fail_closed"`,
		`"reason":"dpop_replay:fail_closed"`, `"reason":"rate_limits:degrade_local"`, `"reason":"terminated_sessions:recovered"`,
		`"reason":"revocation:degrade_local"`, `"reason":"revocation:fail_closed"`, `"reason":"revoked"`, `"reason":"obo_tokens:degrade_local"`} {
		assert.Contains(t, r1.stderr.String()+r2.stderr.String(), want)
	}

	// No token, secret or raw subject in any key or value.
	dump := keyspace(t, rds)
	require.NotEmpty(t, dump)
	apiMu.Lock()
	exchanged := append([]string(nil), apiSeen...)
	apiMu.Unlock()
	require.NotEmpty(t, exchanged)
	for _, tok := range exchanged {
		assert.NotContains(t, minted, tok, "no token passthrough")
	}
	for _, needle := range append(append(minted, exchanged...), sealKey, "replicas-client-secret", "alice-replicas", "bob-replicas", "dpop-user", revokedJTI, sid, live, key.Thumbprint()) {
		assert.NotContains(t, dump, needle)
		for _, part := range strings.Split(needle, ".") {
			if len(part) >= 16 {
				assert.NotContains(t, dump, part)
			}
		}
	}
	for _, r := range []*replica{r1, r2} {
		for _, tok := range minted {
			assert.NotContains(t, r.stderr.String(), tok, "no token in logs or audit")
		}
	}
}

// keyspace dumps every key and value as text.
func keyspace(t *testing.T, rds *redisServer) string {
	t.Helper()
	keys, err := rds.cli("KEYS", "*")
	require.NoError(t, err)
	var b strings.Builder
	for _, k := range strings.Fields(keys) {
		b.WriteString(k + "\n")
		typ, err := rds.cli("TYPE", k)
		require.NoError(t, err)
		var out string
		switch strings.TrimSpace(typ) {
		case "string":
			out, err = rds.cli("GET", k)
		case "hash":
			out, err = rds.cli("HGETALL", k)
		case "zset":
			out, err = rds.cli("ZRANGE", k, "0", "-1")
		default:
			out = typ
		}
		require.NoError(t, err)
		b.WriteString(out + "\n")
	}
	return b.String()
}
