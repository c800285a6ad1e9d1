package authtest

import "net/http"

// The token endpoint (RFC 6749 §3.2). Grants — client credentials, RFC 8693
// token exchange, the Entra on-behalf-of flow — arrive with later work,
// which replaces this file; until then every request is refused with a
// standard OAuth error so that clients fail clearly.

// tokenMetadata adds the token endpoint's members to the discovery
// document (RFC 8414 §2). No grant is supported yet, so none is announced.
func (s *Server) tokenMetadata(doc map[string]any) {}

// serveToken answers every request with unsupported_grant_type
// (RFC 6749 §5.2), or 405 for methods other than POST.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "the token endpoint accepts POST only")
		return
	}
	writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type",
		"this authtest server does not issue tokens at its token endpoint yet; use Server.Mint")
}
