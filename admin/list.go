package admin

import (
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar/state"
)

// Page sizes of lists.
const (
	defaultCount = 25
	maxCount     = 100
)

// list is a page of a list response; Next is absent on the last page.
type list struct {
	Items []any  `json:"items"`
	Next  string `json:"next,omitempty"`
}

// page is the paging of a list request: at most count items after the id
// in the cursor.
type page struct {
	count int
	after string
}

// cursor kinds keep one list's cursor from being used for another.
const (
	cursorAgents  = "a"
	cursorIssuers = "i"
	cursorHooks   = "h"
	cursorRoutes  = "r"
	cursorAudit   = "u"
)

// parsePage reads count and next from the query.
func parsePage(q url.Values, cursorKind string) (page, error) {
	p := page{count: defaultCount}
	if v := q.Get("count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return p, badRequest("The limit value '%s' is invalid; must be a positive number", v)
		}
		if n > 0 {
			p.count = min(n, maxCount)
		}
	}
	if v := q.Get("next"); v != "" {
		after, ok := decodeCursor(v, cursorKind)
		if !ok {
			return p, badRequest("The 'next' value '%s' is invalid; pass the 'next' of a previous page of the same list", truncate(v, 64))
		}
		p.after = after
	}
	return p, nil
}

// encodeCursor makes an opaque cursor for the list after id.
func encodeCursor(kind, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + id))
}

func decodeCursor(s, kind string) (string, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return "", false
	}
	k, id, ok := strings.Cut(string(raw), ":")
	return id, ok && k == kind && id != "" && utf8.ValidString(id)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// pager fills a page from items offered in id order: it takes the items
// after the cursor until the page is full, and sets Next when more follow.
type pager struct {
	page  page
	out   list
	cKind string
	last  string
}

// offer adds an item with id, offered in id order after the cursor; it
// returns false once the page is full and one more item showed there is a
// next page.
func (c *pager) offer(id string, item any) bool {
	if len(c.out.Items) == c.page.count {
		c.out.Next = encodeCursor(c.cKind, c.last)
		return false
	}
	c.out.Items = append(c.out.Items, item)
	c.last = id
	return true
}

func (c *pager) result() list {
	if c.out.Items == nil {
		c.out.Items = []any{}
	}
	return c.out
}

// agentFilter holds the filters of a user or client list.
type agentFilter struct {
	name, email, issuerID, subject string
	exact, all                     bool
}

func parseAgentFilter(q url.Values) (agentFilter, error) {
	f := agentFilter{name: q.Get("name"), email: q.Get("email"), issuerID: q.Get("issuerId"), subject: q.Get("subject"),
		exact: q.Get("exact") == "true", all: q.Get("include") == "all"}
	if f.subject != "" && f.issuerID == "" {
		return f, badRequest("The 'subject' filter '%s' can not be specified without the 'issuerId' filter", truncate(f.subject, 256))
	}
	return f, nil
}

func (f agentFilter) match(a *model.Agent) bool {
	name := a.DisplayName
	if a.Type == model.AgentUser {
		name = strings.TrimSpace(a.FirstName + " " + a.LastName)
	}
	if f.name != "" && !f.text(name, f.name) {
		return false
	}
	if f.email != "" && !f.text(a.PrimaryEmail, f.email) {
		return false
	}
	if f.issuerID == "" {
		return true
	}
	for _, id := range a.Identities {
		if id.IssuerID == f.issuerID && (f.subject == "" || id.Subject == f.subject) {
			return true
		}
	}
	return false
}

// text matches case-insensitively: the whole value with exact, else a
// substring.
func (f agentFilter) text(value, want string) bool {
	if f.exact {
		return strings.EqualFold(value, want)
	}
	return strings.Contains(strings.ToLower(value), strings.ToLower(want))
}

func (s *Server) listAgents(k kind, c *call) (any, error) {
	q := c.r.URL.Query()
	p, err := parsePage(q, cursorAgents)
	if err != nil {
		return nil, err
	}
	f, err := parseAgentFilter(q)
	if err != nil {
		return nil, err
	}
	col := &pager{page: p, cKind: cursorAgents}
	snap := s.eng.Snapshot()
	snap.Agents(c.acc, p.after, func(a *model.Agent) bool {
		if a.Type != k.typ || !f.match(a) {
			return true
		}
		if !f.all {
			return col.offer(a.ID, a.Wire(false))
		}
		whole := *a
		whole.Grants = snap.Grants(a.ID)
		return col.offer(a.ID, whole.Wire(true))
	})
	return col.result(), nil
}

func (s *Server) listIssuers(c *call) (any, error) {
	p, err := parsePage(c.r.URL.Query(), cursorIssuers)
	if err != nil {
		return nil, err
	}
	// name filters on displayName, a substring without case (exact=true:
	// the whole name), as the user list's name filter does; paging moves
	// over the matching issuers only.
	f := agentFilter{name: c.r.URL.Query().Get("name"), exact: c.r.URL.Query().Get("exact") == "true"}
	col := &pager{page: p, cKind: cursorIssuers}
	s.eng.Snapshot().Issuers(c.acc, p.after, func(row *state.IssuerRow) bool {
		if f.name != "" && !f.text(row.Issuer.DisplayName, f.name) {
			return true
		}
		return col.offer(row.ID, row.Issuer)
	})
	return col.result(), nil
}
