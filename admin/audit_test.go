package admin

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wardenauthz/warden/sdk/model"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestAudit: every admin API call that needs an action is in the audit
// log, allowed or refused, newest first, with the caller's verified
// identity; the filters, paging and their errors are as Fusebit's; the
// entries hold no token and expire under the retention.
func TestAudit(t *testing.T) {
	e := newEnv(t)
	acc := "/v1/account/" + testAcc
	accRes := "/account/" + testAcc + "/"
	_, aliceTk := e.agent("user", "alice", perm("user:get", accRes), perm("audit:get", accRes))
	start := e.clock.Now()
	e.clock.Add(time.Second)
	e.must("GET", acc+"/user", aliceTk, "")
	e.clock.Add(time.Second)
	if r := e.do("GET", acc+"/client", aliceTk, ""); r.status != 403 {
		t.Fatalf("a call alice may not make: %d", r.status)
	}
	e.clock.Add(time.Second)
	if r := e.do("GET", acc+"/issuer", "not-a-token", ""); r.status != 403 {
		t.Fatalf("a call without a valid token: %d", r.status)
	}
	e.clock.Add(time.Second)

	list := func(token, query string) ([]model.AuditEntry, string) {
		t.Helper()
		var page struct {
			Items []model.AuditEntry
			Next  string
		}
		e.must("GET", acc+"/audit?"+query, token, "").json(t, &page)
		return page.Items, page.Next
	}
	from := "from=" + fmt.Sprint(start.UnixMilli())
	var got []model.AuditEntry
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if got, _ = list(e.rootTk, from+"&resource="+url.QueryEscape(accRes)); len(got) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the audit log holds %v", got)
		}
	}
	// Newest first: the refused token, alice refused, alice allowed (the
	// root client's own listing comes later, or in a later flush).
	want := []model.AuditEntry{
		{AccountID: testAcc, Action: "issuer:get", Resource: accRes + "issuer", Authorized: false},
		{AccountID: testAcc, IssuerID: idpIssuer, Subject: "alice", Action: "client:get", Resource: accRes + "client", Authorized: false},
		{AccountID: testAcc, IssuerID: idpIssuer, Subject: "alice", Action: "user:get", Resource: accRes + "user", Authorized: true},
	}
	var mine []model.AuditEntry
	for _, g := range got {
		if g.Subject != "root" {
			mine = append(mine, g)
		}
	}
	if len(mine) < 3 {
		t.Fatalf("entries: %+v", got)
	}
	for i, w := range want {
		g := mine[i]
		ts, err := time.Parse(time.RFC3339Nano, g.Timestamp)
		g.Timestamp = ""
		if g != w || err != nil || ts.Before(start) {
			t.Errorf("entry %d: %+v (%v), want %+v", i, mine[i], err, w)
		}
	}

	// Filters.
	count := func(query string) int {
		t.Helper()
		n := 0
		for next := ""; ; {
			q := from + "&" + query
			if next != "" {
				q += "&next=" + next
			}
			items, nx := list(e.rootTk, q)
			n += len(items)
			if next = nx; next == "" {
				return n
			}
		}
	}
	for _, tc := range []struct {
		query string
		want  int
	}{
		{"action=user:get&issuerId=" + url.QueryEscape(idpIssuer), 1},
		{"action=client:*&issuerId=" + url.QueryEscape(idpIssuer), 1},
		{"issuerId=" + url.QueryEscape(idpIssuer) + "&subject=alice", 2},
		{"issuerId=" + url.QueryEscape(idpIssuer) + "&subject=alice&count=1", 2},
		{"resource=" + url.QueryEscape(accRes+"issuer") + "&action=issuer:get&issuerId=", 1},
		{"issuerId=" + url.QueryEscape(idpIssuer) + "&subject=bob", 0},
	} {
		if n := count(tc.query); n != tc.want {
			t.Errorf("?%s: %d entries, want %d", tc.query, n, tc.want)
		}
	}
	// A window of time: alice's refused call alone.
	window := fmt.Sprintf("from=%d&to=%d", start.Add(1500*time.Millisecond).UnixMilli(), start.Add(2500*time.Millisecond).UnixMilli())
	if items, _ := list(e.rootTk, window); len(items) != 1 || items[0].Action != "client:get" {
		t.Errorf("?%s: %+v", window, items)
	}
	// Alice, who holds audit:get, reads the same log.
	if items, _ := list(aliceTk, from+"&action=user:get&issuerId="+url.QueryEscape(idpIssuer)); len(items) != 1 {
		t.Errorf("alice reads %v", items)
	}

	// Bad filters.
	for _, tc := range []struct{ query, msg string }{
		{"from=yesterday", "The 'from' value 'yesterday' is not a valid date"},
		{"to=-5x", "The 'to' value '-5x' is not a valid date"},
		{"from=-1h&to=-2h", "The 'from' time"},
		{"action=function", "The 'action' filter 'function' is invalid"},
		{"action=a:b:c:d", "The 'action' filter 'a:b:c:d' is invalid"},
		{"subject=alice", "The 'subject' filter 'alice' can not be specified without the 'issuerId' filter"},
		{"count=-1", "The limit value '-1' is invalid"},
		{"next=zzz", "The 'next' value 'zzz' is invalid"},
	} {
		if r := e.do("GET", acc+"/audit?"+tc.query, e.rootTk, ""); r.status != 400 || !strings.Contains(r.message(), tc.msg) {
			t.Errorf("?%s: %d %s", tc.query, r.status, r.body)
		}
	}
	_, bobTk := e.agent("user", "bob", perm("user:get", accRes))
	if r := e.do("GET", acc+"/audit", bobTk, ""); r.status != 403 {
		t.Errorf("without audit:get: %d", r.status)
	}

	// The entries hold no token, and live under a lease of the retention.
	resp, err := etcdClient.Get(context.Background(), e.layout.Audit(testAcc), clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) == 0 {
		t.Fatalf("%v %d", err, len(resp.Kvs))
	}
	for _, kv := range resp.Kvs {
		if strings.Contains(string(kv.Value), aliceTk[:40]) || strings.Contains(string(kv.Value), "not-a-token") {
			t.Fatalf("an entry holds a token: %s", kv.Value)
		}
	}
	ttl, err := etcdClient.TimeToLive(context.Background(), clientv3.LeaseID(resp.Kvs[0].Lease))
	if err != nil || ttl.GrantedTTL != int64((DefaultAuditRetention+auditLeaseEvery)/time.Second) {
		t.Fatalf("the entries' lease: %+v %v", ttl, err)
	}
}

