package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestRun(t *testing.T) {
	var out strings.Builder
	require.NoError(t, run(testCtx(t), &out), out.String())
	got := out.String()
	assert.Contains(t, got, "ann of acme")
	assert.Contains(t, got, "tools: notes_list, notes_read, notes_write, whoami")
	assert.Contains(t, got, "tools: notes_list, notes_read, whoami")
	assert.Contains(t, got, "notes_write roadmap → refused")
	assert.Contains(t, got, `"reason":"tenant_not_allowed"`)
	assert.Contains(t, got, "ann (acme, 50/s) has 30 served")
}

// TestRunCatchesWrongPlans: the demo fails when the plans it describes are
// not what the server enforces.
func TestRunCatchesWrongPlans(t *testing.T) {
	tools, rates := tenantTools, tenantRates
	t.Cleanup(func() { tenantTools, tenantRates = tools, rates })
	tests := []struct {
		name  string
		tools map[string][]string
		rates map[string]int
		want  string
	}{
		{"globex given notes_write", map[string][]string{"acme": tools["acme"], "globex": tools["acme"]}, rates, "gus sees it"},
		{"acme without notes_write", map[string][]string{"acme": tools["globex"], "globex": tools["globex"]}, rates, "ann does not see it"},
		{"initech served", map[string][]string{"acme": tools["acme"], "globex": tools["globex"], "initech": nil}, rates, "ivy of initech"},
		{"one rate for all", tools, map[string]int{"acme": 5, "globex": 5}, "per-tenant rates"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenantTools, tenantRates = tt.tools, tt.rates
			var out strings.Builder
			err := run(testCtx(t), &out)
			require.Error(t, err, out.String())
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}
