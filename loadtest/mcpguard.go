package main

import (
	"errors"
	"time"
)

// mcpguardVariant is the full mcpguard stack under test.
type mcpguardVariant struct {
	variant
	refreshWindow time.Duration
	stop          func()
}

func newMCPGuardVariant(p *idp) (*mcpguardVariant, error) {
	return nil, errors.New("mcpguard variant: the transport stack has not landed yet")
}
