// Package jws reads a compact JWS token the way Warden verifies one: the
// three parts split, each decoded once into one buffer, and the header's and
// the claims' JSON scanned once for the members Warden reads, without
// building maps of them.
//
// What it calls malformed is exactly what golang-jwt's parser (strict
// base64, claims into a map) calls malformed: the same split, the same
// base64 decoder, and JSON held to encoding/json's grammar, its nesting
// limit and its float64 range for every number, with the last of duplicate
// members winning. The differential fuzz test of the sidecar package holds
// the two to the same answers.
package jws

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"
)

// The two ways a token fails to parse, in golang-jwt's classes.
var (
	// ErrMalformed: not three parts, a part that is not strict base64url,
	// or a header or claims that are not a JSON object.
	ErrMalformed = errors.New("malformed token")
	// ErrUnverifiable: the header names no algorithm, or one that no
	// signing method implements.
	ErrUnverifiable = errors.New("signing method (alg) is unavailable")
)

// Kind is the JSON type of a member's value.
type Kind uint8

// The kinds of value. Absent is a member the text does not have.
const (
	Absent Kind = iota
	Null
	Bool
	Number
	String
	Array
	Object
)

// Value is one member's value.
type Value struct {
	Kind Kind
	Str  string  // the text of a String
	Num  float64 // the value of a Number
	// Raw is the value's JSON text. It lies in the Token's buffer, so it is
	// valid until the Token parses another token.
	Raw []byte
}

// Present reports whether the member is there, whatever its value.
func (v *Value) Present() bool { return v.Kind != Absent }

// String returns the value's text, or "" when it is not a string.
func (v *Value) String() string {
	if v.Kind != String {
		return ""
	}
	return v.Str
}

// Header holds the header members Warden reads.
type Header struct {
	Alg, Kid, Crit Value
}

// Claims holds the claims Warden reads. Extra is the claim Parse was asked
// for by name (the inline permissions).
type Claims struct {
	Iss, Sub, Aud, Exp, Nbf, Iat, Extra Value
}

// Token is a parsed token. Keep one and parse into it again: its buffer is
// reused.
type Token struct {
	Header Header
	Claims Claims
	// Method is the signing method the header's alg names.
	Method jwt.SigningMethod
	// SigningInput is the text the signature signs: the header and claims
	// parts with their dot.
	SigningInput string
	Signature    []byte
	buf          []byte
}

// segment is the base64url decoding of JWS parts: no padding, and no
// stray bits in the last character.
var segment = base64.RawURLEncoding.Strict()

// Parse splits and decodes token into t, reading extraClaim as well as the
// registered claims. It fails with ErrMalformed or ErrUnverifiable, in the
// order golang-jwt checks: the parts, the header, the claims, the alg, then
// the signature's encoding.
func (t *Token) Parse(token, extraClaim string) error {
	*t = Token{buf: t.buf}
	h, rest, ok := strings.Cut(token, ".")
	if !ok {
		return ErrMalformed
	}
	c, sig, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(sig, ".") {
		return ErrMalformed
	}
	need := segment.DecodedLen(len(h)) + segment.DecodedLen(len(c)) + segment.DecodedLen(len(sig))
	if cap(t.buf) < need {
		t.buf = make([]byte, need)
	}
	buf := t.buf[:need]
	hb, buf, err := decode(buf, h)
	if err != nil {
		return ErrMalformed
	}
	if err := scanTop(hb, t.headerSlot); err != nil {
		return ErrMalformed
	}
	cb, buf, err := decode(buf, c)
	if err != nil {
		return ErrMalformed
	}
	if err := scanTop(cb, func(key []byte) *Value { return t.claimSlot(key, extraClaim) }); err != nil {
		return ErrMalformed
	}
	if t.Claims.Extra.Kind == Absent {
		// The extra claim may be one of the registered ones.
		if v := t.claimSlot([]byte(extraClaim), ""); v != nil {
			t.Claims.Extra = *v
		}
	}
	if t.Header.Alg.Kind != String {
		return ErrUnverifiable
	}
	if t.Method = jwt.GetSigningMethod(t.Header.Alg.Str); t.Method == nil {
		return ErrUnverifiable
	}
	if t.Signature, _, err = decode(buf, sig); err != nil {
		return ErrMalformed
	}
	t.SigningInput = token[:len(h)+1+len(c)]
	return nil
}

