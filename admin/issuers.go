package admin

import (
	"net/http"
	"net/url"

	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar"
	"github.com/wardenauthz/warden/sidecar/storage"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// maxIssuerKeys is the most public keys an issuer may have, as in Fusebit.
const maxIssuerKeys = 3

// issuerNotFound is Fusebit's 404 for an issuer the account lacks.
func issuerNotFound(id string) error {
	return errorf(http.StatusNotFound, "The issuer '%s' is not associated with the account", id)
}

func (s *Server) getIssuer(c *call) (any, error) {
	row, ok := s.eng.Snapshot().Issuer(c.acc, c.id)
	if !ok {
		return nil, issuerNotFound(c.id)
	}
	return row.Issuer, nil
}

// issuerPatch is a validated issuer body: what it sets and clears.
type issuerPatch struct {
	setName, setURL, setKeys bool
	clearURL, clearKeys      bool
	name, url                string
	keys                     []model.PublicKey
}

// readIssuer reads and validates an issuer body: a POST's may not carry
// the id, a PATCH's only the URL's.
func (s *Server) readIssuer(c *call) (*issuerPatch, error) {
	allowed := []string{"displayName", "jsonKeysUrl", "publicKeys"}
	if c.r.Method == http.MethodPatch {
		allowed = append(allowed, "id")
	}
	o, err := c.body(allowed...)
	if err != nil {
		return nil, err
	}
	if o.has("id") {
		if id := o.str("id", maxIDLen, false); id != c.id {
			o.fail("The issuerId in the body '%s' does not match the issuerId in the URL '%s'", truncate(id, 256), c.id)
		}
	}
	p := &issuerPatch{setName: o.has("displayName"), clearURL: o.null("jsonKeysUrl"), clearKeys: o.null("publicKeys")}
	p.name = o.str("displayName", maxNameLen, false)
	p.setURL = o.has("jsonKeysUrl") && !p.clearURL
	p.setKeys = o.has("publicKeys") && !p.clearKeys
	switch {
	case p.setURL && p.setKeys:
		o.fail("The issuer '%s' can not have both public keys and a json keys URL", c.id)
	case p.setURL:
		p.url = s.keyURL(o)
	case p.setKeys:
		p.keys = publicKeys(o)
	}
	return p, o.err()
}

// apply applies the patch to iss: setting jsonKeysUrl or publicKeys removes
// the other, and the result must have exactly one of them.
func (p *issuerPatch) apply(iss *model.Issuer) error {
	id := iss.ID
	if p.setName {
		iss.DisplayName = p.name
	}
	switch {
	case p.setURL:
		iss.JSONKeysURL, iss.PublicKeys = p.url, nil
	case p.setKeys:
		iss.JSONKeysURL, iss.PublicKeys = "", p.keys
	}
	if p.clearURL {
		iss.JSONKeysURL = ""
	}
	if p.clearKeys {
		iss.PublicKeys = nil
	}
	if iss.JSONKeysURL == "" && len(iss.PublicKeys) == 0 {
		return badRequest("The issuer '%s' must have at least one public key or a json keys URL", id)
	}
	return nil
}

// keyURL reads jsonKeysUrl: an https:// URL with a host, or http:// when the
// server allows insecure key URLs.
func (s *Server) keyURL(o *object) string {
	raw := o.str("jsonKeysUrl", maxURLLen, true)
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	insecure := s.eng.Config().AllowInsecureKeyURLs
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		o.fail(`"jsonKeysUrl" must be a valid https:// URL`)
	case u.Scheme == "http" && !insecure:
		o.fail(`"jsonKeysUrl" must be an https:// URL (this server does not run with --allow-insecure-key-urls)`)
	case u.User != nil:
		o.fail(`"jsonKeysUrl" must not carry credentials`)
	}
	return raw
}

// publicKeys reads publicKeys: 1 to 3 keys with distinct keyIds, each a
// PEM public key that parses.
func publicKeys(o *object) []model.PublicKey {
	items := o.array("publicKeys", maxIssuerKeys, "keyId", "publicKey")
	if items != nil && len(items) == 0 && len(o.errs) == 0 {
		o.fail(`"publicKeys" must contain at least 1 items`)
	}
	out := make([]model.PublicKey, 0, len(items))
	seen := map[string]bool{}
	for _, it := range items {
		pk := model.PublicKey{KeyID: it.required("keyId", maxIDLen), PublicKey: it.pemText("publicKey")}
		if pk.KeyID != "" && seen[pk.KeyID] {
			it.failOn("keyId", `"%s" '%s' is a duplicate: key ids must be distinct`, pk.KeyID)
		}
		seen[pk.KeyID] = true
		if pk.PublicKey != "" {
			if _, err := sidecar.ParsePublicKey(pk.PublicKey); err != nil {
				it.failOn("publicKey", `"%s" is not a valid public key: %s`, err)
			}
		}
		o.absorb(it)
		out = append(out, pk)
	}
	return out
}

