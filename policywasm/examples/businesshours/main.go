//go:build wasip1

// Command businesshours is a hook that allows only on weekdays from 09:00
// to 17:00 UTC, by the decision context's clock ("now", unix seconds).
package main

import (
	"time"

	"github.com/wardenauthz/warden/policywasm/guest"
)

func init() {
	guest.Handle(func(in *guest.Input) guest.Output {
		secs, ok := in.Number("now")
		if !ok {
			return guest.Output{Reason: "the context carries no time"}
		}
		t := time.Unix(int64(secs), 0).UTC()
		if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
			return guest.Output{Reason: "outside business hours: " + wd.String()}
		}
		if h := t.Hour(); h < 9 || h >= 17 {
			return guest.Output{Reason: "outside business hours: " + t.Format("15:04") + " UTC"}
		}
		return guest.Output{Allow: true}
	})
}

func main() {}
