package checkapi

import (
	"encoding/base64"
	"fmt"
	"github.com/wardenauthz/warden/internal/httpkit"
	"github.com/wardenauthz/warden/internal/testkit"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestAbuseCases: the classic attacks on a token checker, sent to the
// check API over HTTP, as an attacker would. Each is refused, none quotes
// what it was sent at length, and none is a 5xx.
func TestAbuseCases(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	srv := f.server()
	now := f.Clock.Now()
	claims := jwt.MapClaims{"iss": testkit.Issuer, "sub": testkit.AliceSub, "aud": testkit.Aud, "exp": now.Add(time.Hour).Unix()}
	rsa1, ec256 := testkit.Key(t, "rsa1"), testkit.Key(t, "ec256")
	valid := f.tok("rsa1", testkit.AliceSub)
	parts := strings.Split(valid, ".")
	seg := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	hsWithPublicKey := testkit.RawTok(t, jwt.SigningMethodHS256, []byte(testkit.PEM(t, rsa1)), map[string]any{"kid": "rsa1"}, claims)
	body := fmt.Sprintf(`{"action":"function:get","resource":%q}`, testkit.AliceRes)

	tests := []struct {
		name    string
		headers []string // Authorization values
		body    string
		status  int    // HTTP status
		want    string // in the answer
	}{
		{"the valid token, for comparison", []string{"Bearer " + valid}, body, 200, `"allow":true`},
		{"alg none", []string{"Bearer " + none}, body, 200, `"status":401`},
		{"alg none, kid set", []string{"Bearer " + seg(`{"alg":"none","kid":"rsa1"}`) + "." + parts[1] + "."}, body, 200, `"status":401`},
		{"HS256 keyed with the RSA public key", []string{"Bearer " + hsWithPublicKey}, body, 200, `"status":401,"reason":"algorithm not allowed`},
		{"ES256 header on an RSA key", []string{"Bearer " + testkit.RawTok(t, jwt.SigningMethodES256, ec256, map[string]any{"kid": "rsa1"}, claims)}, body, 200, `"status":401,"reason":"algorithm does not fit the key type`},
		{"RS256 header on an EC key", []string{"Bearer " + testkit.RawTok(t, jwt.SigningMethodRS256, rsa1, map[string]any{"kid": "ec256"}, claims)}, body, 200, `"status":401`},
		{"header swapped onto a valid signature", []string{"Bearer " + seg(`{"alg":"PS256","kid":"rsa1"}`) + "." + parts[1] + "." + parts[2]}, body, 200, `"status":401`},
		{"kid traversal", []string{"Bearer " + testkit.RawTok(t, jwt.SigningMethodRS256, rsa1, map[string]any{"kid": "../../../etc/passwd"}, claims)}, body, 200, `"status":401,"reason":"unknown key id`},
		{"kid injection", []string{"Bearer " + testkit.RawTok(t, jwt.SigningMethodRS256, rsa1, map[string]any{"kid": "rsa1' OR '1'='1"}, claims)}, body, 200, `"status":401`},
		{"kid of 10 KB", []string{"Bearer " + testkit.RawTok(t, jwt.SigningMethodRS256, rsa1, map[string]any{"kid": strings.Repeat("k", 10<<10)}, claims)}, body, 200, `kkk…`},
		{"token over 16 KiB", []string{"Bearer " + testkit.RawTok(t, jwt.SigningMethodRS256, rsa1, map[string]any{"kid": "rsa1"}, jwt.MapClaims{"iss": testkit.Issuer, "sub": testkit.AliceSub, "aud": testkit.Aud, "exp": now.Add(time.Hour).Unix(), "pad": strings.Repeat("x", 16<<10)})}, body, 200, `"reason":"token larger than 16384 bytes"`},
		{"a fourth segment", []string{"Bearer " + valid + ".x"}, body, 200, `"status":401`},
		{"padded base64", []string{"Bearer " + parts[0] + "=." + parts[1] + "." + parts[2]}, body, 200, `"status":401`},
		{"JSON serialization", []string{"Bearer " + `{"payload":"` + parts[1] + `","signatures":[]}`}, body, 200, `"status":401`},
		{"two Authorization headers", []string{"Bearer " + valid, "Bearer " + valid}, body, 200, `"status":401,"reason":"missing bearer token"`},
		{"two bearer tokens in one header", []string{"Bearer " + valid + ", Bearer " + valid}, body, 200, `"status":401`},
		{"a body over 1 MiB", []string{"Bearer " + valid}, `{"action":"` + strings.Repeat("a", httpkit.MaxBodySize) + `","resource":"/"}`, 413, `"statusCode":413`},
		{"a path-traversing resource", []string{"Bearer " + valid}, `{"action":"function:get","resource":"` + testkit.AliceRes + `../../x/"}`, 400, `has a '..' segment`},
		{"an encoded traversal stays literal and covered only as written", []string{"Bearer " + valid}, `{"action":"function:get","resource":"` + testkit.AliceRes + `%2e%2e/x/"}`, 200, `"allow":true`},
		{"a resource with a NUL", []string{"Bearer " + valid}, `{"action":"function:get","resource":"` + testkit.AliceRes + `\u0000/"}`, 400, `control character`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/check", strings.NewReader(tc.body))
			for _, h := range tc.headers {
				req.Header.Add("Authorization", h)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b strings.Builder
			buf := make([]byte, 4096)
			for {
				n, err := resp.Body.Read(buf)
				b.WriteString(string(buf[:n]))
				if err != nil {
					break
				}
			}
			answer := b.String()
			if resp.StatusCode != tc.status || !strings.Contains(answer, tc.want) {
				t.Fatalf("%d %s; want %d with %q", resp.StatusCode, answer, tc.status, tc.want)
			}
			if len(answer) > 1024 {
				t.Fatalf("an answer of %d bytes echoes what it was sent", len(answer))
			}
		})
	}
}