// decode decodes the base64url text s into the front of buf, and returns
// the decoded bytes and what is left of buf.
func decode(buf []byte, s string) (out, rest []byte, err error) {
	// The decoder only reads its source: the string's bytes are not copied.
	n, err := segment.Decode(buf, unsafe.Slice(unsafe.StringData(s), len(s)))
	return buf[:n:n], buf[n:], err
}

// headerSlot is where a header member's value goes, or nil for members
// Warden does not read.
func (t *Token) headerSlot(key []byte) *Value {
	switch string(key) {
	case "alg":
		return &t.Header.Alg
	case "kid":
		return &t.Header.Kid
	case "crit":
		return &t.Header.Crit
	}
	return nil
}

// claimSlot is where a claim's value goes, or nil for claims Warden does
// not read.
func (t *Token) claimSlot(key []byte, extra string) *Value {
	switch string(key) {
	case "iss":
		return &t.Claims.Iss
	case "sub":
		return &t.Claims.Sub
	case "aud":
		return &t.Claims.Aud
	case "exp":
		return &t.Claims.Exp
	case "nbf":
		return &t.Claims.Nbf
	case "iat":
		return &t.Claims.Iat
	}
	if string(key) == extra {
		return &t.Claims.Extra
	}
	return nil
}

// Audience reads an aud claim as golang-jwt's MapClaims.GetAudience does:
// a string is one audience, an array must hold only strings, and any other
// value is no audience.
func Audience(v *Value) ([]string, error) {
	switch v.Kind {
	case String:
		return []string{v.Str}, nil
	case Array:
		var list []any
		if err := json.Unmarshal(v.Raw, &list); err != nil {
			return nil, err
		}
		var aud []string
		for _, a := range list {
			s, ok := a.(string)
			if !ok {
				return nil, errors.New("aud is invalid")
			}
			aud = append(aud, s)
		}
		return aud, nil
	}
	return nil, nil
}

// errSyntax is any text encoding/json would refuse to decode into a map.
var errSyntax = errors.New("invalid JSON")

// maxDepth is encoding/json's limit on nested arrays and objects.
const maxDepth = 10000

// scanTop reads data as encoding/json reads it into a map[string]any: null
// (no members), or one object with nothing after it but whitespace. Each
// member's value goes where slot says, the last of duplicates winning.
func scanTop(data []byte, slot func(key []byte) *Value) error {
	s := scanner{data: data}
	s.space()
	switch s.peek() {
	case '{':
		if err := s.object(slot); err != nil {
			return err
		}
	case 'n':
		if err := s.literal("null"); err != nil {
			return err
		}
	default:
		return errSyntax
	}
	s.space()
	if s.i != len(s.data) {
		return errSyntax
	}
	return nil
}

type scanner struct {
	data  []byte
	i     int
	depth int
}

func (s *scanner) peek() byte {
	if s.i < len(s.data) {
		return s.data[s.i]
	}
	return 0
}

func (s *scanner) space() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// object reads an object at s.i, putting each member's value where slot
// says when slot is not nil.
func (s *scanner) object(slot func(key []byte) *Value) error {
	if s.depth++; s.depth > maxDepth {
		return errSyntax
	}
	s.i++ // {
	s.space()
	if s.peek() == '}' {
		s.i++
		s.depth--
		return nil
	}
	for {
		if s.peek() != '"' {
			return errSyntax
		}
		k0 := s.i
		plain, err := s.str()
		if err != nil {
			return err
		}
		k1 := s.i
		s.space()
		if s.peek() != ':' {
			return errSyntax
		}
		s.i++
		s.space()
		var dst *Value
		if slot != nil {
			key := s.data[k0+1 : k1-1]
			if !plain {
				u, err := unquote(s.data[k0:k1])
				if err != nil {
					return err
				}
				key = []byte(u)
			}
			dst = slot(key)
		}
		v, err := s.value(dst != nil)
		if err != nil {
			return err
		}
		if dst != nil {
			*dst = v
		}
		s.space()
		switch s.peek() {
		case ',':
			s.i++
			s.space()
		case '}':
			s.i++
			s.depth--
			return nil
		default:
			return errSyntax
		}
	}
}

