package bench

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown/cache"
	"github.com/wardenauthz/warden/bench/internal/opabench"
	"github.com/wardenauthz/warden/sdk"
	"github.com/wardenauthz/warden/sdk/model"
)

// benchModel is the model of newState(agents), for OPA's data: the same
// issuer with the same three keys, and the same agents with the same
// identities and grants.
func benchModel(agents int) opabench.Model {
	m := opabench.Model{Account: account, Audiences: []string{audience}}
	var pks []model.PublicKey
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		pks = append(pks, model.PublicKey{KeyID: alg, PublicKey: pemOf(signer(alg))})
	}
	m.Issuers = []model.Issuer{{ID: issuer, PublicKeys: pks}}
	for i := range agents {
		m.Agents = append(m.Agents, model.Agent{ID: agentID(i), Type: model.AgentUser, Account: account,
			Identities: []model.Identity{{IssuerID: issuer, Subject: subject(i)}}, Grants: grants(i)})
	}
	return m
}

// opaSmall is OPA's prepared query of data.warden.allow over the model of
// small().
var opaSmall = sync.OnceValues(func() (rego.PreparedEvalQuery, error) {
	data, err := benchModel(10).Data()
	if err != nil {
		return rego.PreparedEvalQuery{}, err
	}
	return opabench.Prepare(context.Background(), opabench.QueryAllow, data)
})

func opaQuery(b *testing.B) rego.PreparedEvalQuery {
	b.Helper()
	pq, err := opaSmall()
	if err != nil {
		b.Fatal(err)
	}
	return pq
}

func opaJWTCache(b *testing.B) cache.InterQueryValueCache {
	b.Helper()
	c, err := opabench.NewJWTCache(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func opaMustAllow(b *testing.B, pq rego.PreparedEvalQuery, c cache.InterQueryValueCache, tok, action, res string) {
	allow, err := opabench.Allowed(context.Background(), pq, c, tok, action, res)
	if err != nil {
		b.Fatal(err)
	}
	if !allow {
		b.Fatal("OPA denied")
	}
}

// BenchmarkOPAPreparedQueryCached is OPA's counterpart of
// BenchmarkCheckCachedToken: the same token, action and resource against
// the same model, with OPA's io_jwt inter-query value cache on, so the
// token's signature is verified once. Each op is one Eval of a query
// prepared once (rego.PrepareForEval), with the token, action and resource
// as input.
func BenchmarkOPAPreparedQueryCached(b *testing.B) {
	pq, c := opaQuery(b), opaJWTCache(b)
	tok, res := mint("RS256", 3), resource(3)+"fn/x"
	opaMustAllow(b, pq, c, tok, "function:get", res)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		opaMustAllow(b, pq, c, tok, "function:get", res)
	}
}

// BenchmarkOPAPreparedQueryCachedParallel is the same on every core at
// once, OPA's counterpart of BenchmarkCheckCachedTokenParallel.
func BenchmarkOPAPreparedQueryCachedParallel(b *testing.B) {
	pq, c := opaQuery(b), opaJWTCache(b)
	tok, res := mint("RS256", 3), resource(3)+"fn/x"
	opaMustAllow(b, pq, c, tok, "function:get", res)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			opaMustAllow(b, pq, c, tok, "function:get", res)
		}
	})
}

// BenchmarkOPAPreparedQueryUncached is OPA's counterpart of
// BenchmarkCheckUncachedRS256: the same 64 RS256 tokens in rotation, and no
// io_jwt cache, so every Eval verifies the signature.
func BenchmarkOPAPreparedQueryUncached(b *testing.B) {
	pq := opaQuery(b)
	toks := make([]string, uncachedPool)
	for i := range toks {
		t, err := sdk.MintToken(sdk.TokenSpec{PrivateKey: signer("RS256"), KeyID: "RS256", Issuer: issuer,
			Subject: subject(3), Audience: audience, Lifetime: time.Duration(24*3600+i) * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		toks[i] = t
	}
	res := resource(3)
	opaMustAllow(b, pq, nil, toks[0], "function:get", res)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		opaMustAllow(b, pq, nil, toks[i%uncachedPool], "function:get", res)
		i++
	}
}
