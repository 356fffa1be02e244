package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenauthz/warden/admin"
	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar/storage"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	// writesPerSecond is the admin node's write schedule in
	// BenchmarkPropagation3Members: steady, and well above what people
	// editing grants produce, so that replication, the sidecar's watch and
	// its checks overlap with the next write instead of each running on an
	// idle cluster.
	writesPerSecond = 200
	// propagationUsers is how many users the writes rotate over: one
	// user's writes are serialized (write, then check), so at the schedule
	// above a user is written every 80 ms and writes never contend on one
	// record.
	propagationUsers = 16
)

// BenchmarkPropagation3Members is BenchmarkPropagation in a deployment's
// shape: three etcd server processes (the etcd on PATH, 3.4 in CI) on
// loopback TCP with etcd's defaults (WAL fsync on, 100 ms heartbeat, 1 s
// election timeout), node A (admin API) dialed to member 1 only and node B
// (check API only) to member 2 only. Member 1 is made the raft leader, so
// that A's acknowledgement is given as soon as the leader applies the
// write and B learns of it only through replication to a follower and
// that follower's watch: the longest path from acknowledgement to
// allowing.
//
// A writes on a fixed schedule, writesPerSecond, whether or not earlier
// writes have finished (an open loop: a slow write does not postpone the
// next, as it would not in production). Each write moves one of
// propagationUsers users' grant to a new resource; after its
// acknowledgement B is asked, at the acknowledged revision, whether that
// user may act on the new resource. The time from the acknowledgement to
// B's allowing answer is reported as p50 and p99. b.N is the number of
// writes, so ns/op is about the schedule's interval, not a cost.
func BenchmarkPropagation3Members(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	endpoints := startEtcdCluster(b, 3)
	all := dialEtcd(b, endpoints...)
	makeLeader(b, ctx, all, endpoints, 0)
	ca, cb := dialEtcd(b, endpoints[0]), dialEtcd(b, endpoints[1])
	pemText := pemOf(signer("ES256"))
	if _, err := admin.Bootstrap(ctx, ca, storage.NewLayout(""), admin.Config{BaseURL: audience}, admin.Deps{},
		admin.BootstrapOptions{Account: account, DataDir: b.TempDir(), Issuer: issuer, Subject: "root", PublicKeyPEM: pemText, KeyID: "ES256"}); err != nil {
		b.Fatal(err)
	}
	a := startNode(b, ctx, ca, true)
	bNode := startNode(b, ctx, cb, false)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2 * propagationUsers}}
	p := &propagation{hc: hc, admin: a.srv.URL, sidecar: bNode.srv.URL, rootTk: mintFor("root")}
	users := make([]propagationUser, propagationUsers)
	for k := range users {
		status, _, body, err := p.do("POST", p.admin+"/v1/account/"+account+"/user", p.rootTk,
			fmt.Sprintf(`{"identities":[{"issuerId":%q,"subject":"%s"}]}`, issuer, subject(k)))
		if err != nil || status != 200 {
			b.Fatalf("creating user %d: %d %s %v", k, status, body, err)
		}
		var u struct{ ID string }
		_ = json.Unmarshal(body, &u)
		users[k].id, users[k].tk = u.ID, mintFor(subject(k))
	}
	// One unmeasured write per user: B has seen every user and both
	// nodes' connections are open before the clock starts.
	for k := range users {
		if _, err := p.write(&users[k], 1<<40+k); err != nil { // resources the run does not use
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, b.N)
	var (
		wg     sync.WaitGroup
		failed atomic.Bool
		errs   = make(chan error, 1)
	)
	interval := time.Second / writesPerSecond
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N && !failed.Load(); i++ {
		time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := p.write(&users[i%len(users)], i)
			if err != nil && failed.CompareAndSwap(false, true) {
				errs <- err
			}
			lat[i] = d
		}()
	}
	wg.Wait()
	b.StopTimer()
	if failed.Load() {
		b.Fatal(<-errs)
	}
	if lead := leaderOf(ctx, all, endpoints); lead != 0 {
		b.Logf("the etcd leader moved from member 1 to %d during the run", lead+1)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
}

// propagation is the two nodes' HTTP APIs as BenchmarkPropagation3Members
// calls them from several goroutines (so it returns errors where call
// would end the benchmark).
type propagation struct {
	hc             *http.Client
	admin, sidecar string
	rootTk         string
}

// propagationUser is a user whose writes are serialized: its grant is
// moved and then checked under mu, so that a later write to the same user
// cannot move the grant before the check of an earlier one.
type propagationUser struct {
	mu     sync.Mutex
	id, tk string
}

