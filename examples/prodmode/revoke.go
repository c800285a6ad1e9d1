package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mcpguard/mcpguard/auth"
)

// Limits of the revocation file (MCPGUARD_REVOCATIONS_FILE), which the
// operator writes: it is read with the same care as any other input.
const (
	maxRevocationFileBytes = 1 << 20
	maxRevocationLines     = 10_000
	maxRevocationLineBytes = 4 << 10
	// revocationPoll is how often the file's size and modification time
	// are looked at; SIGHUP reads it at once.
	revocationPoll = 250 * time.Millisecond
)

// revoker is what the file feeds: an auth.MemoryRevoker, or the Redis
// revoker shared by every replica.
type revoker interface {
	auth.Revoker
	Revoke(ctx context.Context, r auth.Revocation) error
}

// errRevocationLine wraps what is wrong with one line of the file. The
// message names the line number and the field, never a value.
var errRevocationLine = errors.New("revocation file")

// parseRevocations reads the revocation file: one JSON object per line,
//
//	{"iss":"https://idp.example.com","jti":"…"}
//	{"iss":"https://idp.example.com","sid":"…"}
//	{"iss":"https://idp.example.com","sub":"…","iat_before":"2026-12-03T11:00:00Z"}
//
// Blank lines and lines starting with '#' are skipped. A subject's
// iat_before is required here (the file is re-read, so "now" would move).
// It returns the well-formed lines with their numbers and one error per
// malformed line; the file as a whole is refused (fileErr, nothing else
// returned) when it has more than maxRevocationLines lines or
// maxRevocationFileBytes bytes.
func parseRevocations(data []byte) (out []numberedRevocation, lineErrs []error, fileErr error) {
	if len(data) > maxRevocationFileBytes {
		return nil, nil, fmt.Errorf("%w: larger than %d bytes", errRevocationLine, maxRevocationFileBytes)
	}
	if bytes.Count(data, []byte{'\n'}) >= maxRevocationLines {
		return nil, nil, fmt.Errorf("%w: more than %d lines", errRevocationLine, maxRevocationLines)
	}
	for n, line := range bytes.Split(data, []byte{'\n'}) {
		n++
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		r, err := parseRevocationLine(line)
		if err != nil {
			lineErrs = append(lineErrs, fmt.Errorf("%w: line %d: %v", errRevocationLine, n, err))
			continue
		}
		out = append(out, numberedRevocation{line: n, r: r, sum: sha256.Sum256(line)})
	}
	return out, lineErrs, nil
}

type numberedRevocation struct {
	line int
	r    auth.Revocation
	sum  [sha256.Size]byte
}

func parseRevocationLine(line []byte) (auth.Revocation, error) {
	if len(line) > maxRevocationLineBytes {
		return auth.Revocation{}, fmt.Errorf("longer than %d bytes", maxRevocationLineBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var r auth.Revocation
	if err := dec.Decode(&r); err != nil {
		return auth.Revocation{}, errors.New("not a JSON object of iss, jti, sid, sub and iat_before")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return auth.Revocation{}, errors.New("more than one JSON value")
	}
	kind, err := r.Kind()
	if err != nil {
		return auth.Revocation{}, err
	}
	if kind == auth.RevokeSubject && r.IssuedBefore.IsZero() {
		return auth.Revocation{}, errors.New("sub needs iat_before (an RFC 3339 time)")
	}
	return r, nil
}

// revocationFile applies the lines of the operator's revocation file to a
// revoker, each line once, when the file changes and on SIGHUP.
type revocationFile struct {
	path string
	rev  revoker
	log  *slog.Logger

	applied map[[sha256.Size]byte]struct{} // lines already revoked, at most maxRevocationLines
	pending bool                           // a line's Revoke failed (Redis down, list full): retry
	retried time.Time
	size    int64
	mod     time.Time
}

func newRevocationFile(path string, rev revoker, log *slog.Logger) *revocationFile {
	return &revocationFile{path: path, rev: rev, log: log, applied: make(map[[sha256.Size]byte]struct{})}
}

// load reads the file and revokes what its new lines name. It returns
// the first error that makes the file unusable (unreadable, too large);
// malformed lines and refused revocations are logged and retried on the
// next change.
func (f *revocationFile) load(ctx context.Context) error {
	fh, err := os.Open(f.path)
	if err != nil {
		return err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxRevocationFileBytes+1))
	if err != nil {
		return err
	}
	entries, lineErrs, err := parseRevocations(data)
	if err != nil {
		return err
	}
	for _, err := range lineErrs {
		f.log.Error("mcpguard: revocation refused", "file", f.path, "error", err.Error())
	}
	applied := 0
	f.pending = false
	for _, e := range entries {
		if _, done := f.applied[e.sum]; done {
			continue
		}
		if err := f.rev.Revoke(ctx, e.r); err != nil {
			f.log.Error("mcpguard: revocation failed, retried every second", "file", f.path, "line", e.line, "error", err.Error())
			f.pending = true
			continue
		}
		if len(f.applied) < maxRevocationLines {
			f.applied[e.sum] = struct{}{}
		}
		applied++
	}
	if applied > 0 {
		f.log.Info("mcpguard: revocations applied", "file", f.path, "count", applied)
	}
	return nil
}

// changed reports whether the file's size or modification time moved
// since the last call.
func (f *revocationFile) changed() bool {
	st, err := os.Stat(f.path)
	if err != nil {
		return false
	}
	if st.Size() == f.size && st.ModTime().Equal(f.mod) {
		return false
	}
	f.size, f.mod = st.Size(), st.ModTime()
	return true
}

// watch re-reads the file when it changes (polled every revocationPoll),
// on SIGHUP, and once a second while a line could not be revoked, until
// ctx ends.
func (f *revocationFile) watch(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	tick := time.NewTicker(revocationPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			f.changed()
		case now := <-tick.C:
			// A failed line is retried once a second even if the file
			// did not change (Redis may be back).
			retry := f.pending && now.Sub(f.retried) >= time.Second
			if !f.changed() && !retry {
				continue
			}
			f.retried = now
		}
		if err := f.load(ctx); err != nil {
			f.log.Error("mcpguard: revocation file unreadable", "file", f.path, "error", err.Error())
		}
	}
}

// newRevoker returns the revoker prodmode's validator consults, with what
// to close: with Redis (sh not nil) the list shared by every replica, fed
// by this replica's revocation file if it has one; without Redis a memory
// list when there is a file; otherwise none (nil).
func newRevoker(ctx context.Context, cfg config, sh *shared, logger *slog.Logger) (revoker, func() error, error) {
	noop := func() error { return nil }
	var rev revoker
	switch {
	case sh != nil:
		rev = sh.revoker
	case cfg.revocationsFile == "":
		return nil, noop, nil
	default:
		m, err := auth.NewMemoryRevoker(auth.RevokerConfig{})
		if err != nil {
			return nil, nil, err
		}
		rev = m
	}
	if cfg.revocationsFile == "" {
		return rev, noop, nil
	}
	file := newRevocationFile(cfg.revocationsFile, rev, logger)
	file.changed() // the size and time the first load sees
	if err := file.load(ctx); err != nil {
		return nil, nil, fmt.Errorf("MCPGUARD_REVOCATIONS_FILE: %w (create it empty to start with no revocations)", err)
	}
	watchCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		file.watch(watchCtx)
	}()
	return rev, func() error { cancel(); <-done; return nil }, nil
}
