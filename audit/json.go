package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"sync"
	"time"

	"github.com/mcpguard/mcpguard/internal/redact"
)

// JSONSink writes each event as one line of JSON (JSON Lines) to an
// io.Writer, with one Write call per event so lines from concurrent
// callers never interleave. An Async Recorder hands it the events queued
// up at once, and it writes them as whole lines, many per Write: one
// system call per batch rather than per event. A Write holds at most 4 KiB
// (PIPE_BUF), so that lines stay whole on a pipe other processes write to,
// or 64 KiB when the writer is a regular file (an *os.File, or any writer
// with Stat, whose mode says so): local file systems on Linux do not
// interleave concurrent writes to a file at any size, so the smaller bound
// would only cost system calls. A line longer than the bound is written
// alone.
//
// Keys are snake_case, empty fields are omitted, "time" is RFC 3339 with
// nanoseconds in UTC and "duration_ns" is an integer. Strings are escaped
// beyond what RFC 8259 requires (DEL, C1 controls, U+2028/U+2029, bidi
// overrides; invalid UTF-8 becomes U+FFFD), so a line is printable text
// and no value can start a new line.
//
// A JSONSink is safe for concurrent use. It does not buffer: when Emit
// returns, the line has been handed to the writer.
type JSONSink struct {
	mu    sync.Mutex
	w     io.Writer
	buf   []byte
	batch int // the most bytes of whole lines emitBatch writes at once
}

// maxRetainedBuf is the largest line buffer kept between events.
const maxRetainedBuf = 64 << 10

// NewJSONSink returns a sink writing JSON lines to w. It returns an error
// wrapping ErrConfig when w is nil.
func NewJSONSink(w io.Writer) (*JSONSink, error) {
	if w == nil {
		return nil, fmt.Errorf("%w: NewJSONSink: writer is nil", ErrConfig)
	}
	return &JSONSink{w: w, buf: make([]byte, 0, 1024), batch: batchLimit(w)}, nil
}

// batchLimit is how many bytes of whole lines one Write to w may hold:
// fileBatchBytes for a regular file, batchBytes for anything else.
func batchLimit(w io.Writer) int {
	f, ok := w.(interface{ Stat() (fs.FileInfo, error) })
	if !ok {
		return batchBytes
	}
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		return fileBatchBytes
	}
	return batchBytes
}

// Emit writes e as one JSON line.
func (s *JSONSink) Emit(_ context.Context, e Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = appendJSON(s.buf[:0], &e)
	s.buf = append(s.buf, '\n')
	_, err := s.write(s.buf)
	s.trim()
	return err
}

// trim drops a line buffer grown past maxRetainedBuf.
func (s *JSONSink) trim() {
	if cap(s.buf) > maxRetainedBuf {
		s.buf = make([]byte, 0, 1024)
	}
}

// batchBytes bounds one Write of emitBatch: PIPE_BUF on Linux, the size up
// to which a write to a pipe is atomic, so whole lines stay whole even on
// a pipe other processes write to. A line longer than that is written
// alone.
const batchBytes = 4096

// fileBatchBytes bounds one Write of emitBatch to a regular file. A local
// file system holds the file's lock for the whole of a write, and appends
// each O_APPEND write whole, so this bound is not for atomicity: it keeps
// the line buffer within what the sink retains (maxRetainedBuf).
const fileBatchBytes = maxRetainedBuf

// emitBatch writes events as JSON lines, as many whole lines per Write as
// fit in s.batch. On an error it counts the lines the writer took
// whole.
func (s *JSONSink) emitBatch(_ context.Context, events []Event) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.trim()
	written, pending := 0, 0 // events written, events in s.buf
	s.buf = s.buf[:0]
	for i := range events {
		mark := len(s.buf)
		s.buf = appendJSON(s.buf, &events[i])
		s.buf = append(s.buf, '\n')
		if len(s.buf) > s.batch && mark > 0 {
			// This line does not fit: write the ones before it.
			if n, err := s.write(s.buf[:mark]); err != nil {
				return written + bytes.Count(s.buf[:n], []byte{'\n'}), err
			}
			written += pending
			s.buf = s.buf[:copy(s.buf, s.buf[mark:])]
			pending = 0
		}
		pending++
	}
	if n, err := s.write(s.buf); err != nil {
		return written + bytes.Count(s.buf[:n], []byte{'\n'}), err
	}
	return written + pending, nil
}

