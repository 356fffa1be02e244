package guest

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/wardenauthz/warden/policywasm/abi"
)

const doc = `{"request": {"action": "function:get", "resource": "/a/", "headers": {"X-Forwarded-For": "10.0.0.1"}},
 "claims": {"sub": "al\u0069ce", "tenants": ["t1", 2, "t\"2"], "aud": "x", "n": 1.5, "ok": true, "nested": {"a": [1, {"b": "c"}]}},
 "decision": {"allow": false, "status": 403}}`

func TestInputView(t *testing.T) {
	t.Parallel()
	in := NewInput([]byte(doc))
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"nested string", in.String("request", "action"), "function:get"},
		{"escaped string", in.String("claims", "sub"), "alice"},
		{"a view of a plain string", in.View("request", "action"), "function:get"},
		{"a view of an escaped string", in.View("claims", "sub"), "alice"},
		{"header", in.String("request", "headers", "X-Forwarded-For"), "10.0.0.1"},
		{"missing", in.String("request", "method"), ""},
		{"not a string", in.String("claims", "n"), ""},
		{"bool", in.Bool("claims", "ok"), true},
		{"false bool", in.Bool("decision", "allow"), false},
		{"strings of an array", strings.Join(in.Strings("claims", "tenants"), "|"), `t1|t"2`},
		{"a single string as a list", strings.Join(in.Strings("claims", "aud"), "|"), "x"},
		{"deep", in.String("claims", "nested", "a"), ""},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if n, ok := in.Number("decision", "status"); !ok || n != 403 {
		t.Errorf("number: %v %v", n, ok)
	}
	if raw, ok := in.Raw("claims", "nested"); !ok || string(raw) != `{"a": [1, {"b": "c"}]}` {
		t.Errorf("raw: %s %v", raw, ok)
	}
}

func TestOutputJSON(t *testing.T) {
	t.Parallel()
	out := Output{Allow: true, Reason: "q\"\\\n\x01é", Headers: map[string]string{"X-A": "1"}}
	var back struct {
		Allow   bool
		Reason  string
		Headers map[string]string
	}
	if err := json.Unmarshal(out.AppendJSON(nil), &back); err != nil || !back.Allow || back.Reason != out.Reason || back.Headers["X-A"] != "1" {
		t.Fatalf("%s: %+v %v", out.AppendJSON(nil), back, err)
	}
}

// FuzzInputView: on any valid JSON object, the view reads the same strings
// encoding/json does, and on any input it never panics.
func FuzzInputView(f *testing.F) {
	f.Add([]byte(doc), "claims", "sub")
	f.Add([]byte(`{"a":{"b":"\ud83d\ude00"}}`), "a", "b")
	f.Add([]byte(`{"a":`), "a", "")
	f.Fuzz(func(t *testing.T, raw []byte, k1, k2 string) {
		in := NewInput(raw)
		got := in.String(k1, k2)
		if view := in.View(k1, k2); view != got {
			t.Fatalf("View(%q, %q) = %q, String says %q", k1, k2, view, got)
		}
		_ = in.Strings(k1)
		_, _ = in.Number(k1, k2)
		// The host sends JSON encoded by Go, which is valid UTF-8; on
		// anything else the view need only not panic.
		var ref map[string]json.RawMessage
		if !utf8.Valid(raw) || json.Unmarshal(raw, &ref) != nil {
			return
		}
		var inner map[string]json.RawMessage
		if json.Unmarshal(ref[k1], &inner) != nil {
			return
		}
		var want string
		if json.Unmarshal(inner[k2], &want) != nil {
			return
		}
		if dup(raw) {
			return // encoding/json keeps the last duplicate key, the view the first
		}
		if got != want && strings.ToValidUTF8(want, "\ufffd") == want {
			t.Fatalf("String(%q, %q) of %s = %q, encoding/json says %q", k1, k2, raw, got, want)
		}
	})
}

// dup reports whether an object (or one nested in it) may repeat a key.
func dup(raw []byte) bool {
	var anyVal any
	d := json.NewDecoder(strings.NewReader(string(raw)))
	d.UseNumber()
	_ = d.Decode(&anyVal)
	return strings.Count(string(raw), ":") != countKeys(anyVal)
}

func countKeys(v any) int {
	n := 0
	switch x := v.(type) {
	case map[string]any:
		n += len(x)
		for _, e := range x {
			n += countKeys(e)
		}
	case []any:
		for _, e := range x {
			n += countKeys(e)
		}
	}
	return n
}

// TestInputRoundTrip: what the host writes (abi.AppendInput) the kit's
// accessors read back, by the same names.
func TestInputRoundTrip(t *testing.T) {
	raw := abi.AppendInput(nil, &abi.Input{Now: 1700000000, Action: "function:get", Resource: "/account/acc-1/x/", SourceIP: "10.0.0.1",
		Claims: []byte(`{"tenant":"acc-1","sub":"alice"}`), AgentID: "usr-1", AgentType: "user",
		GrantAction: "function:*", GrantResource: "/account/acc-1/", Allow: true, Status: 200, Reason: "allowed"})
	if !json.Valid(raw) {
		t.Fatalf("not JSON: %s", raw)
	}
	in := NewInput(raw)
	if in.Action() != "function:get" || in.Resource() != "/account/acc-1/x/" || in.SourceIP() != "10.0.0.1" || in.Claim("tenant") != "acc-1" ||
		in.AgentID() != "usr-1" || in.Now() != 1700000000 || !in.Allowed() || in.View(abi.FieldGrant, abi.FieldAction) != "function:*" {
		t.Fatalf("read back wrong from %s", raw)
	}
	// No verified token: empty claims, no agent, no grant.
	in = NewInput(abi.AppendInput(nil, &abi.Input{Action: "a", Resource: "/", Status: 401, Reason: "missing bearer token"}))
	if in.Claim("sub") != "" || in.AgentID() != "" || in.Allowed() || in.SourceIP() != "" {
		t.Fatalf("an unauthenticated input: %s", in.raw)
	}
}
