package notes

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/mcpguard/mcpguard/tenancy"
)

// The scopes the tools are guarded by (see the examples' policies).
const (
	ScopeRead  = "notes:read"
	ScopeWrite = "notes:write"
)

// Default limits of a Store.
const (
	DefaultMaxKeyBytes  = 128
	DefaultMaxTextBytes = 4 << 10
	DefaultMaxPerTenant = 1000
	DefaultMaxNotes     = 10_000
)

// Errors of the store. Their text is safe to show the caller.
var (
	ErrNotFound = errors.New("no such note")
	ErrBadKey   = errors.New("invalid key")
	ErrTooLarge = errors.New("text too long")
	ErrFull     = errors.New("note limit reached")
)

// Limits bound a Store's memory. Zero fields take the defaults, so the
// store holds at most MaxNotes × (MaxKeyBytes + MaxTextBytes) bytes of
// notes, about 40 MiB by default.
type Limits struct {
	// MaxKeyBytes caps a key's length (default 128 bytes).
	MaxKeyBytes int
	// MaxTextBytes caps a note's length (default 4 KiB).
	MaxTextBytes int
	// MaxPerTenant caps the notes of one tenant (default 1000).
	MaxPerTenant int
	// MaxNotes caps the notes of all tenants together (default 10,000).
	MaxNotes int
}

// Store keeps notes in memory under tenancy keys
// ("tenant:<id>:notes:<key>"), so every read and write is confined to the
// tenant of the request. It is safe for concurrent use.
type Store struct {
	lim Limits

	mu        sync.RWMutex
	notes     map[string]note // by tenancy key
	perTenant map[string]int
	onChange  func(tenant, key string)
}

// OnChange makes every successful Write call f with the note's tenant and
// key, after the store's lock is released. Set it before the store is used;
// nil (the default) calls nothing. f must not block for long: it runs on the
// writer's goroutine.
func (s *Store) OnChange(f func(tenant, key string)) { s.onChange = f }

type note struct {
	tenant string // the owner, checked again on every read
	key    string
	text   string
}

// NewStore returns an empty store bounded by lim.
func NewStore(lim Limits) *Store {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&lim.MaxKeyBytes, DefaultMaxKeyBytes)
	def(&lim.MaxTextBytes, DefaultMaxTextBytes)
	def(&lim.MaxPerTenant, DefaultMaxPerTenant)
	def(&lim.MaxNotes, DefaultMaxNotes)
	return &Store{lim: lim, notes: make(map[string]note), perTenant: make(map[string]int)}
}

// checkKey accepts 1 to MaxKeyBytes bytes of printable UTF-8.
func (s *Store) checkKey(key string) error {
	if key == "" || len(key) > s.lim.MaxKeyBytes || !utf8.ValidString(key) ||
		strings.ContainsFunc(key, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return fmt.Errorf("%w: a key is 1 to %d bytes of printable text", ErrBadKey, s.lim.MaxKeyBytes)
	}
	return nil
}

// Write stores text under key in the tenant's partition, replacing any note
// already there.
func (s *Store) Write(ctx context.Context, key, text string) error {
	if err := s.checkKey(key); err != nil {
		return err
	}
	if len(text) > s.lim.MaxTextBytes {
		return fmt.Errorf("%w: a note holds at most %d bytes", ErrTooLarge, s.lim.MaxTextBytes)
	}
	tenant, err := tenancy.Require(ctx)
	if err != nil {
		return err
	}
	k, err := tenancy.KeyFor(tenant, "notes", key)
	if err != nil {
		return err
	}
	if err := s.put(k, note{tenant: tenant, key: key, text: text}); err != nil {
		return err
	}
	if s.onChange != nil {
		s.onChange(tenant, key)
	}
	return nil
}

func (s *Store) put(k string, n note) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.notes[k]; !ok {
		switch {
		case s.perTenant[n.tenant] >= s.lim.MaxPerTenant:
			return fmt.Errorf("%w: a tenant keeps at most %d notes", ErrFull, s.lim.MaxPerTenant)
		case len(s.notes) >= s.lim.MaxNotes:
			return fmt.Errorf("%w: the server is full", ErrFull)
		}
		s.perTenant[n.tenant]++
	}
	s.notes[k] = n
	return nil
}

// Read returns the note stored under key in the tenant's partition.
func (s *Store) Read(ctx context.Context, key string) (string, error) {
	if err := s.checkKey(key); err != nil {
		return "", err
	}
	k, err := tenancy.Key(ctx, "notes", key)
	if err != nil {
		return "", err
	}
	s.mu.RLock()
	n, ok := s.notes[k]
	s.mu.RUnlock()
	if !ok {
		return "", fmt.Errorf("%w: %q", ErrNotFound, key)
	}
	// The row-level guard: a record read back must belong to the caller's
	// tenant, even though the key already said so.
	if err := tenancy.Check(ctx, n.tenant); err != nil {
		return "", err
	}
	return n.text, nil
}

// List returns the keys of the tenant's notes, sorted.
func (s *Store) List(ctx context.Context) ([]string, error) {
	tenant, err := tenancy.Require(ctx)
	if err != nil {
		return nil, err
	}
	keys := []string{}
	s.mu.RLock()
	for _, n := range s.notes {
		if n.tenant == tenant {
			keys = append(keys, n.key)
		}
	}
	s.mu.RUnlock()
	slices.Sort(keys)
	return keys, nil
}
