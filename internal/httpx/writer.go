// Package httpx holds HTTP helpers shared by mcpguard's middleware.
//
// Dependencies: the standard library only.
package httpx

import (
	"bufio"
	"net"
	"net/http"
)

// HeaderHook wraps an http.ResponseWriter and calls Before once, just before
// the header is written (by WriteHeader, or by the first Write or Flush), so
// a middleware can inspect or rewrite response headers the handler set. It
// records the status. It keeps streaming working: Flush, Hijack and Unwrap
// reach the underlying writer, so SSE and http.ResponseController work
// through it.
type HeaderHook struct {
	http.ResponseWriter
	// Before runs once with the status about to be written. An interface
	// rather than a func, so a middleware can embed HeaderHook in its own
	// writer and be its hook without allocating a closure per request.
	Before BeforeHeader
	// Status is the status written, 0 until then.
	Status int
	// Bytes counts the body bytes written.
	Bytes int64
}

// BeforeHeader is the hook HeaderHook calls once, with the response header
// and the status about to be written.
type BeforeHeader interface {
	BeforeHeader(h http.Header, status int)
}

// BeforeFunc adapts a function to BeforeHeader.
type BeforeFunc func(h http.Header, status int)

// BeforeHeader calls f.
func (f BeforeFunc) BeforeHeader(h http.Header, status int) { f(h, status) }

func (w *HeaderHook) fire(status int) {
	if w.Status != 0 {
		return
	}
	w.Status = status
	if w.Before != nil {
		w.Before.BeforeHeader(w.ResponseWriter.Header(), status)
	}
}

// WriteHeader runs Before, then writes the header.
func (w *HeaderHook) WriteHeader(status int) {
	if status >= 100 && status < 200 && status != http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(status) // informational: not final
		return
	}
	first := w.Status == 0
	w.fire(status)
	if first {
		w.ResponseWriter.WriteHeader(status)
	}
}

// Write writes the header first if needed.
func (w *HeaderHook) Write(b []byte) (int, error) {
	if w.Status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.Bytes += int64(n)
	return n, err
}

// Flush writes the header if needed and flushes the underlying writer.
func (w *HeaderHook) Flush() {
	if w.Status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// FlushError is the error-returning form used by http.ResponseController.
func (w *HeaderHook) FlushError() error {
	if w.Status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack hijacks the underlying connection when it supports it.
func (w *HeaderHook) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap returns the underlying writer, for http.ResponseController.
func (w *HeaderHook) Unwrap() http.ResponseWriter { return w.ResponseWriter }
