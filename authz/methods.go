package authz

// The MCP methods whose requests the Policy decides, besides MethodToolsCall,
// MethodPromptsGet and MethodResourcesRead.
const (
	MethodCompletionComplete    = "completion/complete"
	MethodResourcesSubscribe    = "resources/subscribe"
	MethodResourcesUnsubscribe  = "resources/unsubscribe"
	MethodSubscriptionsListen   = "subscriptions/listen"
	MethodNotificationsUpdated  = "notifications/resources/updated"
	methodTasksGet              = "tasks/get"
	methodTasksList             = "tasks/list"
	methodTasksResult           = "tasks/result"
	methodTasksCancel           = "tasks/cancel"
	methodNotificationCancelled = "notifications/cancelled"
)

// MethodClass says how the guard treats a JSON-RPC method a client sends.
// The zero value, MethodRefused, is what every method not in the table gets:
// default deny.
type MethodClass uint8

const (
	// MethodRefused: the request is refused before it reaches mcp-go
	// (JSON-RPC -32601 at the HTTP edge, a denial in the request hook).
	// Unknown methods, including any a future mcp-go adds, and the methods
	// only a server sends (sampling/createMessage, elicitation/create,
	// roots/list, server notifications) are refused.
	MethodRefused MethodClass = iota
	// MethodOpen: reaches no protected data (initialize, ping,
	// server/discover, logging/setLevel, the notifications a client sends).
	MethodOpen
	// MethodFiltered: a list method; its answer is narrowed to what the
	// caller may use (tools/list and prompts/list by the filters).
	MethodFiltered
	// MethodMediated: decided by the Policy against the verified principal
	// and tenant before the handler runs.
	MethodMediated
	// MethodOwnerBound: reaches state bound to the principal that created
	// it (tasks/*); the owner check lives with that state (package
	// transport), not in the Policy.
	MethodOwnerBound
)

// String returns the class's name, for logs and audit.
func (c MethodClass) String() string {
	switch c {
	case MethodRefused:
		return "refused"
	case MethodOpen:
		return "open"
	case MethodFiltered:
		return "filtered"
	case MethodMediated:
		return "mediated"
	case MethodOwnerBound:
		return "owner_bound"
	}
	return "unknown"
}

// ClassifyMethod returns the class of a JSON-RPC method a client sends (see
// the package documentation for the table). A method not in the table is
// MethodRefused. It is a pure function: no allocation, safe for concurrent
// use.
func ClassifyMethod(method string) MethodClass {
	c, _ := classify(method)
	return c
}

// classify returns the class of method and whether the table lists it
// (refused methods are listed too when mcp-go knows them, so that the test
// comparing the table with mcp-go's methods sees each one decided).
func classify(method string) (MethodClass, bool) {
	switch method {
	case "initialize", "ping", "server/discover", "logging/setLevel",
		"notifications/initialized", methodNotificationCancelled, "notifications/progress",
		"notifications/roots/list_changed":
		return MethodOpen, true
	case "tools/list", "prompts/list", "resources/list", "resources/templates/list":
		return MethodFiltered, true
	case MethodToolsCall, MethodPromptsGet, MethodResourcesRead, MethodCompletionComplete,
		MethodResourcesSubscribe, MethodResourcesUnsubscribe, MethodSubscriptionsListen:
		return MethodMediated, true
	case methodTasksGet, methodTasksList, methodTasksResult, methodTasksCancel:
		return MethodOwnerBound, true
	case "sampling/createMessage", "elicitation/create", "roots/list",
		"notifications/message", "notifications/elicitation/complete",
		"notifications/resources/list_changed", MethodNotificationsUpdated,
		"notifications/prompts/list_changed", "notifications/tools/list_changed",
		"notifications/tasks/status", "notifications/subscriptions/acknowledged":
		return MethodRefused, true // sent by servers only
	}
	return MethodRefused, false
}
