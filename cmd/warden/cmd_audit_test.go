package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestCLIAudit: warden audit ls lists the calls the CLI made, with the
// filters, as a table and as JSON.
func TestCLIAudit(t *testing.T) {
	c, d := cliWithRoot(t)
	c.must("user", "ls")
	if r := c.run("check", "function:get", "/account/"+d.Account+"/"); r.code != exitOK {
		t.Fatalf("check: %+v", r)
	}
	var out string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out = c.must("audit", "ls", "--action", "user:get")
		if strings.Contains(out, "user:get") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit ls: %q", out)
		}
	}
	if !strings.Contains(out, "/account/"+d.Account+"/user") || !strings.Contains(out, "true") || strings.Contains(out, "issuer:get") {
		t.Fatalf("audit ls --action user:get: %q", out)
	}
	var page struct {
		Items []struct {
			Action     string `json:"action"`
			Authorized bool   `json:"authorized"`
		}
	}
	if err := json.Unmarshal([]byte(c.must("audit", "ls", "--from", "-1h", "--action", "user:*", "-o", "json")), &page); err != nil || len(page.Items) == 0 || page.Items[0].Action != "user:get" {
		t.Fatalf("audit ls -o json: %+v %v", page, err)
	}
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"audit", "ls", "--from", "yesterday"}, exitUsage, "The 'from' value 'yesterday' is not a valid date"},
		{[]string{"audit", "ls", "--subject", "x"}, exitUsage, "--subject needs --issuer"},
		{[]string{"audit", "ls", "--action", "user"}, exitUsage, "The 'action' filter 'user' is invalid"},
	} {
		if r := c.run(tc.args...); r.code != tc.code || !strings.Contains(r.stderr, tc.msg) {
			t.Errorf("warden %v: %+v; want exit %d with %q", tc.args, r, tc.code, tc.msg)
		}
	}
}
