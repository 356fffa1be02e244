package storage

import (
	"unicode/utf8"

	"github.com/wardenauthz/warden/sdk/model"
)

// agentDecoder decodes agent records into the state's agents, compactly,
// because a node holds every agent of the store: the strings of one record
// share one allocation, a string that repeats the one before it in the
// record (the resource of several grants) is held once, and strings that
// recur across records (actions, issuer ids) are shared through a bounded
// table. A record in the form Encode writes takes a fast path that skips
// encoding/json's reflection; any other record is decoded by encoding/json,
// so that both read every record the same. Not safe for concurrent use.
type agentDecoder struct {
	// shared holds the actions and issuer ids seen, up to maxShared; nil
	// when the decoder shares nothing across records.
	shared map[string]string

	// What the fast path read of the current record: sub-slices of its
	// value, in slices reused from record to record.
	id, typ       []byte
	names         [4][]byte   // firstName, lastName, primaryEmail, displayName
	identities    [][2][]byte // issuerId, subject
	grants        [][2][]byte // action, resource
	hasIdentities bool        // false when the field is absent: nil, not empty
	hasGrants     bool
	buf           []byte
	laid          []laid
}

// laid is a string of the record laid out in agentDecoder.buf, to be cut
// from it into to.
type laid struct {
	to       *string
	from, at int
}

// maxShared bounds the strings an agentDecoder shares across records.
// Actions and issuer ids are few; the bound only matters for a store
// where they are not, whose records then hold their own.
const maxShared = 1 << 14

// newAgentDecoder returns a decoder; share says whether it shares strings
// across the records it decodes (for a list of the store, whose records are
// many, but not for the few of a watch response).
func newAgentDecoder(share bool) *agentDecoder {
	d := &agentDecoder{}
	if share {
		d.shared = map[string]string{}
	}
	return d
}

// decode decodes the record stored at key into the agent id of account acc.
// The record's own id is read but not used: the key names the agent.
func (d *agentDecoder) decode(key string, value []byte, acc, id string) (model.Agent, error) {
	if d.scan(value) {
		return d.agent(acc, id), nil
	}
	var rec AgentRecord
	if err := Decode(key, value, &rec); err != nil {
		return model.Agent{}, err
	}
	rec.ID = id
	return rec.Agent(acc), nil
}

// agent builds the agent the fast path read. The record's strings are laid
// out in one buffer that becomes one string, and cut from it; a string
// that repeats the entry before's in its column (a resource of several
// grants) is laid out once.
func (d *agentDecoder) agent(acc, id string) model.Agent {
	a := model.Agent{ID: id, Account: acc}
	switch string(d.typ) {
	case string(model.AgentUser):
		a.Type = model.AgentUser
	case string(model.AgentClient):
		a.Type = model.AgentClient
	default:
		a.Type = model.AgentType(d.typ)
	}
	// The names are laid out first, for no field: they are cut from the
	// first four.
	d.buf, d.laid = d.buf[:0], d.laid[:0]
	for _, n := range d.names {
		d.lay(nil, n, nil)
	}
	if d.hasIdentities {
		a.Identities = make([]model.Identity, len(d.identities))
		var prev [2][]byte
		for i, pair := range d.identities {
			d.share(&a.Identities[i].IssuerID, pair[0], prev[0])
			d.lay(&a.Identities[i].Subject, pair[1], prev[1])
			prev = pair
		}
	}
	if d.hasGrants {
		a.Grants = make([]model.Permission, len(d.grants))
		var prev [2][]byte
		for i, pair := range d.grants {
			d.share(&a.Grants[i].Action, pair[0], prev[0])
			d.lay(&a.Grants[i].Resource, pair[1], prev[1])
			prev = pair
		}
	}
	all := string(d.buf)
	for _, l := range d.laid[4:] {
		*l.to = all[l.from:l.at]
	}
	cut := func(i int) string { return all[d.laid[i].from:d.laid[i].at] }
	a.FirstName, a.LastName, a.PrimaryEmail, a.DisplayName = cut(0), cut(1), cut(2), cut(3)
	return a
}