// write writes b in one Write call, returning how much of b the writer
// took (within b) and an error wrapping ErrSink if not all of it.
func (s *JSONSink) write(b []byte) (int, error) {
	n, err := s.w.Write(b)
	n = min(max(n, 0), len(b))
	if err == nil && n != len(b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return n, errors.Join(ErrSink, err)
	}
	return n, nil
}

func appendKey(dst []byte, key string) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, key...)
	return append(dst, '"', ':')
}

func appendStr(dst []byte, key, v string, max int) []byte {
	if v == "" {
		return dst
	}
	return redact.AppendJSONString(appendKey(dst, key), v, max)
}

// appendJSON appends e as a JSON object. Keys are fixed ASCII literals.
func appendJSON(dst []byte, e *Event) []byte {
	dst = append(dst, `{"time":"`...)
	dst = e.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","kind":"`...)
	dst = append(dst, e.Kind.String()...)
	dst = append(dst, '"')
	dst = appendStr(dst, "request_id", e.RequestID, MaxIDLen)
	dst = appendStr(dst, "session_id", e.SessionID, MaxIDLen)
	dst = appendStr(dst, "rpc_id", e.RPCID, MaxIDLen)
	dst = appendStr(dst, "subject", e.Subject, MaxTextLen)
	dst = appendStr(dst, "actor", e.Actor, MaxTextLen)
	dst = appendStr(dst, "client_id", e.ClientID, MaxTextLen)
	dst = appendStr(dst, "auth_kind", e.AuthKind, MaxNameLen)
	dst = appendStr(dst, "job_id", e.JobID, MaxIDLen)
	dst = appendStr(dst, "tenant", e.Tenant, MaxTextLen)
	dst = appendStr(dst, "tool", e.Tool, MaxNameLen)
	dst = appendStr(dst, "resource", e.Resource, MaxTextLen)
	dst = appendStr(dst, "prompt", e.Prompt, MaxNameLen)
	dst = appendStr(dst, "audience", e.Audience, MaxTextLen)
	dst = appendStr(dst, "grant", e.Grant, MaxNameLen)
	dst = appendStr(dst, "limit", e.Limit, MaxNameLen)
	dst = appendStr(dst, "method", e.Method, MaxNameLen)
	dst = appendStr(dst, "path", e.Path, MaxTextLen)
	dst = appendStr(dst, "remote_addr", e.RemoteAddr, MaxTextLen)
	dst = appendStr(dst, "decision", e.Decision.String(), MaxNameLen)
	dst = appendStr(dst, "reason", e.Reason, MaxNameLen)
	if e.Status != 0 {
		dst = strconv.AppendInt(appendKey(dst, "status"), int64(e.Status), 10)
	}
	if e.Duration != 0 {
		dst = strconv.AppendInt(appendKey(dst, "duration_ns"), int64(e.Duration), 10)
	}
	dst = appendStr(dst, "error_class", e.ErrorClass, MaxNameLen)
	if n := min(len(e.Args), MaxArgs); n > 0 {
		args := e.Args[:n]
		dst = appendKey(dst, "args")
		dst = append(dst, '[')
		hasValues := false
		for i := range args {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = redact.AppendJSONString(dst, args[i].Name, MaxNameLen)
			hasValues = hasValues || args[i].HasValue
		}
		dst = append(dst, ']')
		if hasValues {
			dst = appendKey(dst, "arg_values")
			dst = append(dst, '{')
			first := true
			for i := range args {
				if !args[i].HasValue {
					continue
				}
				if !first {
					dst = append(dst, ',')
				}
				first = false
				dst = redact.AppendJSONString(dst, args[i].Name, MaxNameLen)
				dst = append(dst, ':')
				dst = redact.AppendJSONString(dst, args[i].Value, MaxTextLen)
			}
			dst = append(dst, '}')
		}
	}
	if omitted := e.ArgsOmitted + max(len(e.Args)-MaxArgs, 0); omitted > 0 {
		dst = strconv.AppendInt(appendKey(dst, "args_omitted"), int64(omitted), 10)
	}
	if e.Dropped != 0 {
		dst = strconv.AppendUint(appendKey(dst, "dropped"), e.Dropped, 10)
	}
	return append(dst, '}')
}
