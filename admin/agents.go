package admin

import (
	"context"
	"net/http"
	"slices"

	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar/storage"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// kind is users or clients: the two differ only in their type, id prefix
// and name fields.
type kind struct {
	typ    model.AgentType
	prefix string
	names  []string // the name fields of the kind's records
}

var (
	userKind   = kind{typ: model.AgentUser, prefix: model.UserPrefix, names: []string{"firstName", "lastName", "primaryEmail"}}
	clientKind = kind{typ: model.AgentClient, prefix: model.ClientPrefix, names: []string{"displayName"}}
)

func (k kind) action(verb string) string { return string(k.typ) + ":" + verb }

// checkID validates a user or client id from the path.
func (k kind) checkID(id string) error {
	if model.ValidID(k.prefix, id) {
		return nil
	}
	return patternError(string(k.typ)+"Id", id, k.prefix)
}

func (k kind) bind(fn func(kind, *call) (any, error)) handler {
	return func(c *call) (any, error) { return fn(k, c) }
}

// maxWriteAttempts bounds the retries of a read-modify-write that lost a
// race with another writer of the same record.
const maxWriteAttempts = 5

var errContended = errorf(http.StatusConflict, "the record changed concurrently too often; try again")

// publicRecord is the record as the API returns it.
func publicRecord(rec *storage.AgentRecord) any {
	a := rec.Agent("")
	return a.Wire(true)
}

// setNames copies the kind's name fields present in o to rec; null clears.
func (k kind) setNames(o *object, rec *storage.AgentRecord) {
	for _, f := range k.names {
		if !o.has(f) {
			continue
		}
		// Present, a name may be null (cleared) but not empty; an email
		// is any string, as in Fusebit.
		v := o.str(f, maxNameLen, true)
		switch f {
		case "firstName":
			rec.FirstName = v
		case "lastName":
			rec.LastName = v
		case "primaryEmail":
			rec.PrimaryEmail = v
		case "displayName":
			rec.DisplayName = v
		}
	}
}

func (s *Server) addAgent(k kind, c *call) (any, error) {
	o, err := c.body(append([]string{"identities", "access"}, k.names...)...)
	if err != nil {
		return nil, err
	}
	rec := &storage.AgentRecord{ID: model.NewID(k.prefix), Type: k.typ}
	k.setNames(o, rec)
	rec.Identities = o.identities("identities")
	allow := o.access("access")
	if err := o.err(); err != nil {
		return nil, err
	}
	if err := s.delegate(c, allow); err != nil {
		return nil, err
	}
	rec.Allow = model.NormalizePermissions(allow)
	key := s.layout.Agent(c.acc, rec.ID)
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)}
	ops := []clientv3.Op{clientv3.OpPut(key, storage.Encode(rec))}
	cmps, ops, probes := s.claimIdentities(c.acc, rec.ID, rec.Identities, cmps, ops)
	resp, err := s.commit(c, cmps, ops, probes)
	if err != nil {
		return nil, err
	}
	if !resp.Succeeded {
		if err := identityConflict(resp, rec.Identities); err != nil {
			return nil, err
		}
		return nil, errContended // the fresh id was taken: vanishingly rare
	}
	return publicRecord(rec), nil
}

func (s *Server) getAgent(k kind, c *call) (any, error) {
	a, ok := s.eng.Snapshot().Agent(c.id)
	if !ok || a.Account != c.acc || a.Type != k.typ {
		return nil, notFound(string(k.typ), c.id)
	}
	return a.Wire(true), nil
}

func (s *Server) me(c *call) (any, error) {
	a, ok := s.eng.Snapshot().Agent(c.caller.Agent().ID)
	if !ok {
		return nil, errUnauthorized
	}
	return a.Wire(true), nil
}

func (s *Server) updateAgent(k kind, c *call) (any, error) {
	o, err := c.body(append([]string{"id", "identities", "access"}, k.names...)...)
	if err != nil {
		return nil, err
	}
	if o.has("id") {
		if id := o.str("id", maxIDLen, false); id != c.id {
			o.fail("The %sId in the body '%s' does not match the %sId in the URL '%s'", k.typ, truncate(id, 256), k.typ, c.id)
		}
	}
	k.setNames(o, &storage.AgentRecord{}) // validates them; applied to the current record below
	newIDs := o.identities("identities")
	allow := o.access("access")
	if err := o.err(); err != nil {
		return nil, err
	}
	if o.has("access") {
		if err := s.delegate(c, allow); err != nil {
			return nil, err
		}
	}
	for range maxWriteAttempts {
		cur, modRev, err := s.loadAgent(c.r.Context(), k, c.acc, c.id)
		if err != nil {
			return nil, err
		}
		next := *cur
		k.setNames(o, &next) // the fields were validated above
		if o.has("identities") {
			next.Identities = newIDs
			if !sameIdentities(cur.Identities, newIDs) {
				if err := s.guard(c, cur, "change the identities of"); err != nil {
					return nil, err
				}
			}
		}
		if o.has("access") {
			next.Allow = model.NormalizePermissions(allow)
		}
		key := s.layout.Agent(c.acc, c.id)
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", modRev)}
		ops := []clientv3.Op{clientv3.OpPut(key, storage.Encode(&next))}
		for _, id := range cur.Identities {
			if !slices.Contains(next.Identities, id) {
				ops = append(ops, clientv3.OpDelete(s.layout.Identity(c.acc, id.IssuerID, id.Subject)))
			}
		}
		added := without(next.Identities, cur.Identities)
		cmps, ops, probes := s.claimIdentities(c.acc, c.id, added, cmps, ops)
		resp, err := s.commit(c, cmps, ops, probes)
		if err != nil {
			return nil, err
		}
		if resp.Succeeded {
			return publicRecord(&next), nil
		}
		if err := identityConflict(resp, added); err != nil {
			return nil, err
		}
	}
	return nil, errContended
}

