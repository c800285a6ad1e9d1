package authtest

import "net/http"

// The token introspection endpoint (RFC 7662). It arrives with later work,
// which replaces this file; until then every request is answered with 501
// and an OAuth-style error body so that clients fail clearly.

// introspectionMetadata adds the introspection endpoint's members to the
// discovery document (RFC 8414 §2). Nothing is announced yet.
func (s *Server) introspectionMetadata(doc map[string]any) {}

// serveIntrospection answers 501 Not Implemented.
func (s *Server) serveIntrospection(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "the introspection endpoint accepts POST only")
		return
	}
	writeOAuthError(w, http.StatusNotImplemented, "server_error",
		"this authtest server does not implement token introspection yet")
}
