package storage

import (
	"encoding/json"
	"reflect"
	"testing"
	"unsafe"

	"github.com/wardenauthz/warden/sdk/model"
)

const (
	decAcc = "acc-0123456789abcdef"
	decID  = "usr-0123456789abcdef"
)

// viaJSON decodes a record as encoding/json does: what agentDecoder must
// match.
func viaJSON(value []byte) (model.Agent, error) {
	var rec AgentRecord
	if err := json.Unmarshal(value, &rec); err != nil {
		return model.Agent{}, err
	}
	rec.ID = decID
	return rec.Agent(decAcc), nil
}

// sameDecoding fails the test unless d decodes value as encoding/json does.
func sameDecoding(t *testing.T, d *agentDecoder, value []byte) {
	t.Helper()
	want, wantErr := viaJSON(value)
	got, err := d.decode("k", value, decAcc, decID)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("%q: error %v, encoding/json's %v", value, err, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\n got %#v\nwant %#v", value, got, want)
	}
}

// TestAgentDecoderMatchesJSON: every record decodes as encoding/json
// decodes it, whether it takes the fast path (fast) or not.
func TestAgentDecoderMatchesJSON(t *testing.T) {
	t.Parallel()
	full := Encode(&AgentRecord{ID: decID, Type: model.AgentUser, FirstName: "Zoë", LastName: "Ødegård",
		PrimaryEmail: "z@example.com",
		Identities:   []model.Identity{{IssuerID: "https://i.test/", Subject: "a"}, {IssuerID: "https://i.test/", Subject: "b"}},
		Allow: []model.Permission{{Action: "function:get", Resource: "/a/"}, {Action: "function:put", Resource: "/a/"},
			{Action: "function:get", Resource: "/b/"}}})
	tests := []struct {
		name  string
		value string
		fast  bool
	}{
		{"as Encode writes it", full, true},
		{"a client", Encode(&AgentRecord{ID: "clt-0123456789abcdef", Type: model.AgentClient, DisplayName: "<svc> & co"}), true},
		{"no arrays", `{"id":"x","type":"user"}`, true},
		{"empty arrays", `{"id":"x","type":"user","identities":[],"allow":[]}`, true},
		{"empty object", `{}`, true},
		{"empty entries", `{"identities":[{}],"allow":[{},{"action":"a"}]}`, true},
		{"whitespace", " {\n\t\"type\" : \"user\" ,\r\n \"allow\" : [ { \"action\" : \"a\" , \"resource\" : \"/r/\" } ] } \n", true},
		{"an unknown type", `{"type":"robot"}`, true},
		{"fields in another order", `{"allow":[{"resource":"/r/","action":"a"}],"type":"user","id":"x"}`, true},
		{"an escape", `{"firstName":"a\"b\u00e9\n"}`, false},
		{"an escaped solidus", `{"allow":[{"action":"a","resource":"\/r\/"}]}`, false},
		{"an unknown field", `{"type":"user","createdAt":"2026"}`, false},
		{"a field in other case", `{"Type":"client"}`, false},
		{"an entry field in other case", `{"allow":[{"Action":"a"}]}`, false},
		{"a duplicate field", `{"type":"user","type":"client"}`, false},
		{"a duplicate entry field", `{"allow":[{"action":"a","action":"b"}]}`, false},
		{"null", `null`, false},
		{"a null field", `{"type":null,"allow":null}`, false},
		{"a null entry", `{"allow":[null]}`, false},
		{"invalid UTF-8", "{\"firstName\":\"a\xffb\"}", false},
		{"a number", `{"type":1}`, false},
		{"trailing garbage", `{"type":"user"}x`, false},
		{"two objects", `{}{}`, false},
		{"a trailing comma", `{"type":"user",}`, false},
		{"an open string", `{"type":"us`, false},
		{"an open array", `{"allow":[{"action":"a"}`, false},
		{"a control character", "{\"firstName\":\"a\tb\"}", false},
		{"empty", ``, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := newAgentDecoder(true)
			if got := d.scan([]byte(tc.value)); got != tc.fast {
				t.Errorf("fast path taken: %v, want %v", got, tc.fast)
			}
			sameDecoding(t, d, []byte(tc.value))
			sameDecoding(t, newAgentDecoder(false), []byte(tc.value))
		})
	}
}

// TestAgentDecoderShares: a record's strings share one allocation, a
// resource repeated by consecutive grants is held once, and actions and
// issuer ids are shared across the records of one decoder.
func TestAgentDecoderShares(t *testing.T) {
	t.Parallel()
	rec := func(sub string) []byte {
		return []byte(Encode(&AgentRecord{ID: decID, Type: model.AgentUser, LastName: "L",
			Identities: []model.Identity{{IssuerID: "https://i.test/", Subject: sub}},
			Allow:      []model.Permission{{Action: "function:get", Resource: "/r/"}, {Action: "function:put", Resource: "/r/"}}}))
	}
	same := func(a, b string) bool { return unsafe.StringData(a) == unsafe.StringData(b) }
	d := newAgentDecoder(true)
	a, err := d.decode("k", rec("s1"), decAcc, decID)
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.decode("k", rec("s2"), decAcc, decID)
	if err != nil {
		t.Fatal(err)
	}
	if !same(a.Grants[0].Resource, a.Grants[1].Resource) {
		t.Error("a repeated resource is held twice")
	}
	if !same(a.Grants[0].Action, b.Grants[0].Action) || !same(a.Identities[0].IssuerID, b.Identities[0].IssuerID) {
		t.Error("actions or issuer ids are not shared across records")
	}
	if same(a.Grants[0].Resource, b.Grants[0].Resource) || a.Identities[0].Subject == b.Identities[0].Subject {
		t.Error("records share what is their own")
	}
	// The record's own strings lie in one allocation, in order.
	lo, hi := unsafe.StringData(a.LastName), unsafe.StringData(a.Grants[0].Resource)
	if uintptr(unsafe.Pointer(hi))-uintptr(unsafe.Pointer(lo)) != uintptr(len("L")+len("s1")) {
		t.Error("the record's strings are not laid out together")
	}
}

// FuzzAgentDecoder: any input decodes as encoding/json decodes it, or both
// refuse it.
func FuzzAgentDecoder(f *testing.F) {
	f.Add([]byte(Encode(&AgentRecord{ID: decID, Type: model.AgentUser, FirstName: "F",
		Identities: []model.Identity{{IssuerID: "i", Subject: "s"}}, Allow: []model.Permission{{Action: "a", Resource: "/r/"}}})))
	f.Add([]byte(`{"allow":[{},{"action":"a","resource":"\u00e9"}],"identities":[]}`))
	f.Add([]byte(`{"Type":"user","type":null}`))
	d := newAgentDecoder(true)
	f.Fuzz(func(t *testing.T, value []byte) {
		sameDecoding(t, d, value)
	})
}
