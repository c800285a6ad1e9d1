// Package canonjson writes one JSON value in a canonical form, for digests
// that must tell apart exactly the values a Go handler can tell apart: the
// same value always gives the same bytes, and values a handler could read
// differently never do.
package canonjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxDepth bounds the nesting Canonical follows.
const MaxDepth = 256

// ErrAmbiguous is returned for an object with two members whose names are
// equal, or equal but for case (Unicode simple folding, as encoding/json
// matches struct fields): a handler decoding into a map and one decoding
// into a struct would each read another member.
var ErrAmbiguous = errors.New("canonjson: duplicate or case-variant member names")

// Canonical returns the canonical form of the JSON value in b: object
// members sorted by name (byte order), strings re-encoded by encoding/json,
// numbers kept as the exact text the client sent (so that 9007199254740993
// and 9007199254740992, one float64 apart from nothing, stay apart), no
// insignificant space. It refuses invalid JSON, trailing data, nesting
// deeper than MaxDepth and ambiguous objects (ErrAmbiguous).
func Canonical(b []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out bytes.Buffer
	if err := value(dec, &out, 0); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("canonjson: data after the value")
	}
	return out.Bytes(), nil
}

func value(dec *json.Decoder, out *bytes.Buffer, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("canonjson: %w", err)
	}
	return token(dec, out, tok, depth)
}

func token(dec *json.Decoder, out *bytes.Buffer, tok json.Token, depth int) error {
	switch t := tok.(type) {
	case json.Delim:
		if depth >= MaxDepth {
			return errors.New("canonjson: nested too deep")
		}
		if t == '[' {
			return array(dec, out, depth+1)
		}
		if t == '{' {
			return object(dec, out, depth+1)
		}
		return fmt.Errorf("canonjson: unexpected %q", t)
	case string:
		return str(out, t)
	case json.Number:
		out.WriteString(t.String())
	case bool:
		if t {
			out.WriteString("true")
		} else {
			out.WriteString("false")
		}
	case nil:
		out.WriteString("null")
	default:
		return fmt.Errorf("canonjson: unexpected token %T", tok)
	}
	return nil
}

func array(dec *json.Decoder, out *bytes.Buffer, depth int) error {
	out.WriteByte('[')
	for i := 0; dec.More(); i++ {
		if i > 0 {
			out.WriteByte(',')
		}
		if err := value(dec, out, depth); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // ']'
		return fmt.Errorf("canonjson: %w", err)
	}
	out.WriteByte(']')
	return nil
}

type member struct {
	name  string
	value []byte
}

func object(dec *json.Decoder, out *bytes.Buffer, depth int) error {
	var members []member
	folded := map[string]struct{}{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("canonjson: %w", err)
		}
		name, ok := tok.(string)
		if !ok {
			return errors.New("canonjson: member name is not a string")
		}
		f := fold(name)
		if _, dup := folded[f]; dup {
			return ErrAmbiguous
		}
		folded[f] = struct{}{}
		var v bytes.Buffer
		if err := value(dec, &v, depth); err != nil {
			return err
		}
		members = append(members, member{name, v.Bytes()})
	}
	if _, err := dec.Token(); err != nil { // '}'
		return fmt.Errorf("canonjson: %w", err)
	}
	slices.SortFunc(members, func(a, b member) int { return strings.Compare(a.name, b.name) })
	out.WriteByte('{')
	for i, m := range members {
		if i > 0 {
			out.WriteByte(',')
		}
		if err := str(out, m.name); err != nil {
			return err
		}
		out.WriteByte(':')
		out.Write(m.value)
	}
	out.WriteByte('}')
	return nil
}

func str(out *bytes.Buffer, s string) error {
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("canonjson: %w", err)
	}
	out.Write(b)
	return nil
}

// fold maps name to one representative of its case-folding class: each
// rune becomes the smallest rune of its unicode.SimpleFold orbit, so two
// names fold alike exactly when strings.EqualFold says they are equal.
func fold(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	for _, r := range name {
		if r == utf8.RuneError {
			b.WriteRune(r)
			continue
		}
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		b.WriteRune(least)
	}
	return b.String()
}