// lay lays b out for to, or, when b repeats prev (the same field of the
// entry before, so one of the last two laid out), points to at prev's copy.
func (d *agentDecoder) lay(to *string, b, prev []byte) {
	if prev != nil && string(b) == string(prev) {
		for i := len(d.laid) - 1; i >= max(len(d.laid)-2, 0); i-- {
			if l := d.laid[i]; string(d.buf[l.from:l.at]) == string(b) {
				d.laid = append(d.laid, laid{to, l.from, l.at})
				return
			}
		}
	}
	d.buf = append(d.buf, b...)
	d.laid = append(d.laid, laid{to, len(d.buf) - len(b), len(d.buf)})
}

// share sets to the shared copy of b, adding one while the table has room,
// or lays b out as lay does when the decoder shares nothing or the table
// is full.
func (d *agentDecoder) share(to *string, b, prev []byte) {
	if d.shared != nil {
		if s, ok := d.shared[string(b)]; ok {
			*to = s
			return
		}
		if len(d.shared) < maxShared {
			s := string(b)
			d.shared[s] = s
			*to = s
			return
		}
	}
	d.lay(to, b, prev)
}

// scan reads a record in the form Encode writes: one object of the
// AgentRecord's fields, each at most once and spelled exactly, with strings
// free of escapes and valid UTF-8, and arrays of objects for identities
// and grants. It reports false for anything else, valid JSON or not, which
// encoding/json then decodes or refuses.
func (d *agentDecoder) scan(value []byte) bool {
	d.id, d.typ, d.names = nil, nil, [4][]byte{}
	d.identities, d.grants = d.identities[:0], d.grants[:0]
	d.hasIdentities, d.hasGrants = false, false
	s := scanner{b: value}
	var seen uint8
	ok := s.object(func(field []byte) bool {
		var bit uint8
		var into *[]byte
		switch string(field) {
		case "id":
			bit, into = 1<<0, &d.id
		case "type":
			bit, into = 1<<1, &d.typ
		case "firstName":
			bit, into = 1<<2, &d.names[0]
		case "lastName":
			bit, into = 1<<3, &d.names[1]
		case "primaryEmail":
			bit, into = 1<<4, &d.names[2]
		case "displayName":
			bit, into = 1<<5, &d.names[3]
		case "identities":
			bit = 1 << 6
		case "allow":
			bit = 1 << 7
		default:
			return false
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		var ok bool
		switch bit {
		case 1 << 6:
			d.identities, ok = s.pairs(d.identities, "issuerId", "subject")
			d.hasIdentities = true
		case 1 << 7:
			d.grants, ok = s.pairs(d.grants, "action", "resource")
			d.hasGrants = true
		default:
			*into, ok = s.str()
		}
		return ok
	})
	s.ws()
	return ok && s.i == len(s.b)
}

// scanner reads the subset of JSON that agentDecoder's fast path takes.
type scanner struct {
	b []byte
	i int
}

// ws skips JSON whitespace.
func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next skips whitespace and takes c if it comes next.
func (s *scanner) next(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string without escapes or control characters, in valid
// UTF-8: encoding/json reads those bytes as they are.
func (s *scanner) str() ([]byte, bool) {
	if !s.next('"') {
		return nil, false
	}
	from, ascii := s.i, true
	for ; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			v := s.b[from:s.i]
			s.i++
			return v, ascii || utf8.Valid(v)
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

// object reads an object, handing each field's name to field, which reads
// the value.
func (s *scanner) object(field func(name []byte) bool) bool {
	if !s.next('{') {
		return false
	}
	if s.next('}') {
		return true
	}
	for {
		name, ok := s.str()
		if !ok || !s.next(':') || !field(name) {
			return false
		}
		if s.next('}') {
			return true
		}
		if !s.next(',') {
			return false
		}
	}
}

// pairs reads an array of objects of two string fields, a and b, each at
// most once, appending them to into.
func (s *scanner) pairs(into [][2][]byte, a, b string) ([][2][]byte, bool) {
	if !s.next('[') {
		return into, false
	}
	if s.next(']') {
		return into, true
	}
	for {
		var pair [2][]byte
		var seen [2]bool
		ok := s.object(func(name []byte) bool {
			i := 0
			switch string(name) {
			case a:
			case b:
				i = 1
			default:
				return false
			}
			if seen[i] {
				return false
			}
			seen[i] = true
			var ok bool
			pair[i], ok = s.str()
			return ok
		})
		if !ok {
			return into, false
		}
		into = append(into, pair)
		if s.next(']') {
			return into, true
		}
		if !s.next(',') {
			return into, false
		}
	}
}