// write moves u's grant to resource(i) through the admin node and returns
// the time from its acknowledgement to the sidecar node allowing u on that
// resource at the acknowledged revision.
func (p *propagation) write(u *propagationUser, i int) (time.Duration, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	res := resource(i)
	status, h, body, err := p.do("PATCH", p.admin+"/v1/account/"+account+"/user/"+u.id, p.rootTk,
		fmt.Sprintf(`{"access":{"allow":[{"action":"function:*","resource":%q}]}}`, res))
	acked := time.Now()
	if err != nil || status != 200 {
		return 0, fmt.Errorf("write %d: %d %s %v", i, status, body, err)
	}
	rev := h.Get(admin.RevisionHeader)
	_, _, out, err := p.do("POST", p.sidecar+"/v1/check", u.tk,
		fmt.Sprintf(`{"action":"function:get","resource":%q,"minRevision":%s}`, res, rev))
	d := time.Since(acked)
	var dec model.Decision
	if err != nil || json.Unmarshal(out, &dec) != nil || !dec.Allow {
		return 0, fmt.Errorf("check %d on node B at revision %s: %s %v", i, rev, out, err)
	}
	return d, nil
}

func (p *propagation) do(method, url, token, body string) (int, http.Header, []byte, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := p.hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, out, err
}

// startEtcdCluster starts n etcd server processes on loopback, waits until
// every member is healthy, and returns their client URLs. The members are
// killed when the benchmark ends (not if it panics: a test timeout leaves
// them running). A missing etcd binary skips the benchmark.
func startEtcdCluster(b *testing.B, n int) []string {
	b.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		b.Skipf("etcd is not on PATH (apt-get install etcd-server): %v", err)
	}
	// Ports are taken from the system and freed for etcd to bind; another
	// process could take one in between, which fails the start visibly.
	ports := freePorts(b, 2*n)
	clientURLs := make([]string, n)
	peers := make([]string, n)
	for i := range n {
		clientURLs[i] = "http://127.0.0.1:" + strconv.Itoa(ports[2*i])
		peers[i] = fmt.Sprintf("m%d=http://127.0.0.1:%d", i, ports[2*i+1])
	}
	dir := b.TempDir()
	token := "warden-bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	logs := make([]string, n)
	exited := make([]chan struct{}, n)
	for i := range n {
		peerURL := strings.TrimPrefix(peers[i], fmt.Sprintf("m%d=", i))
		logs[i] = filepath.Join(dir, fmt.Sprintf("m%d.log", i))
		out, err := os.Create(logs[i])
		if err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command(bin,
			"--name", fmt.Sprintf("m%d", i),
			"--data-dir", filepath.Join(dir, fmt.Sprintf("m%d", i)),
			"--listen-client-urls", clientURLs[i], "--advertise-client-urls", clientURLs[i],
			"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
			"--initial-cluster", strings.Join(peers, ","),
			"--initial-cluster-state", "new", "--initial-cluster-token", token,
			"--logger", "zap", "--log-outputs", "stderr", "--log-level", "warn")
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			b.Fatalf("starting etcd: %v", err)
		}
		exited[i] = make(chan struct{})
		go func() { _ = cmd.Wait(); out.Close(); close(exited[i]) }()
		b.Cleanup(func() { _ = cmd.Process.Kill(); <-exited[i] })
	}
	deadline := time.Now().Add(30 * time.Second)
	for i, u := range clientURLs {
		for !etcdHealthy(u) {
			select {
			case <-exited[i]:
			default:
				if time.Now().Before(deadline) {
					time.Sleep(50 * time.Millisecond)
					continue
				}
			}
			log, _ := os.ReadFile(logs[i])
			b.Fatalf("etcd member %d at %s is not healthy (it exited or 30 s passed):\n%s", i+1, u, log)
		}
	}
	return clientURLs
}

func freePorts(b *testing.B, n int) []int {
	b.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close() // held until all are chosen, so none repeats
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// etcdHealthy says whether the member answers /health with a leader and
// no alarms.
func etcdHealthy(clientURL string) bool {
	resp, err := http.Get(clientURL + "/health")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var h struct{ Health string }
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&h) == nil && h.Health == "true"
}

// dialEtcd returns a client of the members at endpoints, closed when the
// benchmark ends; dialed to one member, it does not fail over to others.
func dialEtcd(b *testing.B, endpoints ...string) *clientv3.Client {
	b.Helper()
	c, err := storage.Dial(endpoints...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// leaderOf returns the index of the member that says it is the raft
// leader, or -1; c must reach every member.
func leaderOf(ctx context.Context, c *clientv3.Client, endpoints []string) int {
	for i, ep := range endpoints {
		st, err := c.Status(ctx, ep)
		if err == nil && st.Leader == st.Header.MemberId {
			return i
		}
	}
	return -1
}

// makeLeader transfers raft leadership to member want, asking the current
// leader (only the leader takes that request), and waits until it holds.
func makeLeader(b *testing.B, ctx context.Context, all *clientv3.Client, endpoints []string, want int) {
	b.Helper()
	st, err := all.Status(ctx, endpoints[want])
	if err != nil {
		b.Fatalf("status of etcd member %d: %v", want+1, err)
	}
	for range 50 {
		lead := leaderOf(ctx, all, endpoints)
		if lead == want {
			return
		}
		if lead >= 0 {
			c, err := storage.Dial(endpoints[lead])
			if err == nil {
				_, err = c.MoveLeader(ctx, st.Header.MemberId)
				c.Close()
			}
			if err != nil {
				b.Logf("moving the etcd leader to member %d: %v", want+1, err)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Fatalf("etcd member %d did not become the leader", want+1)
}
