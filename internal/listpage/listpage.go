// Package listpage narrows one page of an mcp-go list result (resources,
// resource templates, tasks) to the entries a caller may see, without
// letting the page's cursor name a hidden entry.
package listpage

import (
	"encoding/base64"

	"github.com/mark3labs/mcp-go/mcp"
)

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