// TestAuditTime: the forms a time filter takes.
func TestAuditTime(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"", now.Add(-time.Minute)},
		{"-15m", now.Add(-15 * time.Minute)},
		{"-30s", now.Add(-30 * time.Second)},
		{"-2h", now.Add(-2 * time.Hour)},
		{"-7d", now.Add(-7 * 24 * time.Hour)},
		{"2026-11-30", time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)},
		{"2026-11-30T10:20:30Z", time.Date(2026, 11, 30, 10, 20, 30, 0, time.UTC)},
		{"2026-11-30T10:20:30+01:00", time.Date(2026, 11, 30, 9, 20, 30, 0, time.UTC)},
		{"1796040000000", time.UnixMilli(1796040000000)},
	} {
		got, err := auditTime("from", tc.in, now.Add(-time.Minute), now)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("%q: %v %v, want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"yesterday", "-", "-m", "-5y", "-1.5h", "2026-13-01", "99999999999999999"} {
		if _, err := auditTime("from", bad, now, now); err == nil {
			t.Errorf("%q was taken", bad)
		}
	}
}

// BenchmarkAuditRecord is what an admin call pays for its audit entry:
// the key and timestamp made, the entry queued (a writer drains the
// queue, as the batch writer does).
func BenchmarkAuditRecord(b *testing.B) {
	a := &auditLog{keyOf: func(acc string) string { return "/warden/v1-audit/" + acc + "/" }, node: "0123abcd", queue: make(chan auditItem, auditQueue),
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	done := make(chan struct{})
	go func() {
		for range a.queue {
		}
		close(done)
	}()
	e := model.AuditEntry{AccountID: testAcc, IssuerID: idpIssuer, Subject: "alice", Action: "user:get", Resource: "/account/" + testAcc + "/user"}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		a.record(e, now)
	}
	close(a.queue)
	<-done
	if a.dropped.Load() != 0 {
		b.Logf("%d dropped", a.dropped.Load())
	}
}
