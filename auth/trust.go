package auth

import "slices"

// trustInfo is implemented by validators that can say which audiences and
// issuers they accept, so that a caller such as package transport can
// cross-check its own configuration (its RFC 9728 "resource" must be an
// accepted audience, its "authorization_servers" accepted issuers) and
// refuse settings that cannot work.
//
// Audiences returns the exact "aud" values accepted (the resource URI
// first, then aliases); Issuers the exact "iss" values accepted. Either
// returns nil when the validator cannot say — any audience is accepted, or
// issuers are matched by template or function — and the caller must then
// skip that check rather than fail. The slices are copies.
//
// JWTValidator, IntrospectionValidator, ChainValidator and DualValidator
// implement it.
type trustInfo interface {
	Audiences() []string
	Issuers() []string
}

// Audiences returns the audiences v accepts, nil when any audience is
// (InsecureSkipAudience) or the client ID stands in for it
// (UseClientIDAsAudience). See trustInfo.
func (v *JWTValidator) Audiences() []string {
	if v.skipAud || v.clientAud {
		return nil
	}
	return slices.Clone(v.audiences)
}

// Issuers returns the exact issuers v accepts, nil when issuer templates
// or an IssuerFunc also accept others. See trustInfo.
func (v *JWTValidator) Issuers() []string {
	if len(v.templates) > 0 || v.issuerFunc != nil {
		return nil
	}
	return slices.Clone(v.issuers)
}

// Audiences returns the audiences v accepts, nil when none is configured.
// See trustInfo.
func (v *IntrospectionValidator) Audiences() []string { return slices.Clone(v.audiences) }

// Issuers returns v's authorization server issuer. See trustInfo.
func (v *IntrospectionValidator) Issuers() []string {
	if v.issuer == "" {
		return nil
	}
	return []string{v.issuer}
}

// Audiences returns the union of the audiences its validators accept, nil
// when one of them cannot say. See trustInfo.
func (c *ChainValidator) Audiences() []string {
	return unionTrust(func(t trustInfo) []string { return t.Audiences() }, c.jwt, c.opaque)
}

// Issuers returns the union of the issuers its validators accept, nil when
// one of them cannot say. See trustInfo.
func (c *ChainValidator) Issuers() []string {
	return unionTrust(func(t trustInfo) []string { return t.Issuers() }, c.jwt, c.opaque)
}

// Audiences returns what the service validator accepts (and the direct one,
// when set): the Authorization token's audience is this server. See
// trustInfo.
func (d *DualValidator) Audiences() []string {
	return unionTrust(func(t trustInfo) []string { return t.Audiences() }, d.service, d.direct)
}

// Issuers returns the issuers of the tokens sent in the Authorization
// header: the service validator's (and the direct one's, when set). See
// trustInfo.
func (d *DualValidator) Issuers() []string {
	return unionTrust(func(t trustInfo) []string { return t.Issuers() }, d.service, d.direct)
}

// unionTrust is the union of get over the non-nil validators, nil when any
// of them does not implement trustInfo or cannot say.
func unionTrust(get func(trustInfo) []string, vs ...Validator) []string {
	var out []string
	for _, v := range vs {
		if v == nil {
			continue
		}
		t, ok := v.(trustInfo)
		if !ok {
			return nil
		}
		got := get(t)
		if got == nil {
			return nil
		}
		for _, s := range got {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}