func (s *Server) deleteAgent(k kind, c *call) (any, error) {
	for range maxWriteAttempts {
		cur, modRev, err := s.loadAgent(c.r.Context(), k, c.acc, c.id)
		if err != nil {
			return nil, err
		}
		key := s.layout.Agent(c.acc, c.id)
		ops := []clientv3.Op{clientv3.OpDelete(key)}
		for _, id := range cur.Identities {
			ops = append(ops, clientv3.OpDelete(s.layout.Identity(c.acc, id.IssuerID, id.Subject)))
		}
		resp, err := s.commit(c, []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", modRev)}, ops, nil)
		if err != nil {
			return nil, err
		}
		if resp.Succeeded {
			return nil, nil
		}
	}
	return nil, errContended
}

// delegate enforces the delegation rule: every grant the caller gives must
// be covered by the caller's own effective permissions.
func (s *Server) delegate(c *call, allow []model.Permission) error {
	if g, ok := firstUncovered(c.caller.Permissions(), allow); ok {
		return badRequest("The %s is not authorized to grant access to perform the action '%s' on resource '%s'",
			c.who(), g.Action, g.Resource)
	}
	return nil
}

// guard is Warden's escalation guard: changing a target's identities, or
// minting an init token for it, hands over everything the target holds, so
// the caller must cover every grant the target holds.
func (s *Server) guard(c *call, target *storage.AgentRecord, doing string) error {
	if g, ok := firstUncovered(c.caller.Permissions(), target.Allow); ok {
		return badRequest("The %s is not authorized to %s %s '%s', which may perform the action '%s' on resource '%s'",
			c.who(), doing, target.Type, target.ID, g.Action, g.Resource)
	}
	return nil
}

// guardAt is guard for an issuer: the caller must cover every grant of an
// agent with an identity at the issuer it adds, rekeys or deletes.
func (s *Server) guardAt(c *call, target *storage.AgentRecord, doing string) error {
	if g, ok := firstUncovered(c.caller.Permissions(), target.Allow); ok {
		return badRequest("The %s is not authorized to %s %s '%s' has an identity and may perform the action '%s' on resource '%s'",
			c.who(), doing, target.Type, target.ID, g.Action, g.Resource)
	}
	return nil
}

// firstUncovered returns the first of grants that perms do not cover.
func firstUncovered(perms, grants []model.Permission) (model.Permission, bool) {
	for _, g := range grants {
		if _, ok := model.Covers(perms, g.Action, g.Resource); !ok {
			return g, true
		}
	}
	return model.Permission{}, false
}

// loadAgent reads an agent of account acc from the store, linearizably,
// with its mod revision; a missing one (or one of the other kind) is 404.
func (s *Server) loadAgent(ctx context.Context, k kind, acc, id string) (*storage.AgentRecord, int64, error) {
	key := s.layout.Agent(acc, id)
	resp, err := s.kv.Get(ctx, key)
	if err != nil {
		return nil, 0, err
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, notFound(string(k.typ), id)
	}
	rec := &storage.AgentRecord{}
	if err := storage.Decode(key, resp.Kvs[0].Value, rec); err != nil {
		return nil, 0, err
	}
	rec.ID = id
	if rec.Type != k.typ {
		return nil, 0, notFound(string(k.typ), id)
	}
	return rec, resp.Kvs[0].ModRevision, nil
}

// claimIdentities adds to a transaction the claim of each identity for
// agent id: the identity key must not exist yet, and is created. probes
// read the keys back when the transaction fails.
func (s *Server) claimIdentities(acc, id string, ids []model.Identity, cmps []clientv3.Cmp, ops []clientv3.Op) ([]clientv3.Cmp, []clientv3.Op, []clientv3.Op) {
	probes := make([]clientv3.Op, 0, len(ids))
	for _, ident := range ids {
		k := s.layout.Identity(acc, ident.IssuerID, ident.Subject)
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(k), "=", 0))
		ops = append(ops, clientv3.OpPut(k, id))
		probes = append(probes, clientv3.OpGet(k))
	}
	return cmps, ops, probes
}

// identityConflict names the first identity another agent holds, from the
// probes of a failed transaction, or returns nil when none does (the
// transaction failed for another reason).
func identityConflict(resp *clientv3.TxnResponse, ids []model.Identity) error {
	for i, r := range resp.Responses {
		if i < len(ids) && len(r.GetResponseRange().Kvs) > 0 {
			return badRequest("The identity with issuer '%s' and subject '%s' is already associated with a user or client",
				ids[i].IssuerID, ids[i].Subject)
		}
	}
	return nil
}

func sameIdentities(a, b []model.Identity) bool {
	return len(without(a, b)) == 0 && len(without(b, a)) == 0
}

// without returns the identities of a that are not in b.
func without(a, b []model.Identity) []model.Identity {
	var out []model.Identity
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
