package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/wardenauthz/warden/internal/httpkit"
	"github.com/wardenauthz/warden/sdk/model"
)

// Limits on what the admin API stores.
const (
	maxNameLen = 256  // names, display names, emails
	maxIDLen   = 1024 // issuer ids, subjects, key ids
	maxGrants  = 1000 // grants per agent
	// maxIdentities bounds an agent's identities so that every write fits
	// one etcd transaction under etcd's default limit of 128 operations:
	// replacing them all is 1 + 50 + 50.
	maxIdentities = 50
	maxPEMLen     = 16 << 10
	maxURLLen     = 2048
)

// object is a JSON request body being validated field by field. Problems
// are collected and reported together, each naming its field by its last
// key as Fusebit does (`"subject" is required`), with its full path
// (identities[0].subject) beside the message, in the error body's fields.
type object struct {
	path   string // the field path of this object, "" at the top
	fields map[string]json.RawMessage
	errs   []httpkit.FieldError
}

// parseObject parses body as a JSON object whose fields are all among
// allowed.
func parseObject(body []byte, allowed ...string) (*object, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, badRequest("the request body is not a valid JSON object: %s", httpkit.JSONProblem(err))
	}
	if fields == nil {
		return nil, badRequest("the request body must be a JSON object, not null")
	}
	o := &object{fields: fields}
	o.allow(allowed...)
	return o, nil
}

func (o *object) name(field string) string {
	if o.path == "" {
		return field
	}
	return o.path + "." + field
}

// fail records a problem of the object. A message that starts with a
// quoted field name is about that field, and its path says so.
func (o *object) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	path := o.path
	if rest, ok := strings.CutPrefix(msg, `"`); ok {
		if field, _, ok := strings.Cut(rest, `"`); ok && field != "" {
			path = o.name(field)
		}
	}
	o.errs = append(o.errs, httpkit.FieldError{Path: path, Message: msg})
}

// failOn records a problem of one field, named by its last key in the
// message (format's first verb) and by its full path beside it.
func (o *object) failOn(field, format string, args ...any) {
	o.errs = append(o.errs, httpkit.FieldError{Path: o.name(field), Message: fmt.Sprintf(format, append([]any{field}, args...)...)})
}

