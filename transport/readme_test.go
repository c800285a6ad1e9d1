package transport

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The README's "Add it to your server" snippet compiles against the
// current API: it is wrapped in a main function and built through a go
// build overlay, so nothing is written into the repository.
func TestReadmeSnippetCompiles(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go build")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	text := string(readme)
	start := strings.Index(text, "## Add it to your server")
	require.NotEqual(t, -1, start, "README section")
	text = text[start:]
	open := strings.Index(text, "```go\n")
	require.NotEqual(t, -1, open)
	text = text[open+len("```go\n"):]
	snippet := text[:strings.Index(text, "```")]
	require.Contains(t, snippet, "guard.Close()", "the snippet closes the guard")

	src := `package main

import (
	"log"
	"net/http"
	"os"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/tenancy"
	"github.com/mcpguard/mcpguard/transport"
	"github.com/mcpguard/mcpguard/transport/ratelimit"
)

var (
	notesRead   mcp.Tool
	readHandler server.ToolHandlerFunc
)

func main() {
` + snippet + `}
`
	dir := t.TempDir()
	file := filepath.Join(dir, "main.go")
	require.NoError(t, os.WriteFile(file, []byte(src), 0o600))
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	target := filepath.Join(root, "internal", "readmesnippet", "main.go")
	overlay, err := json.Marshal(map[string]any{"Replace": map[string]string{target: file}})
	require.NoError(t, err)
	ov := filepath.Join(dir, "overlay.json")
	require.NoError(t, os.WriteFile(ov, overlay, 0o600))
	cmd := exec.Command(gobin, "build", "-overlay", ov, "-o", os.DevNull, "./internal/readmesnippet")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "README snippet does not compile:\n%s\n%s", out, src)
}
