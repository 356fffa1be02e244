# Warden's check, written in Rego for Open Policy Agent, so that the two can be
# compared doing the same job (bench/RESULTS.md). It follows "The model,
# exactly" in Warden's DESIGN.md: the bearer token is verified against its
# issuer's keys, its agent is resolved by (iss, sub), and the agent's grants
# are matched against the requested action and resource.
#
# input: {"token": "<JWT>", "action": "<action>", "resource": "<resource>"}
#
# data.warden, as opabench.Model.Data exports it:
#   audiences          the accepted aud values
#   default_account    the account of resources that name none
#   permissions_claim  the inline-permissions claim
#   accounts[acc].issuers[iss].keys[kid] = {"cert": PEM, "algs": [...]}
#   accounts[acc].identities[iss][sub]   = agent id
#   accounts[acc].agents[id]             = {"type": ..., "grants": [{action, resource}]}
# Grants in data are normalized, as Warden stores them.
package warden

# allow is the answer: the token is valid and the agent's effective
# permissions cover the action on the resource.
default allow := false

allow if {
	some grant in effective_grants
	startswith(requested_resource, grant.resource)
	action_matches(grant.action)
}

# status is Warden's decision status: 200 allowed, 401 no valid token, 403 a
# valid token that is not permitted.
default status := 401

status := 200 if allow

status := 403 if {
	claims
	not allow
}

decision := {"allow": allow, "status": status}

# The account is the one the resource names (/account/{acc}/...), else the
# default account.
account := acc if {
	r := trim_prefix(input.resource, "/")
	startswith(r, "account/")
	acc := split(substring(r, 8, -1), "/")[0]
	acc != ""
} else := data.warden.default_account

# Tokens over 16 KiB are refused without being parsed.
max_token_size := 16384

# key is the issuer's key the token names by kid, found from the unverified
# header and payload; the token's algorithm must fit the key's type.
key := k if {
	count(input.token) <= max_token_size
	[header, unverified, _] := io.jwt.decode(input.token)
	k := data.warden.accounts[account].issuers[unverified.iss].keys[header.kid]
	header.alg in k.algs
}

# claims are the verified token's payload: its signature, aud, exp and nbf
# checked by io.jwt.decode_verify (whose signature check the inter-query
# value cache io_jwt remembers when it is enabled), and sub and exp present.
claims := payload if {
	some aud in data.warden.audiences
	[valid, _, payload] := io.jwt.decode_verify(input.token, {"cert": key.cert, "aud": aud})
	valid
	is_string(payload.sub)
	payload.sub != ""
	is_number(payload.exp)
}

agent_id := data.warden.accounts[account].identities[claims.iss][claims.sub]

stored_grants := data.warden.accounts[account].agents[agent_id].grants

# Without inline permissions, the agent's grants apply.
effective_grants := stored_grants if not has_inline

# Inline permissions replace the agent's grants when every entry names an
# action and a resource and is covered by the agent's grants. A claim without
# "allow" grants nothing.
effective_grants := [{"action": p.action, "resource": normalize(p.resource)} | some p in inline] if {
	has_inline
	c := claims[data.warden.permissions_claim]
	is_object(c)
	inline := object.get(c, "allow", [])
	is_array(inline)
	every p in inline {
		is_string(p.action)
		p.action != ""
		is_string(p.resource)
		p.resource != ""
		some g in stored_grants
		startswith(normalize(p.resource), g.resource)
		segments_match(g.action, p.action)
	}
}

has_inline if data.warden.permissions_claim in object.keys(claims)

# Resources are normalized by adding a leading and a trailing "/" when
# missing; nothing else.
normalize(r) := concat("", [lead, r, trail]) if {
	lead := slash_unless(startswith(r, "/"))
	trail := slash_unless(endswith(concat("", [lead, r]), "/"))
}

slash_unless(true) := ""

slash_unless(false) := "/"

requested_resource := normalize(input.resource)

# action_matches says whether a granted action matches the requested one.
action_matches(granted) if segments_match(granted, input.action)

# Equal actions match.
segments_match(granted, requested) if granted == requested

# Otherwise the requested segments are walked in order: a granted segment
# that is missing or empty denies, "*" allows at once, an equal segment moves
# on, anything else denies; running out of requested segments denies. So a
# granted "*" segment at position i allows exactly when the granted segments
# before it are non-empty and the requested action starts with them and a
# ":" (it then has a segment at i); at position 0 it allows anything.
segments_match(granted, requested) if {
	contains(granted, "*")
	g := split(granted, ":")
	some i, seg in g
	seg == "*"
	star_allows(array.slice(g, 0, i), requested)
}

star_allows([], _)

star_allows(before, requested) if {
	count(before) > 0
	not "" in before
	startswith(requested, concat("", [concat(":", before), ":"]))
}
