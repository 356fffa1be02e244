package main

import (
	"bytes"
	"encoding/json"

	"github.com/wardenauthz/warden/bench/internal/load"
	"github.com/wardenauthz/warden/bench/internal/opabench"
)

// wardenTarget asks Warden's check API, request i with token i (in turn
// when not bounded) about its user's resource. The answer must allow.
func wardenTarget(addr string, tokens []string, bounded bool) load.Target {
	reqs := make([][]byte, len(tokens))
	for i, tok := range tokens {
		body, _ := json.Marshal(map[string]string{"action": checkAction, "resource": checkResource(i)})
		reqs[i] = load.PostJSON(addr, "/v1/check", tok, body)
	}
	return target(addr, reqs, bounded, []byte(`"allow":true`))
}

// opaTarget asks OPA's data API for the policy's allow with the same
// token, action and resource as input.
func opaTarget(addr string, tokens []string, bounded bool) load.Target {
	reqs := make([][]byte, len(tokens))
	for i, tok := range tokens {
		body, _ := json.Marshal(map[string]any{"input": opabench.Input(tok, checkAction, checkResource(i))})
		reqs[i] = load.PostJSON(addr, opabench.HTTPAllowPath, "", body)
	}
	return target(addr, reqs, bounded, []byte(`"result":true`))
}

func target(addr string, reqs [][]byte, bounded bool, allowed []byte) load.Target {
	t := load.Target{
		Dial:    load.HTTP(addr),
		Request: func(i int) []byte { return reqs[i%len(reqs)] },
		OK: func(status int, body []byte) bool {
			return status == 200 && bytes.Contains(body, allowed)
		},
	}
	if bounded {
		t.Requests = len(reqs)
	}
	return t
}