// allow reports every field not among allowed, in name order.
func (o *object) allow(allowed ...string) {
	var extra []string
	for k := range o.fields {
		if !contains(allowed, k) {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		o.failOn(k, `"%s" is not allowed`)
	}
}

// err returns the collected problems as one 400, or nil: the messages
// joined, and each with its path in the body's fields.
func (o *object) err() error {
	if len(o.errs) == 0 {
		return nil
	}
	msgs := make([]string, len(o.errs))
	for i, e := range o.errs {
		msgs[i] = e.Message
	}
	return &httpkit.Error{Status: http.StatusBadRequest, Message: strings.Join(msgs, "; "), Fields: o.errs}
}

// has reports whether field is present, null included.
func (o *object) has(field string) bool { _, ok := o.fields[field]; return ok }

// null reports whether field is present and null.
func (o *object) null(field string) bool {
	raw, ok := o.fields[field]
	return ok && bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// str reads an optional string field: absent and null read as "". It must
// be printable and at most max bytes; nonEmpty refuses "".
func (o *object) str(field string, max int, nonEmpty bool) string {
	return o.text(field, max, nonEmpty, printable)
}

// pemText reads a required PEM field: printable but for line breaks. Null
// is refused, as in required.
func (o *object) pemText(field string) string {
	if o.refuseNull(field) {
		return ""
	}
	return o.text(field, maxPEMLen, true, func(s string) bool {
		return printable(strings.NewReplacer("\n", "", "\r", "", "\t", "").Replace(s))
	})
}

func (o *object) text(field string, max int, nonEmpty bool, ok func(string) bool) string {
	raw, present := o.fields[field]
	if !present || o.null(field) {
		if nonEmpty && !present {
			o.failOn(field, `"%s" is required`)
		}
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		o.failOn(field, `"%s" must be a string`)
		return ""
	}
	switch {
	case nonEmpty && s == "":
		o.failOn(field, `"%s" is not allowed to be empty`)
	case len(s) > max:
		o.failOn(field, `"%s" length must be less than or equal to %d characters long`, max)
	case !ok(s):
		o.failOn(field, `"%s" must not contain control characters`)
	}
	return s
}

// required reads a required non-empty string. Null is refused: it is not
// a value, and reading it as absent would let a body skip a required field
// (a key ID, a proof of possession) by sending null.
func (o *object) required(field string, max int) string {
	if o.refuseNull(field) {
		return ""
	}
	return o.str(field, max, true)
}

// refuseNull reports, as a problem of o, a required field sent as null.
func (o *object) refuseNull(field string) bool {
	if !o.null(field) {
		return false
	}
	o.failOn(field, `"%s" must be a string`)
	return true
}

// array reads an optional array field of objects, each with fields among
// allowed. Absent and null read as nil.
func (o *object) array(field string, maxItems int, allowed ...string) []*object {
	raw, ok := o.fields[field]
	if !ok || o.null(field) {
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		o.failOn(field, `"%s" must be an array`)
		return nil
	}
	if len(items) > maxItems {
		o.failOn(field, `"%s" must contain less than or equal to %d items`, maxItems)
		return nil
	}
	out := make([]*object, 0, len(items))
	for i, item := range items {
		sub := o.sub(fmt.Sprintf("%s[%d]", field, i), item, allowed...)
		if sub != nil {
			out = append(out, sub)
		}
	}
	return out
}

// object reads an optional object field with fields among allowed; nil
// when absent or null.
func (o *object) object(field string, allowed ...string) *object {
	raw, ok := o.fields[field]
	if !ok || o.null(field) {
		return nil
	}
	return o.sub(field, raw, allowed...)
}

// sub parses raw as the nested object at field. Its problems are reported
// through o.
func (o *object) sub(field string, raw json.RawMessage, allowed ...string) *object {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		o.failOn(field, `"%s" must be an object`)
		return nil
	}
	sub := &object{path: o.name(field), fields: fields}
	if allowed != nil {
		sub.allow(allowed...)
	}
	return sub
}

// absorb moves a nested object's problems into o.
func (o *object) absorb(sub *object) {
	if sub != nil {
		o.errs = append(o.errs, sub.errs...)
		sub.errs = nil
	}
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// identities reads an identities field: [{issuerId, subject}], distinct.
func (o *object) identities(field string) []model.Identity {
	items := o.array(field, maxIdentities, "issuerId", "subject")
	out := make([]model.Identity, 0, len(items))
	seen := map[model.Identity]bool{}
	for i, it := range items {
		id := model.Identity{IssuerID: it.required("issuerId", maxIDLen), Subject: it.required("subject", maxIDLen)}
		o.absorb(it)
		if seen[id] {
			o.failOn(fmt.Sprintf("%s[%d]", field, i), `"%s" contains a duplicate value`)
		}
		seen[id] = true
		out = append(out, id)
	}
	return out
}

// access reads an access field: {allow: [{action, resource}]}. Actions and
// resources must follow the grammar (model.ValidateAction and
// ValidateResource); resources are returned as sent (the delegation message
// quotes them) and normalized when stored.
func (o *object) access(field string) []model.Permission {
	acc := o.object(field, "allow")
	if acc == nil {
		return nil
	}
	if !acc.has("allow") {
		acc.failOn("allow", `"%s" is required`)
	}
	items := acc.array("allow", maxGrants, "action", "resource")
	out := make([]model.Permission, 0, len(items))
	for _, it := range items {
		p := model.Permission{Action: it.required("action", maxIDLen), Resource: it.required("resource", maxIDLen)}
		if p.Action != "" {
			if err := model.ValidateAction(p.Action); err != nil {
				it.failOn("action", `"%s": %s`, err)
			}
		}
		if p.Resource != "" {
			if err := model.ValidateResource(p.Resource); err != nil {
				it.failOn("resource", `"%s": %s`, err)
			}
		}
		acc.absorb(it)
		out = append(out, p)
	}
	o.absorb(acc)
	return out
}
