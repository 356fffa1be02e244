package jws

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// seg encodes a part as a token carries it.
func seg(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// tok builds a token from its header and claims texts, with a signature of
// a few bytes.
func tok(header, claims string) string { return seg(header) + "." + seg(claims) + "." + seg("sig") }

const hdr = `{"alg":"RS256","kid":"k1","typ":"JWT"}`

// cases are texts where a reader of JSON might go wrong; each must get
// golang-jwt's answer.
var cases = []struct{ name, token string }{
	{"plain", tok(hdr, `{"iss":"i","sub":"s","aud":"a","exp":2000000000,"nbf":1,"iat":1.5}`)},
	{"aud list", tok(hdr, `{"aud":["a","b"]}`)},
	{"aud list not strings", tok(hdr, `{"aud":["a",1]}`)},
	{"aud null", tok(hdr, `{"aud":null}`)},
	{"duplicate claims, the last wins", tok(hdr, `{"sub":"first","sub":"second","exp":1,"exp":"x"}`)},
	{"duplicate alg", tok(`{"alg":"none","alg":"ES256"}`, `{}`)},
	{"escaped names and values", tok(`{"\u0061lg":"RS\u00325\u0036","kid":"a\/b\n"}`, `{"s\u0075b":"\ud83d\ude00","iss":"\u00e9"}`)},
	{"invalid UTF-8 in a value", tok(hdr, "{\"sub\":\"a\xffb\"}")},
	{"invalid UTF-8 in a name", tok(hdr, "{\"su\xff\":\"x\"}")},
	{"invalid UTF-8 outside strings", tok(hdr, "{\"sub\":1}\xff")},
	{"a lone surrogate", tok(hdr, `{"sub":"\ud800"}`)},
	{"header null", tok(`null`, `{}`)},
	{"claims null", tok(hdr, `null`)},
	{"header an array", tok(`[]`, `{}`)},
	{"claims a string", tok(hdr, `"x"`)},
	{"claims a number", tok(hdr, `1`)},
	{"whitespace all round", tok(" \t\n{ \"alg\" : \"RS256\" }\r\n", "\n{\"sub\" :\t\"s\" , \"aud\":[ ] }  ")},
	{"a byte order mark", tok("\ufeff"+hdr, `{}`)},
	{"trailing text", tok(hdr, `{} {}`)},
	{"trailing comma", tok(hdr, `{"a":1,}`)},
	{"no colon", tok(hdr, `{"a" 1}`)},
	{"single quotes", tok(hdr, `{'a':1}`)},
	{"control character in a string", tok(hdr, "{\"a\":\"\x01\"}")},
	{"a bad escape", tok(hdr, `{"a":"\x"}`)},
	{"a short unicode escape", tok(hdr, `{"a":"\u12"}`)},
	{"numbers", tok(hdr, `{"exp":-0,"nbf":1e2,"iat":-1.25E-3,"x":[0,1.0e+5]}`)},
	{"a number out of range", tok(hdr, `{"x":{"y":[1e400]}}`)},
	{"a tiny number", tok(hdr, `{"exp":1e-400}`)},
	{"a leading zero", tok(hdr, `{"exp":01}`)},
	{"a bare minus", tok(hdr, `{"exp":-}`)},
	{"a dot without digits", tok(hdr, `{"exp":1.}`)},
	{"an exponent without digits", tok(hdr, `{"exp":1e}`)},
	{"a plus sign", tok(hdr, `{"exp":+1}`)},
	{"literals", tok(hdr, `{"a":true,"b":false,"c":null,"d":[true,false,null]}`)},
	{"a broken literal", tok(hdr, `{"a":tru}`)},
	{"literals run together", tok(hdr, `{"a":[truefalse]}`)},
	{"nested deep", tok(hdr, `{"a":`+strings.Repeat("[", 100)+strings.Repeat("]", 100)+`}`)},
	{"nested at the limit", tok(hdr, `{"a":`+strings.Repeat("[", maxDepth-1)+strings.Repeat("]", maxDepth-1)+`}`)},
	{"nested past the limit", tok(hdr, `{"a":`+strings.Repeat("[", maxDepth)+strings.Repeat("]", maxDepth)+`}`)},
	{"unclosed", tok(hdr, `{"a":[1,2}`)},
	{"empty claims", tok(hdr, ``)},
	{"crit of any value", tok(`{"alg":"RS256","crit":null}`, `{}`)},
	{"kid not a string", tok(`{"alg":"RS256","kid":["x"]}`, `{}`)},
	{"no alg", tok(`{"kid":"k"}`, `{}`)},
	{"alg not a string", tok(`{"alg":1}`, `{}`)},
	{"alg unknown", tok(`{"alg":"XS256"}`, `{}`)},
	{"alg none", tok(`{"alg":"none"}`, `{}`)},
	{"two parts", seg(hdr) + "." + seg(`{}`)},
	{"four parts", tok(hdr, `{}`) + ".x"},
	{"padded", seg(hdr) + "=." + seg(`{}`) + ".c2ln"},
	{"stray bits", seg(hdr) + "." + seg(`{}`) + ".c2lo"},
	{"a newline in a part", seg(hdr)[:4] + "\n" + seg(hdr)[4:] + "." + seg(`{}`) + ".c2ln"},
	{"standard base64", seg(hdr) + "." + seg(`{}`) + ".+/+/"},
	{"bad signature encoding", seg(hdr) + "." + seg(`{}`) + ".!!"},
	{"empty signature", seg(hdr) + "." + seg(`{}`) + "."},
	{"empty", ""},
	{"dots", ".."},
	{"extra claim", tok(hdr, `{"perms":{"allow":[{"action":"a","resource":"/r/"}]}}`)},
	{"extra claim null", tok(hdr, `{"perms":null}`)},
}

// TestParseLikeJWT holds Parse to golang-jwt's answers on the cases.
func TestParseLikeJWT(t *testing.T) {
	var p Token
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sameAsJWT(t, &p, c.token, "perms")
		})
	}
}

