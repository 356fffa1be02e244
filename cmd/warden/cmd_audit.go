package main

import (
	"errors"
	"strconv"

	"github.com/wardenauthz/warden/sdk"
	"github.com/wardenauthz/warden/sdk/model"
)

// cmdAudit lists the account's audit log: the admin API calls made,
// allowed or refused, newest first.
func cmdAudit(e env, args []string) error {
	_, args, f, err := subcommand(e, args, `Usage:
  warden audit ls [--from T] [--to T] [--action A] [--resource R] [--issuer I [--subject S]]

Times are relative (-15m, -2h, -7d), ISO dates (2026-12-01T10:00:00Z) or Unix
milliseconds; --from defaults to -15m. An action has 2 or 3 segments, the last
of which may be '*' (function:*); a resource matches as a prefix.
`, "audit", map[string]string{"ls": "audit ls [--from T] [--to T] [--action A] [--resource R] [--issuer I [--subject S]]"})
	if err != nil {
		return err
	}
	var o sdk.AuditOptions
	f.StringVar(&o.From, "from", "", "the earliest `time` (default -15m)")
	f.StringVar(&o.To, "to", "", "the latest `time` (default now)")
	f.StringVar(&o.Action, "action", "", "only calls needing this `action` (2 or 3 segments; a trailing * matches any last one)")
	f.StringVar(&o.Resource, "resource", "", "only calls on resources under this `prefix`")
	f.StringVar(&o.IssuerID, "issuer", "", "only calls by tokens of this `issuer`")
	f.StringVar(&o.Subject, "subject", "", "only calls by this `subject` of --issuer")
	if err := f.parse(args, 0, 0); err != nil {
		return err
	}
	if o.Subject != "" && o.IssuerID == "" {
		return usageError{errors.New("--subject needs --issuer")}
	}
	s, err := openSession(f)
	if err != nil {
		return err
	}
	entries, err := listAll(func(next string) (sdk.Page[model.AuditEntry], error) {
		page := o
		page.Count, page.Next = 100, next
		return s.client.ListAudit(e.ctx, page)
	})
	if err != nil {
		return denied(err, s.who(), "audit:get", s.resource("audit"))
	}
	if f.json() {
		return printJSON(e.stdout, sdk.Page[model.AuditEntry]{Items: append([]model.AuditEntry{}, entries...)})
	}
	var rows [][]string
	for _, a := range entries {
		who := a.IssuerID + " " + a.Subject
		if a.IssuerID == "" {
			who = "(no valid token)"
		}
		rows = append(rows, []string{a.Timestamp, who, a.Action, a.Resource, strconv.FormatBool(a.Authorized)})
	}
	table(e.stdout, []string{"TIME", "CALLER", "ACTION", "RESOURCE", "AUTHORIZED"}, rows)
	return nil
}
