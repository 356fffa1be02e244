package sidecar_test

// A differential test of decisions: a second implementation of the rules,
// written naively from DESIGN.md ("The model, exactly") and sharing none of
// the engine's code (no sdk/model matching, normalization or grammar), is
// run against the engine on random states and requests, adversarial
// strings included. Every case must agree; a disagreement is shrunk to a
// small case and printed.

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/wardenauthz/warden/sdk"
	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar"
	"github.com/wardenauthz/warden/sidecar/state"
)

const (
	accA = "acc-00000000000000a0"
	accB = "acc-00000000000000b0"
	accC = "acc-00000000000000c0" // named by resources, unknown to the state
	aud  = "https://warden.diff.test"
)

// Vocabularies: valid and invalid, ordinary and adversarial.
var (
	grantActions = []string{"*", "function:*", "function:get", "function:put", "user:*", "user:get", "a:b:c", "a:*", "FUNCTION:GET", "fn-1:get_2"}
	askActions   = append(append([]string{}, grantActions...), "function", "function:get:extra", "a:b", "a:b:c:d", "x", "",
		"a::b", "fun ction", "*:get", "a:*:b", "function:", ":get", "function:GET", "fünction:get")
	// {acc} stands for the agent's account in grants, and mostly for the
	// token's in requests.
	grantResources = []string{"/", "/account/{acc}/", "/account/{acc}/sub", "/account/{acc}/sub/x/",
		"/account/" + accB + "/", "account/{acc}/s", "/account/{acc}/%2e%2e/", "/account/{acc}/café/",
		"/account/{acc}/sub-1/", "/x/", "/account/{acc}/sub/", "/account/" + accA + "/sub/"}
	askResources = append(append([]string{}, grantResources...), "/account/{acc}/sub-1/../sub-2/", "/account/{acc}//x",
		"/account/{acc}/sub", "/account/{acc}/subx/", "/account/"+accC+"/x/", "/account/{acc}/{{x}}/",
		"/account/{acc}/a b/", "", "account/{acc}", "/ACCOUNT/{acc}/", "/account/{acc}/café/x", "/account/{acc}/./",
		"/account/{acc}/sub/x", "/account/"+accB+"/sub/y/", "/account//", "/account/", "/account/{acc}/sub\t/", "/x/y/z")
	issuerIDs = []string{"https://one.test", "https://two.test", "https://three.test"}
	subjects  = []string{"s0", "s1", "s2", "s3", "s4"}
)

// ---- the reference: DESIGN.md, the plain way ----

func refNormalize(r string) string {
	if !strings.HasPrefix(r, "/") {
		r = "/" + r
	}
	if !strings.HasSuffix(r, "/") {
		r += "/"
	}
	return r
}

