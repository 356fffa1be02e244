package decisionlog

import (
	"strings"
	"testing"
)

// FuzzCallID: a caller's X-Request-Id is kept only when it is a plain
// token of at most 128 characters; whatever comes in, the call id that
// goes to the log and the answer's header is one.
func FuzzCallID(f *testing.F) {
	for _, s := range []string{"", "req-42", "a b", "x\ny", strings.Repeat("a", 129), "ünïcode", `"quoted"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		id := callID(in)
		if id == "" || len(id) > maxCallID || !plainID(id) {
			t.Fatalf("callID(%q) = %q", in, id)
		}
		if in != "" && len(in) <= maxCallID && plainID(in) && id != in {
			t.Fatalf("callID(%q) = %q, dropping a usable id", in, id)
		}
	})
}
