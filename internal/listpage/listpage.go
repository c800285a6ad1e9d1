// Package listpage narrows one page of an mcp-go list result (resources,
// resource templates, tasks) to the entries a caller may see, without
// letting the page's cursor name a hidden entry, and pages a list the
// caller may see in full as mcp-go pages one.
package listpage

import (
	"cmp"
	"encoding/base64"
	"slices"

	"github.com/mark3labs/mcp-go/mcp"
)

// Repage returns the page of visible that mcp-go would serve for cursor if
// visible were all there is, limit entries to a page: visible is sorted by
// name (in place), the page starts after the name the cursor encodes, and
// it carries a next cursor, the base64 of its last name, when it is full.
// So the answer depends on the visible entries alone: a crafted cursor
// tells nothing of the hidden ones, which a page cut before it is narrowed
// does (how many entries it lost), and no visible entry is lost after a
// page of hidden ones. ok is false when the cursor is not mcp-go's
// encoding (mcp-go refuses such a request before any hook runs) or limit
// is not positive.
func Repage[T mcp.Named](visible []T, cursor mcp.Cursor, limit int) (page []T, next mcp.Cursor, ok bool) {
	if limit <= 0 {
		return nil, "", false
	}
	after := ""
	if cursor != "" {
		raw, err := base64.StdEncoding.DecodeString(string(cursor))
		if err != nil {
			return nil, "", false
		}
		after = string(raw)
	}
	slices.SortStableFunc(visible, func(a, b T) int { return cmp.Compare(a.GetName(), b.GetName()) })
	start := 0
	if cursor != "" {
		start, _ = slices.BinarySearchFunc(visible, after, func(e T, name string) int {
			if e.GetName() > name {
				return 1
			}
			return -1 // at or before the cursor: skipped, as mcp-go's "> cursor"
		})
	}
	page = visible[start:min(start+limit, len(visible))]
	if page == nil {
		page = []T{}
	}
	if len(page) >= limit {
		next = mcp.Cursor(base64.StdEncoding.EncodeToString([]byte(page[len(page)-1].GetName())))
	}
	return page, next, true
}

// AllAllowed reports whether allows keeps every entry of page.
func AllAllowed[T any](page []T, allows func(T) bool) bool {
	for i := range page {
		if !allows(page[i]) {
			return false
		}
	}
	return true
}

// Narrow returns the entries of page that keep allows and the cursor to
// send with them: mcp-go's cursor is the base64 of the last entry's name;
// it is moved to the last kept entry, or dropped when none is kept. The
// input is never modified. A page with nothing hidden is returned as it is.
func Narrow[T mcp.Named](page []T, cursor mcp.Cursor, allows func(T) bool) ([]T, mcp.Cursor) {
	out := page
	for i := range page {
		if allows(page[i]) {
			if len(out) < len(page) { // copying since a denial
				out = append(out, page[i])
			}
			continue
		}
		if len(out) == len(page) {
			out = make([]T, i, len(page)-1)
			copy(out, page[:i])
		}
	}
	if len(out) == len(page) || cursor == "" {
		return out, cursor
	}
	if len(out) == 0 {
		return out, ""
	}
	return out, mcp.Cursor(base64.StdEncoding.EncodeToString([]byte(out[len(out)-1].GetName())))
}