// FuzzParseLikeJWT: Parse and golang-jwt's parser (as Warden configured
// it: strict base64, claims into a map) agree on every token: the same
// class of failure, or the same header members, claims, signing input and
// signature.
func FuzzParseLikeJWT(f *testing.F) {
	for _, c := range cases {
		f.Add(c.token, "perms")
	}
	f.Add(tok(hdr, `{"iss":1}`), "iss")
	var p Token
	f.Fuzz(func(t *testing.T, token, extra string) {
		sameAsJWT(t, &p, token, extra)
	})
}

var jwtParser = jwt.NewParser(jwt.WithoutClaimsValidation(), jwt.WithStrictDecoding())

func sameAsJWT(t *testing.T, p *Token, token, extra string) {
	t.Helper()
	claims := jwt.MapClaims{}
	want, _, wantErr := jwtParser.ParseUnverified(token, claims)
	err := p.Parse(token, extra)
	switch {
	case wantErr == nil && err == nil:
	case errors.Is(wantErr, jwt.ErrTokenMalformed) && errors.Is(err, ErrMalformed),
		errors.Is(wantErr, jwt.ErrTokenUnverifiable) && errors.Is(err, ErrUnverifiable):
		return
	default:
		t.Fatalf("golang-jwt: %v; Parse: %v", wantErr, err)
	}
	if p.Method != want.Method {
		t.Errorf("method %v, want %v", p.Method, want.Method)
	}
	if sig := []byte(want.Signature); string(p.Signature) != string(sig) {
		t.Errorf("signature %x, want %x", p.Signature, sig)
	}
	parts := strings.Split(token, ".")
	if in := parts[0] + "." + parts[1]; p.SigningInput != in {
		t.Errorf("signing input %q, want %q", p.SigningInput, in)
	}
	sameValue(t, "header alg", &p.Header.Alg, want.Header, "alg")
	sameValue(t, "header kid", &p.Header.Kid, want.Header, "kid")
	if _, crit := want.Header["crit"]; p.Header.Crit.Present() != crit {
		t.Errorf("crit %v, want %v", p.Header.Crit.Kind, crit)
	}
	for name, v := range map[string]*Value{"iss": &p.Claims.Iss, "sub": &p.Claims.Sub, "aud": &p.Claims.Aud,
		"exp": &p.Claims.Exp, "nbf": &p.Claims.Nbf, "iat": &p.Claims.Iat, extra: &p.Claims.Extra} {
		sameValue(t, "claim "+name, v, claims, name)
	}
	aud, audErr := Audience(&p.Claims.Aud)
	wantAud, wantAudErr := claims.GetAudience()
	if (audErr == nil) != (wantAudErr == nil) || !reflect.DeepEqual(aud, []string(wantAud)) {
		t.Errorf("aud %q (%v), want %q (%v)", aud, audErr, wantAud, wantAudErr)
	}
}

// sameValue compares a member as Parse read it with the value
// encoding/json decoded into m.
func sameValue(t *testing.T, what string, v *Value, m map[string]any, name string) {
	t.Helper()
	raw, ok := m[name]
	if !ok {
		if v.Kind != Absent {
			t.Errorf("%s: %v, want absent", what, v.Kind)
		}
		return
	}
	var kind Kind
	switch w := raw.(type) {
	case nil:
		kind = Null
	case bool:
		kind = Bool
	case float64:
		kind = Number
		if v.Num != w {
			t.Errorf("%s: %v, want %v", what, v.Num, w)
		}
	case string:
		kind = String
		if v.Str != w {
			t.Errorf("%s: %q, want %q", what, v.Str, w)
		}
	case []any:
		kind = Array
	case map[string]any:
		kind = Object
	}
	if v.Kind != kind {
		t.Fatalf("%s: kind %v, want %v", what, v.Kind, kind)
	}
	var back any
	if err := json.Unmarshal(v.Raw, &back); err != nil || !reflect.DeepEqual(back, raw) {
		t.Errorf("%s: raw %q decodes to %v (%v), want %v", what, v.Raw, back, err, raw)
	}
}

// TestParseAllocations: a token's parts go into the Token's own buffer,
// so parsing one again allocates only the strings it keeps.
func TestParseAllocations(t *testing.T) {
	token := tok(hdr, `{"iss":"i","sub":"s","aud":"a","exp":2000000000,"nbf":1,"iat":1}`)
	var p Token
	allocs := testing.AllocsPerRun(100, func() {
		if err := p.Parse(token, "perms"); err != nil {
			t.Fatal(err)
		}
	})
	// alg, kid, typ is not kept; iss, sub, aud.
	if allocs > 5 {
		t.Fatalf("%v allocations a parse, want at most 5", allocs)
	}
}