func (s *Server) addIssuer(c *call) (any, error) {
	p, err := s.readIssuer(c)
	if err != nil {
		return nil, err
	}
	iss := model.Issuer{ID: c.id}
	if err := p.apply(&iss); err != nil {
		return nil, err
	}
	key := s.layout.Issuer(c.acc, c.id)
	for range maxWriteAttempts {
		// Identities may name an issuer before it exists: whoever adds
		// it signs for them.
		held, err := s.issuerGuard(c, "add issuer '"+c.id+"', at which")
		if err != nil {
			return nil, err
		}
		resp, err := s.commit(c, append(held, clientv3.Compare(clientv3.CreateRevision(key), "=", 0)),
			[]clientv3.Op{clientv3.OpPut(key, storage.Encode(iss))}, []clientv3.Op{clientv3.OpGet(key, clientv3.WithCountOnly())})
		if err != nil {
			return nil, err
		}
		if resp.Succeeded {
			return iss, nil
		}
		if resp.Responses[0].GetResponseRange().Count > 0 {
			return nil, badRequest("The issuer '%s' already exists", c.id)
		}
	}
	return nil, errContended
}

func (s *Server) updateIssuer(c *call) (any, error) {
	p, err := s.readIssuer(c)
	if err != nil {
		return nil, err
	}
	key := s.layout.Issuer(c.acc, c.id)
	for range maxWriteAttempts {
		resp, err := s.kv.Get(c.r.Context(), key)
		if err != nil {
			return nil, err
		}
		if len(resp.Kvs) == 0 {
			return nil, issuerNotFound(c.id)
		}
		var iss model.Issuer
		if err := storage.Decode(key, resp.Kvs[0].Value, &iss); err != nil {
			return nil, err
		}
		iss.ID = c.id
		if err := p.apply(&iss); err != nil {
			return nil, err
		}
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", resp.Kvs[0].ModRevision)}
		if p.changesKeys() {
			held, err := s.issuerGuard(c, "change the keys of issuer '"+c.id+"', at which")
			if err != nil {
				return nil, err
			}
			cmps = append(cmps, held...)
		}
		txn, err := s.commit(c, cmps, []clientv3.Op{clientv3.OpPut(key, storage.Encode(iss))}, nil)
		if err != nil {
			return nil, err
		}
		if txn.Succeeded {
			return iss, nil
		}
	}
	return nil, errContended
}

// changesKeys says whether the patch touches where the issuer's keys come
// from: what the third guard protects.
func (p *issuerPatch) changesKeys() bool {
	return p.setURL || p.setKeys || p.clearURL || p.clearKeys
}

func (s *Server) deleteIssuer(c *call) (any, error) {
	key := s.layout.Issuer(c.acc, c.id)
	for range maxWriteAttempts {
		held, err := s.issuerGuard(c, "delete issuer '"+c.id+"', at which")
		if err != nil {
			return nil, err
		}
		resp, err := s.commit(c, held, []clientv3.Op{clientv3.OpDelete(key)}, nil)
		if err != nil {
			return nil, err
		}
		if !resp.Succeeded {
			continue
		}
		if resp.Responses[0].GetResponseDeleteRange().Deleted == 0 {
			return nil, issuerNotFound(c.id)
		}
		return nil, nil
	}
	return nil, errContended
}

// issuerGuard is the third escalation guard: whoever adds an issuer,
// changes where its keys come from, or deletes it, can sign tokens for
// (or lock out) every agent with an identity at it, so the caller must
// cover every grant of each of them. doing ends in "at which", and the
// message goes on with the agent. It returns the compares that keep what
// it checked true until the write commits: no identity at the issuer, nor
// any of those agents, changed since.
func (s *Server) issuerGuard(c *call, doing string) ([]clientv3.Cmp, error) {
	ctx := c.r.Context()
	prefix := s.layout.IdentitiesAt(c.acc, c.id)
	ids, err := s.kv.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	rev := ids.Header.Revision
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(prefix).WithPrefix(), "<", rev+1)}
	seen := map[string]bool{}
	for _, kv := range ids.Kvs {
		id := string(kv.Value)
		if seen[id] {
			continue
		}
		seen[id] = true
		key := s.layout.Agent(c.acc, id)
		resp, err := s.kv.Get(ctx, key, clientv3.WithRev(rev))
		if err != nil {
			return nil, err
		}
		if len(resp.Kvs) == 0 {
			continue // an index entry left by a crash; it holds nothing
		}
		var agent storage.AgentRecord
		if err := storage.Decode(key, resp.Kvs[0].Value, &agent); err != nil {
			return nil, err
		}
		agent.ID = id
		if err := s.guardAt(c, &agent, doing); err != nil {
			return nil, err
		}
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "<", rev+1))
	}
	return cmps, nil
}