func (s *scanner) array() error {
	if s.depth++; s.depth > maxDepth {
		return errSyntax
	}
	s.i++ // [
	s.space()
	if s.peek() == ']' {
		s.i++
		s.depth--
		return nil
	}
	for {
		if _, err := s.value(false); err != nil {
			return err
		}
		s.space()
		switch s.peek() {
		case ',':
			s.i++
			s.space()
		case ']':
			s.i++
			s.depth--
			return nil
		default:
			return errSyntax
		}
	}
}

// value reads one value at s.i. With keep, a string's text and a number's
// value are decoded into the result; a value is always checked in full.
func (s *scanner) value(keep bool) (Value, error) {
	start := s.i
	var v Value
	var err error
	switch c := s.peek(); {
	case c == '"':
		v.Kind = String
		var plain bool
		if plain, err = s.str(); err == nil && keep {
			if plain {
				v.Str = string(s.data[start+1 : s.i-1])
			} else {
				v.Str, err = unquote(s.data[start:s.i])
			}
		}
	case c == '{':
		v.Kind, err = Object, s.object(nil)
	case c == '[':
		v.Kind, err = Array, s.array()
	case c == 't':
		v.Kind, err = Bool, s.literal("true")
	case c == 'f':
		v.Kind, err = Bool, s.literal("false")
	case c == 'n':
		v.Kind, err = Null, s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		v.Kind = Number
		// encoding/json converts every number it decodes into an any, and
		// fails on one out of float64's range, wherever it is.
		if err = s.number(); err == nil {
			v.Num, err = strconv.ParseFloat(string(s.data[start:s.i]), 64)
		}
	default:
		err = errSyntax
	}
	v.Raw = s.data[start:s.i:s.i]
	return v, err
}

func (s *scanner) literal(word string) error {
	if len(s.data)-s.i < len(word) || string(s.data[s.i:s.i+len(word)]) != word {
		return errSyntax
	}
	s.i += len(word)
	return nil
}

// number reads a number in JSON's grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() error {
	if s.peek() == '-' {
		s.i++
	}
	switch c := s.peek(); {
	case c == '0':
		s.i++
	case c >= '1' && c <= '9':
		s.digits()
	default:
		return errSyntax
	}
	if s.peek() == '.' {
		s.i++
		if !s.digits() {
			return errSyntax
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if !s.digits() {
			return errSyntax
		}
	}
	return nil
}

func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.data) && s.data[s.i] >= '0' && s.data[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

// str reads a string at s.i, and reports whether its text is plain: ASCII
// without escapes, so that the bytes between the quotes are its value.
func (s *scanner) str() (plain bool, err error) {
	plain = true
	s.i++ // "
	for s.i < len(s.data) {
		c := s.data[s.i]
		switch {
		case c == '"':
			s.i++
			return plain, nil
		case c < 0x20:
			return false, errSyntax
		case c == '\\':
			plain = false
			s.i++
			switch s.peek() {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				s.i++
				for range 4 {
					if !isHex(s.peek()) {
						return false, errSyntax
					}
					s.i++
				}
			default:
				return false, errSyntax
			}
		default:
			if c >= 0x80 {
				// encoding/json turns invalid UTF-8 into U+FFFD.
				plain = false
			}
			s.i++
		}
	}
	return false, errSyntax
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// unquote decodes a checked string literal that is not plain, as
// encoding/json does.
func unquote(lit []byte) (string, error) {
	var s string
	if err := json.Unmarshal(lit, &s); err != nil {
		return "", errSyntax
	}
	return s, nil
}
