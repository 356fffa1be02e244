package sidecar

import (
	"context"
	"strings"
	"testing"

	"github.com/wardenauthz/warden/sdk/model"
)

// TestDecideRequirements: a request is allowed only when every requirement
// is covered; the first one not covered is the reason, and the grant told
// is the one covering the first requirement.
func TestDecideRequirements(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	tok := f.tok("rsa1", aliceSub)
	get := model.Permission{Action: "function:get", Resource: aliceRes + "fn"}
	addUser := model.Permission{Action: "user:add", Resource: accountRe + "user/usr-1"}
	put := model.Permission{Action: "function:put", Resource: aliceRes + "fn"}
	for _, tc := range []struct {
		name   string
		reqs   []model.Permission
		allow  bool
		reason string
		grant  string
	}{
		{"one covered", []model.Permission{get}, true, "allowed", "function:get"},
		{"two covered", []model.Permission{addUser, get}, true, "allowed", "user:*"},
		{"the second not covered", []model.Permission{get, put}, false, "no grant allows 'function:put'", ""},
		{"the first not covered", []model.Permission{put, get}, false, "no grant allows 'function:put'", ""},
	} {
		d := f.eng.Decide(context.Background(), f.store.Snapshot(), tok, tc.reqs, RequestInfo{})
		if d.Allow != tc.allow || !strings.Contains(d.Reason, tc.reason) || d.Grant.Action != tc.grant {
			t.Errorf("%s: %+v", tc.name, d)
		}
	}
}

// TestAuthorizeAfterFailedAuthentication: a principal whose token failed
// is denied 401 with the authentication's reason, and Authenticate and
// Authorize as two steps decide as Decide does.
func TestAuthorizeAfterFailedAuthentication(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	snap := f.store.Snapshot()
	reqs := []model.Permission{{Action: "function:get", Resource: aliceRes}}
	p, err := f.eng.Authenticate(context.Background(), snap, "not-a-jwt", testAcc)
	if err == nil || p.Err() != err || p.Agent().ID != "" || p.Permissions() != nil {
		t.Fatalf("principal %+v, error %v", p, err)
	}
	d := f.eng.Authorize(context.Background(), snap, p, reqs, RequestInfo{})
	if d.Allow || d.Status != 401 || d.Reason != "malformed token" || d.Class != ClassInvalidToken {
		t.Fatalf("%+v", d)
	}
	tok := f.tok("rsa1", aliceSub)
	p, err = f.eng.Authenticate(context.Background(), snap, tok, testAcc)
	if err != nil {
		t.Fatal(err)
	}
	two, one := f.eng.Authorize(context.Background(), snap, p, reqs, RequestInfo{}), f.eng.Decide(context.Background(), snap, tok, reqs, RequestInfo{})
	if !two.Allow || two.Decision != one.Decision || two.Class != one.Class {
		t.Fatalf("two steps %+v, Decide %+v", two, one)
	}
}
