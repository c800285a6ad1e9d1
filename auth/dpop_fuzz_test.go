package auth

import (
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/mcpguard/mcpguard/auth/authtest"
)

// FuzzDPoPProof feeds arbitrary proofs to the parser: it must never panic,
// and whatever it accepts must be signed by the key in its own header and
// carry the claims it reports.
func FuzzDPoPProof(f *testing.F) {
	k, err := authtest.NewDPoPKey("ES256")
	if err != nil {
		f.Fatal(err)
	}
	good := k.MustSign(authtest.Proof{Method: "POST", URL: dpopResource, AccessToken: "tok"})
	f.Add(good)
	f.Add(k.MustSign(authtest.Proof{Method: "GET", URL: dpopResource, Header: map[string]any{"typ": "JWT"}}))
	f.Add(strings.Replace(good, ".", "..", 1))
	f.Add("e30.e30.")
	f.Add(`eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6Im5vbmUifQ.e30.`)
	cache := &jwkCache{}
	methods := map[string]jwt.SigningMethod{}
	for _, a := range DefaultDPoPAlgorithms() {
		methods[a] = jwt.GetSigningMethod(a)
	}
	f.Fuzz(func(t *testing.T, proof string) {
		p, e := parseDPoPProof(proof, methods, cache)
		if e != nil {
			if e.Code != CodeInvalidDPoPProof || e.Status != 401 {
				t.Fatalf("rejection %+v is not invalid_dpop_proof/401", e)
			}
			if strings.Contains(e.Error(), proof) && len(proof) > 16 {
				t.Fatal("error echoes the proof")
			}
			return
		}
		if p.jti == "" || p.htm == "" || p.htu == "" || p.jkt == "" || p.iat.IsZero() {
			t.Fatalf("accepted proof lacks a claim: %+v", p)
		}
	})
}
