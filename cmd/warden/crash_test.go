//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestKillDuringWrites: warden serve (embedded etcd) is SIGKILLed while
// four clients create users, three times over. Every create it
// acknowledged with 200 is there after each restart, by id and in the
// list; creates that failed or got no answer may or may not be.
func TestKillDuringWrites(t *testing.T) {
	integration(t)
	dir := t.TempDir()
	root := newRootKey(t)
	w := startWarden(t, "warden", filepath.Join(dir, "data"), root.bootstrapFlags(t, dir)...)
	w.waitReady(t, 0)
	acc := w.servingAccount(t)
	rootTok := root.token(t, w.base)
	usersPath := "/v1/account/" + acc + "/user"

	var acked []string // ids of acknowledged creates
	var mu sync.Mutex
	var sent, failed atomic.Int64
	for round := range 3 {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for c := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					sent.Add(1)
					r, err := httpDo(http.MethodPost, w.url+usersPath, rootTok, map[string]any{"firstName": fmt.Sprintf("r%d-c%d-%d", round, c, i)})
					if err != nil || r.status != http.StatusOK {
						failed.Add(1)
						if err != nil {
							return // the process is gone
						}
						continue
					}
					var u struct{ ID string }
					if json.Unmarshal(r.body, &u) == nil && u.ID != "" {
						mu.Lock()
						acked = append(acked, u.ID)
						mu.Unlock()
					}
				}
			}()
		}
		time.Sleep(time.Second)
		w.kill()
		close(stop)
		wg.Wait()
		w.restart(t)
		w.waitReady(t, 0)

		// Every acknowledged create is there, by id and in the list.
		mu.Lock()
		ids := append([]string{}, acked...)
		mu.Unlock()
		listed := map[string]bool{}
		next := ""
		for {
			var page struct {
				Items []struct{ ID string }
				Next  string
			}
			path := usersPath + "?count=100"
			if next != "" {
				path += "&next=" + next
			}
			w.mustCall(t, http.MethodGet, path, rootTok, nil, &page)
			for _, u := range page.Items {
				listed[u.ID] = true
			}
			if page.Next == "" {
				break
			}
			next = page.Next
		}
		missing := 0
		for _, id := range ids {
			if !listed[id] {
				missing++
				t.Errorf("round %d: acknowledged user %s is not listed after the restart", round, id)
			}
		}
		for _, id := range ids[len(ids)-min(len(ids), 20):] {
			if r := w.call(t, http.MethodGet, usersPath+"/"+id, rootTok, nil); r.status != http.StatusOK {
				t.Errorf("round %d: GET of acknowledged user %s after the restart: %s", round, id, r)
			}
		}
		t.Logf("round %d: %d creates sent in all, %d acknowledged, %d failed or unanswered; after the kill and restart %d users listed, %d acknowledged ones missing",
			round, sent.Load(), len(ids), failed.Load(), len(listed), missing)
		if len(ids) == 0 {
			t.Fatalf("round %d: no create was acknowledged", round)
		}
	}
}
