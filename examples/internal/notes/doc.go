// Package notes is the small notes application the examples serve: an
// in-memory store partitioned by tenant, and the MCP tools over it
// (whoami, notes_write, notes_read, notes_list). It knows nothing of
// tokens: the caller and the tenant come from the request context, where
// the mcpguard stack put them.
//
//	store := notes.NewStore(notes.Limits{})
//	srv := server.NewMCPServer("notes", "1.0.0", guard.ServerOptions()...)
//	notes.AddTools(srv, store)
//
// A Store is bounded (see Limits) and safe for concurrent use.
package notes
