package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"github.com/wardenauthz/warden/sidecar/checkapi"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenauthz/warden/admin"
	"github.com/wardenauthz/warden/sdk"
	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar"
	"github.com/wardenauthz/warden/sidecar/state"
	"github.com/wardenauthz/warden/sidecar/storage"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// etcdFor starts an embedded etcd for a benchmark and returns a client.
func etcdFor(b *testing.B) *clientv3.Client {
	b.Helper()
	emb, err := storage.StartEmbedded(storage.EmbeddedConfig{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	c, err := storage.Dial(emb.Endpoint())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close(); emb.Close() })
	return c
}

// node is one Warden node in the benchmark process: a replica of the store,
// the engine, and its HTTP APIs on loopback.
type node struct {
	eng *sidecar.Engine
	srv *httptest.Server
}

func startNode(b *testing.B, ctx context.Context, c *clientv3.Client, withAdmin bool) *node {
	b.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := state.New()
	rep := storage.NewReplica(storage.ReplicaConfig{Client: c, State: st, Logger: log})
	go rep.Run(ctx)
	for !rep.Status().Ready {
		time.Sleep(time.Millisecond)
	}
	eng, err := sidecar.New(st, sidecar.Config{DefaultAccount: account, Audiences: []string{audience}}, sidecar.Deps{Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	checks, err := checkapi.New(eng, checkapi.Config{}, log)
	if err != nil {
		b.Fatal(err)
	}
	checks.Register(mux)
	if withAdmin {
		adm, err := admin.New(eng, c, storage.NewLayout(""), admin.Config{BaseURL: audience}, admin.Deps{Logger: log})
		if err != nil {
			b.Fatal(err)
		}
		adm.Register(mux)
	}
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	return &node{eng: eng, srv: srv}
}

func call(b *testing.B, method, url, token, body string) (int, http.Header, []byte) {
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, out
}

// BenchmarkPropagation: a write acknowledged by one node (admin API) is
// visible to checks on another node (check API with minRevision). Each
// iteration moves a user's grant to a new resource through node A, then
// asks node B whether the user may act on the new resource at the
// revision A returned; the time from A's acknowledgement to B's allowing
// answer is the propagation latency, reported as p50 and p99.
func BenchmarkPropagation(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := etcdFor(b)
	pemText := pemOf(signer("ES256"))
	if _, err := admin.Bootstrap(ctx, c, storage.NewLayout(""), admin.Config{BaseURL: audience}, admin.Deps{},
		admin.BootstrapOptions{Account: account, DataDir: b.TempDir(), Issuer: issuer, Subject: "root", PublicKeyPEM: pemText, KeyID: "ES256"}); err != nil {
		b.Fatal(err)
	}
	a := startNode(b, ctx, c, true)
	bNode := startNode(b, ctx, c, false)
	rootTk := mintFor("root")
	status, _, body := call(b, "POST", a.srv.URL+"/v1/account/"+account+"/user", rootTk,
		fmt.Sprintf(`{"identities":[{"issuerId":%q,"subject":"%s"}]}`, issuer, subject(0)))
	if status != 200 {
		b.Fatalf("creating the user: %d %s", status, body)
	}
	var u struct{ ID string }
	_ = json.Unmarshal(body, &u)
	userTk := mintFor(subject(0))
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		res := resource(i)
		status, h, body := call(b, "PATCH", a.srv.URL+"/v1/account/"+account+"/user/"+u.ID, rootTk,
			fmt.Sprintf(`{"access":{"allow":[{"action":"function:*","resource":%q}]}}`, res))
		acked := time.Now()
		if status != 200 {
			b.Fatalf("write: %d %s", status, body)
		}
		rev := h.Get(admin.RevisionHeader)
		_, _, out := call(b, "POST", bNode.srv.URL+"/v1/check", userTk,
			fmt.Sprintf(`{"action":"function:get","resource":%q,"minRevision":%s}`, res, rev))
		lat = append(lat, time.Since(acked))
		var d model.Decision
		if err := json.Unmarshal(out, &d); err != nil || !d.Allow {
			b.Fatalf("check on node B at revision %s: %s", rev, out)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
}

func mintFor(sub string) string {
	t, err := sdk.MintToken(sdk.TokenSpec{PrivateKey: signer("ES256"), KeyID: "ES256", Issuer: issuer,
		Subject: sub, Audience: audience, Lifetime: 24 * time.Hour})
	if err != nil {
		panic(err)
	}
	return t
}

// fillStore writes agents users of grantsPerAgent grants each, with their
// identity keys, as the admin API would, plus the account, the issuer and
// the bootstrap record.
func fillStore(b *testing.B, c *clientv3.Client, agents int) {
	b.Helper()
	l := storage.NewLayout("")
	ctx := context.Background()
	var pks []model.PublicKey
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		pks = append(pks, model.PublicKey{KeyID: alg, PublicKey: pemOf(signer(alg))})
	}
	if _, err := c.Txn(ctx).Then(
		clientv3.OpPut(l.Bootstrap(), storage.Encode(storage.BootstrapRecord{Account: account, RootClient: "clt-0000000000000000"})),
		clientv3.OpPut(l.Account(account), storage.Encode(storage.AccountRecord{ID: account})),
		clientv3.OpPut(l.Issuer(account, issuer), storage.Encode(model.Issuer{ID: issuer, PublicKeys: pks})),
	).Commit(); err != nil {
		b.Fatal(err)
	}
	const perTxn = 60 // two keys per agent; etcd allows 128 operations per transaction
	const writers = 8
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for start := w * perTxn; start < agents; start += writers * perTxn {
				var ops []clientv3.Op
				for i := start; i < min(start+perTxn, agents); i++ {
					rec := &storage.AgentRecord{ID: agentID(i), Type: model.AgentUser, FirstName: "User", LastName: strconv.Itoa(i),
						Identities: []model.Identity{{IssuerID: issuer, Subject: subject(i)}}, Allow: grants(i)}
					ops = append(ops, clientv3.OpPut(l.Agent(account, rec.ID), storage.Encode(rec)),
						clientv3.OpPut(l.Identity(account, issuer, subject(i)), rec.ID))
				}
				if _, err := c.Txn(ctx).Then(ops...).Commit(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

// wardenBinary builds cmd/warden once per benchmark run.
var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func wardenBinary(b *testing.B) string {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "warden-bench-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "warden")
		// Built in the main module, with its own dependency versions, as
		// shipped (this module's may be newer).
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/warden")
		cmd.Dir = ".."
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		b.Fatal(buildErr)
	}
	return binPath
}

// BenchmarkColdStart100kAgents: a sidecar process starting on a store of
// 100k agents and 1M grants, timed from exec until /readyz answers 200,
// with its peak resident memory (VmHWM) read from /proc at that moment.
func BenchmarkColdStart100kAgents(b *testing.B) { benchColdStart(b, 100_000, 2*time.Minute) }

// BenchmarkColdStart1MAgents is the same on a store of 1M agents and 10M
// grants, a large fleet. Targets: ready within 30 s, peak RSS at most 4 GiB.
// Filling the store takes about half a minute and 2 GiB of disk.
func BenchmarkColdStart1MAgents(b *testing.B) {
	if testing.Short() {
		b.Skip("fills a store of a million agents")
	}
	benchColdStart(b, 1_000_000, 5*time.Minute)
}

// benchColdStart fills a store with agents agents of grantsPerAgent grants
// and starts a sidecar on it b.N times, each given at most limit to be
// ready; it reports the mean time to ready and the highest peak RSS.
func benchColdStart(b *testing.B, agents int, limit time.Duration) {
	c := etcdFor(b)
	start := time.Now()
	fillStore(b, c, agents)
	took := time.Since(start)
	endpoint := c.Endpoints()[0]
	st, err := c.Status(context.Background(), endpoint)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("filled the store with %d agents (%d grants) in %s; its database is %d MiB",
		agents, agents*grantsPerAgent, took.Round(time.Millisecond), st.DbSize>>20)
	bin := wardenBinary(b)
	var readyTotal time.Duration
	var peakRSS int64
	b.ResetTimer()
	for range b.N {
		ready, rss := coldStart(b, bin, endpoint, limit)
		readyTotal += ready
		peakRSS = max(peakRSS, rss)
	}
	b.StopTimer()
	b.ReportMetric(readyTotal.Seconds()/float64(b.N), "ready-s")
	b.ReportMetric(float64(peakRSS)/(1<<20), "peak-rss-MiB")
}

func coldStart(b *testing.B, bin, endpoint string, limit time.Duration) (time.Duration, int64) {
	b.Helper()
	cmd := exec.Command(bin, "serve", "--role", "sidecar", "--etcd-endpoints", endpoint, "--account", account,
		"--listen", "127.0.0.1:0", "--diag-listen", "127.0.0.1:0", "--audience", audience)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	// The process binds port 0 and says where in its "listening" line.
	var log strings.Builder
	lines := bufio.NewScanner(stderr)
	var diag string
	for diag == "" && lines.Scan() {
		log.WriteString(lines.Text() + "\n")
		var rec struct {
			Msg        string `json:"msg"`
			DiagListen string `json:"diag_listen"`
		}
		if json.Unmarshal(lines.Bytes(), &rec) == nil && rec.Msg == "listening" {
			diag = rec.DiagListen
		}
	}
	if diag == "" {
		b.Fatalf("the sidecar did not say where it listens:\n%s", log.String())
	}
	go func() { _, _ = io.Copy(io.Discard, stderr) }()
	for {
		if time.Since(start) > limit {
			b.Fatalf("not ready after %s:\n%s", limit, log.String())
		}
		resp, err := http.Get("http://" + diag + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start), vmHWM(b, cmd.Process.Pid)
}

// vmHWM reads a process's peak resident set size from /proc.
func vmHWM(b *testing.B, pid int) int64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmHWM in /proc status")
	return 0
}