func refValidAction(a string) bool {
	if a == "" {
		return false
	}
	segs := strings.Split(a, ":")
	for i, s := range segs {
		if s == "*" {
			if i != len(segs)-1 {
				return false
			}
			continue
		}
		if s == "" {
			return false
		}
		for _, c := range s {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func refValidResource(r string) bool {
	if r == "" || !utf8.ValidString(r) || strings.Contains(r, "{{") {
		return false
	}
	for _, c := range r {
		if unicode.IsSpace(c) || unicode.IsControl(c) {
			return false
		}
	}
	n := refNormalize(r)
	if n == "/" {
		return true
	}
	for _, s := range strings.Split(n[1:len(n)-1], "/") {
		if s == "" || s == "." || s == ".." {
			return false
		}
	}
	return true
}

func refActionMatches(g, r string) bool {
	if g == r {
		return true
	}
	gs, rs := strings.Split(g, ":"), strings.Split(r, ":")
	for i := range rs {
		if i >= len(gs) || gs[i] == "" {
			return false
		}
		if gs[i] == "*" {
			return true
		}
		if gs[i] != rs[i] {
			return false
		}
	}
	return false
}

func refCovers(perms []model.Permission, action, resource string) bool {
	for _, p := range perms {
		if refActionMatches(p.Action, action) && strings.HasPrefix(refNormalize(resource), refNormalize(p.Resource)) {
			return true
		}
	}
	return false
}

func refAccount(resource string) string {
	n := refNormalize(resource)
	if rest, ok := strings.CutPrefix(n, "/account/"); ok {
		if acc, _, _ := strings.Cut(rest, "/"); acc != "" {
			return acc
		}
	}
	return accA // the default account
}

// world is a random state: accounts, issuers (by account, each with the
// key that signs its tokens) and agents.
type world struct {
	issuers map[string]map[string]ed25519.PrivateKey // account → issuer → key
	agents  []model.Agent
}

// token is what a case's bearer token says, and who signed it.
type token struct {
	none             bool
	signedIn         string // the account whose issuer key signed it
	issuer, subject  string
	inline           []model.Permission
	hasInline        bool
	raw              string
	expired, wrongAu bool
}

type diffCase struct {
	tok              *token
	action, resource string
}

// refDecide is the reference decision: its status.
func (w *world) refDecide(c diffCase) int {
	if !refValidAction(c.action) || !refValidResource(c.resource) {
		return 400
	}
	t := c.tok
	if t.none {
		return 401
	}
	acc := refAccount(c.resource)
	iss, ok := w.issuers[acc]
	if !ok || iss[t.issuer] == nil || t.signedIn != acc || t.expired || t.wrongAu {
		return 401
	}
	var agent *model.Agent
	for i, a := range w.agents {
		for _, id := range a.Identities {
			if a.Account == acc && id.IssuerID == t.issuer && id.Subject == t.subject {
				agent = &w.agents[i]
			}
		}
	}
	if agent == nil {
		return 403
	}
	perms := agent.Grants
	if t.hasInline {
		for _, p := range t.inline {
			if !refValidAction(p.Action) || !refValidResource(p.Resource) || !refCovers(agent.Grants, p.Action, p.Resource) {
				return 403
			}
		}
		perms = t.inline
	}
	if refCovers(perms, c.action, c.resource) {
		return 200
	}
	return 403
}

// ---- generation ----

func pick[T any](r *mrand.Rand, s []T) T { return s[r.IntN(len(s))] }

// inAccount fills the {acc} of a vocabulary string.
func inAccount(s, acc string) string { return strings.ReplaceAll(s, "{acc}", acc) }

func newWorld(r *mrand.Rand) *world {
	w := &world{issuers: map[string]map[string]ed25519.PrivateKey{}}
	for _, acc := range []string{accA, accB} {
		w.issuers[acc] = map[string]ed25519.PrivateKey{}
		for _, iss := range issuerIDs[:1+r.IntN(len(issuerIDs))] {
			_, k, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				panic(err)
			}
			w.issuers[acc][iss] = k
		}
		taken := map[model.Identity]bool{}
		for i := range 2 + r.IntN(5) {
			a := model.Agent{ID: fmt.Sprintf("usr-%016x", len(w.agents)+1), Type: model.AgentUser, Account: acc}
			if i%3 == 2 {
				a.ID, a.Type = fmt.Sprintf("clt-%016x", len(w.agents)+1), model.AgentClient
			}
			for range r.IntN(3) {
				id := model.Identity{IssuerID: pick(r, issuerIDs), Subject: pick(r, subjects)}
				if !taken[id] {
					taken[id] = true
					a.Identities = append(a.Identities, id)
				}
			}
			for range r.IntN(6) {
				a.Grants = append(a.Grants, model.Permission{Action: pick(r, grantActions), Resource: inAccount(pick(r, grantResources), acc)})
			}
			w.agents = append(w.agents, a)
		}
	}
	return w
}

// store loads the world into a state, as the replica would from records
// the admin API wrote (grants normalized).
func (w *world) store() *state.DB {
	st := state.New()
	b := &state.Batch{Revision: 1}
	for acc, issuers := range w.issuers {
		b.PutAccount(acc)
		for id, k := range issuers {
			pemText, err := sdk.PublicKeyPEM(k.Public())
			if err != nil {
				panic(err)
			}
			b.PutIssuer(acc, model.Issuer{ID: id, PublicKeys: []model.PublicKey{{KeyID: "k", PublicKey: pemText}}})
		}
	}
	for _, a := range w.agents {
		stored := a
		stored.Grants = nil
		for _, g := range a.Grants {
			stored.Grants = append(stored.Grants, model.Permission{Action: g.Action, Resource: refNormalize(g.Resource)})
		}
		b.PutAgent(stored)
	}
	if _, err := st.Apply(b); err != nil {
		panic(err)
	}
	return st
}

// tokens mints the world's tokens: for the agents' identities (so that
// most resolve), for random issuers and subjects of either account, with
// and without inline permissions (narrowing the agent's grants, or not),
// expired and for another audience.
func (w *world) tokens(r *mrand.Rand, now time.Time) []*token {
	out := []*token{{none: true}}
	var ids []*token
	for _, a := range w.agents {
		for _, id := range a.Identities {
			if w.issuers[a.Account][id.IssuerID] != nil {
				ids = append(ids, &token{signedIn: a.Account, issuer: id.IssuerID, subject: id.Subject})
			}
		}
	}
	for acc, issuers := range w.issuers {
		for iss := range issuers {
			ids = append(ids, &token{signedIn: acc, issuer: iss, subject: pick(r, subjects)})
		}
	}
	for _, base := range ids {
		for range 3 {
			t := *base
			switch r.IntN(10) {
			case 0:
				t.expired = true
			case 1:
				t.wrongAu = true
			case 2, 3, 4:
				t.hasInline = true
				t.inline = w.inlineFor(r, &t)
			}
			key := w.issuers[t.signedIn][t.issuer]
			spec := sdk.TokenSpec{PrivateKey: key, KeyID: "k", Issuer: t.issuer, Subject: t.subject, Audience: aud, Now: now, Lifetime: time.Hour}
			if t.expired {
				spec.Now = now.Add(-2 * time.Hour)
			}
			if t.wrongAu {
				spec.Audience = "https://elsewhere.test"
			}
			if t.hasInline {
				spec.Permissions = append([]model.Permission{}, t.inline...)
			}
			raw, err := sdk.MintToken(spec)
			if err != nil {
				panic(err)
			}
			t.raw = raw
			out = append(out, &t)
		}
	}
	return out
}

// grantsOf returns the grants of the agent a token names, if any.
func (w *world) grantsOf(t *token) []model.Permission {
	for _, a := range w.agents {
		for _, id := range a.Identities {
			if !t.none && a.Account == t.signedIn && id.IssuerID == t.issuer && id.Subject == t.subject {
				return a.Grants
			}
		}
	}
	return nil
}

// inlineFor draws inline permissions: mostly narrowings of the agent's own
// grants (a grant as it is, or under a longer resource), sometimes anything.
func (w *world) inlineFor(r *mrand.Rand, t *token) []model.Permission {
	grants := w.grantsOf(t)
	inline := []model.Permission{}
	for range r.IntN(3) {
		if len(grants) > 0 && r.IntN(10) < 6 {
			g := pick(r, grants)
			if r.IntN(2) == 0 {
				g.Resource = refNormalize(g.Resource) + "sub/"
			}
			inline = append(inline, g)
			continue
		}
		inline = append(inline, model.Permission{Action: pick(r, askActions), Resource: inAccount(pick(r, askResources), t.signedIn)})
	}
	return inline
}

// ---- the test ----

// diffCases is how many cases the test runs: 100 000 in make test,
// WARDEN_DIFF_CASES (make soak: 10 million) otherwise.
func diffCases(t *testing.T) int {
	if v := os.Getenv("WARDEN_DIFF_CASES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("WARDEN_DIFF_CASES=%q is not a number of cases", v)
		}
		return n
	}
	if testing.Short() {
		return 10_000
	}
	return 100_000
}

func TestDifferentialDecisions(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("WARDEN_DIFF_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	r := mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	total := diffCases(t)
	const perWorld = 2000
	now := time.Now().Truncate(time.Second)
	ctx := context.Background()
	agree := map[int]int{}
	for done := 0; done < total; {
		w := newWorld(r)
		eng, err := sidecar.New(w.store(), sidecar.Config{DefaultAccount: accA, Audiences: []string{aud}},
			sidecar.Deps{Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		toks := w.tokens(r, now)
		for i := 0; i < perWorld && done < total; i, done = i+1, done+1 {
			c := diffCase{tok: pick(r, toks), action: pick(r, grantActions), resource: pick(r, grantResources)}
			if r.IntN(10) < 3 { // the adversarial vocabulary
				c.action, c.resource = pick(r, askActions), pick(r, askResources)
			}
			acc := c.tok.signedIn
			if acc == "" || r.IntN(5) == 0 {
				acc = pick(r, []string{accA, accB, accC})
			}
			c.resource = inAccount(c.resource, acc)
			if grants := w.grantsOf(c.tok); len(grants) > 0 && r.IntN(10) < 4 {
				// Something the agent holds, or nearly.
				g := pick(r, grants)
				c.action = strings.Replace(g.Action, "*", pick(r, []string{"get", "x:y", "*"}), 1)
				c.resource = refNormalize(g.Resource) + pick(r, []string{"", "sub/", "x"})
			}
			if r.IntN(3) == 0 { // under a granted resource
				c.resource = refNormalize(c.resource) + pick(r, []string{"sub/", "sub", "x/y", "café/", "%2F/"})
			}
			want := w.refDecide(c)
			got := eng.Check(ctx, c.tok.raw, c.action, c.resource)
			if got.Status != want || got.Allow != (want == 200) {
				t.Fatalf("case %d (seed %d, WARDEN_DIFF_SEED reruns it): the engine says %d (%s), the reference %d\n%s",
					done, seed, got.Status, got.Reason, want, w.shrink(c, got.Status))
			}
			agree[want]++
		}
	}
	t.Logf("%d cases agreed (seed %d): %d allowed, %d 400, %d 401, %d 403", total, seed, agree[200], agree[400], agree[401], agree[403])
}

// shrink describes a failing case, first removing the grants of its agent
// and its inline permissions that the disagreement does not need.
func (w *world) shrink(c diffCase, engineSays int) string {
	var agent *model.Agent
	for i, a := range w.agents {
		for _, id := range a.Identities {
			if c.tok != nil && a.Account == c.tok.signedIn && id.IssuerID == c.tok.issuer && id.Subject == c.tok.subject {
				agent = &w.agents[i]
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "request: action %q on resource %q\n", c.action, c.resource)
	if c.tok.none {
		b.WriteString("token: none\n")
		return b.String()
	}
	fmt.Fprintf(&b, "token: signed in %s by %s for %s (expired %v, other audience %v)\n", c.tok.signedIn, c.tok.issuer, c.tok.subject, c.tok.expired, c.tok.wrongAu)
	if c.tok.hasInline {
		fmt.Fprintf(&b, "inline permissions: %q\n", c.tok.inline)
	}
	if agent == nil {
		b.WriteString("agent: none with that identity\n")
		return b.String()
	}
	// The reference's verdict with fewer grants: keep only those whose
	// removal changes it, a cheap minimisation of what matters.
	needed := []model.Permission{}
	for i, g := range agent.Grants {
		trial := *agent
		trial.Grants = append(append([]model.Permission{}, agent.Grants[:i]...), agent.Grants[i+1:]...)
		ww := &world{issuers: w.issuers, agents: []model.Agent{trial}}
		if ww.refDecide(c) != w.refDecide(c) {
			needed = append(needed, g)
		}
	}
	fmt.Fprintf(&b, "agent %s in %s: grants %q; those the reference's verdict depends on: %q\n", agent.ID, agent.Account, agent.Grants, needed)
	fmt.Fprintf(&b, "engine %d, reference %d\n", engineSays, w.refDecide(c))
	return b.String()
}
