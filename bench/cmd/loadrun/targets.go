package main

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/wardenauthz/warden/bench/internal/load"
	"github.com/wardenauthz/warden/bench/internal/opabench"
)

// tokenList is a list of tokens: a []string (strs) or a packed list.
type tokenList interface {
	Len() int
	At(i int) string
}

// strs is a []string as a tokenList.
type strs []string

func (s strs) Len() int        { return len(s) }
func (s strs) At(i int) string { return s[i] }

// packedTokens holds many tokens in one string, so that the generator's
// collector marks one object, not one per token: the fresh-token runs
// hold a hundred thousand of them, beside the server under test.
type packedTokens struct {
	all  string
	ends []int32
}

func packTokens(toks []string) *packedTokens {
	var b strings.Builder
	p := &packedTokens{ends: make([]int32, len(toks))}
	for i, t := range toks {
		b.WriteString(t)
		p.ends[i] = int32(b.Len())
	}
	p.all = b.String()
	return p
}

func (p *packedTokens) Len() int { return len(p.ends) }

func (p *packedTokens) At(i int) string {
	start := int32(0)
	if i > 0 {
		start = p.ends[i-1]
	}
	return p.all[start:p.ends[i]]
}

// packedRequests holds prepared requests in one buffer without pointers,
// for the same reason.
type packedRequests struct {
	buf  []byte
	ends []int32
}

func (p *packedRequests) add(req []byte) {
	p.buf = append(p.buf, req...)
	p.ends = append(p.ends, int32(len(p.buf)))
}

func (p *packedRequests) at(i int) []byte {
	start := int32(0)
	if i > 0 {
		start = p.ends[i-1]
	}
	return p.buf[start:p.ends[i]:p.ends[i]]
}

// wardenTarget asks Warden's check API, request i with token i (in turn
// when not bounded) about its user's resource. The answer must allow.
func wardenTarget(addr string, tokens tokenList, bounded bool) load.Target {
	reqs := &packedRequests{}
	for i := range tokens.Len() {
		body, _ := json.Marshal(map[string]string{"action": checkAction, "resource": checkResource(i)})
		reqs.add(load.PostJSON(addr, "/v1/check", tokens.At(i), body))
	}
	return target(addr, reqs, bounded, []byte(`"allow":true`))
}

// opaTarget asks OPA's data API for the policy's allow with the same
// token, action and resource as input.
func opaTarget(addr string, tokens tokenList, bounded bool) load.Target {
	reqs := &packedRequests{}
	for i := range tokens.Len() {
		body, _ := json.Marshal(map[string]any{"input": opabench.Input(tokens.At(i), checkAction, checkResource(i))})
		reqs.add(load.PostJSON(addr, opabench.HTTPAllowPath, "", body))
	}
	return target(addr, reqs, bounded, []byte(`"result":true`))
}

func target(addr string, reqs *packedRequests, bounded bool, allowed []byte) load.Target {
	n := len(reqs.ends)
	t := load.Target{
		Dial:    load.HTTP(addr),
		Request: func(i int) []byte { return reqs.at(i % n) },
		OK: func(status int, body []byte) bool {
			return status == 200 && bytes.Contains(body, allowed)
		},
	}
	if bounded {
		t.Requests = n
	}
	return t
}
