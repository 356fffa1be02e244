package checkapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkServeCheck is the check API's handler on a cached token, the
// request built anew each time (httptest's own allocations included).
func BenchmarkServeCheck(b *testing.B) {
	f := newFixture(b, Config{})
	mux := f.mux()
	auth := "Bearer " + f.tok("rsa1", aliceSub)
	body := `{"action":"function:get","resource":"` + aliceRes + `"}`
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/check", strings.NewReader(body))
		req.Header["Authorization"] = []string{auth}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"allow":true`) {
			b.Fatal(w.Code, w.Body.String())
		}
	}
}
