// etcdput - the load and failover probe tests/bench/stage5.sh runs against
// etcd 3.4, modelled on etcd's own `tools/benchmark put` (random keys and
// values of fixed sizes, closed-loop clients, one latency sample per put) and
// written for this project. Built offline in GOPATH mode against Debian's
// golang-etcd-server-dev (GO111MODULE=off GOPATH=/usr/share/gocode).
//
//	etcdput leader -endpoints A,B,C
//	    Prints the 0-based index of the endpoint that is the leader; exits 1
//	    unless every endpoint answers and all name the same leader.
//	etcdput put -endpoint A -clients C -total N -key-size 8 -val-size 256
//	    N puts over C clients, each with its own client (its own gRPC
//	    connection, as redis-benchmark opens one TCP connection per client),
//	    each waiting for its reply before the next. Prints "ops/s p50_ms p99_ms".
//	etcdput failover -endpoints A,B,C -pids P1,P2,P3
//	    Finds the leader, writes through a client given every endpoint, kills
//	    the leader's process (SIGKILL), then starts a put every 5 ms through
//	    that client until one is acknowledged. Prints the milliseconds from
//	    the kill to that reply.
//
// Percentiles are nearest-rank, as in raft_bench.c. Any failed put in `put`
// ends the program with status 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.etcd.io/etcd/clientv3"
)

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "etcdput: "+format+"\n", args...)
	os.Exit(1)
}

func newClient(endpoints []string) *clientv3.Client {
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		die("cannot create a client for %v: %v", endpoints, err)
	}
	return c
}

func letters(r *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte('a' + r.Intn(26))
	}
}

// nearestRank: the smallest sample with at least pct% of them at or below it.
func nearestRank(sorted []time.Duration, pct int) time.Duration {
	r := (len(sorted)*pct + 99) / 100
	if r < 1 {
		r = 1
	}
	return sorted[r-1]
}

// leaderIndex asks every endpoint for its status; -1 unless all answer and
// agree on one leader that is among them.
func leaderIndex(endpoints []string) (int, error) {
	c := newClient(endpoints)
	defer c.Close()
	found, leaderID := -1, uint64(0)
	for i, ep := range endpoints {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		st, err := c.Status(ctx, ep)
		cancel()
		if err != nil {
			return -1, fmt.Errorf("%s: %v", ep, err)
		}
		if st.Leader == 0 || (leaderID != 0 && st.Leader != leaderID) {
			return -1, fmt.Errorf("%s: no agreed leader (says %x)", ep, st.Leader)
		}
		leaderID = st.Leader
		if st.Header.MemberId == st.Leader {
			found = i
		}
	}
	if found < 0 {
		return -1, errors.New("the leader is not among the endpoints")
	}
	return found, nil
}

func cmdLeader(args []string) {
	fs := flag.NewFlagSet("leader", flag.ExitOnError)
	eps := fs.String("endpoints", "", "comma-separated client URLs")
	fs.Parse(args)
	i, err := leaderIndex(strings.Split(*eps, ","))
	if err != nil {
		die("%v", err)
	}
	fmt.Println(i)
}

func cmdPut(args []string) {
	fs := flag.NewFlagSet("put", flag.ExitOnError)
	ep := fs.String("endpoint", "", "the client URL to send every put to")
	clients := fs.Int("clients", 1, "concurrent clients, one connection each")
	total := fs.Int("total", 10000, "puts in all")
	keySize := fs.Int("key-size", 8, "key length (random letters)")
	valSize := fs.Int("val-size", 256, "value length (random letters)")
	fs.Parse(args)
	if *clients < 1 || *total < 1 || *keySize < 1 || *valSize < 1 {
		die("clients, total, key-size and val-size must be positive")
	}
	cs := make([]*clientv3.Client, *clients)
	for i := range cs {
		cs[i] = newClient([]string{*ep})
		defer cs[i].Close()
	}
	lat := make([]time.Duration, *total)
	var next int64 = -1
	var failed int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	seed := time.Now().UnixNano()
	start := time.Now()
	for i := range cs {
		wg.Add(1)
		go func(c *clientv3.Client, r *rand.Rand) {
			defer wg.Done()
			key, val := make([]byte, *keySize), make([]byte, *valSize)
			letters(r, val)
			for {
				t := atomic.AddInt64(&next, 1)
				if t >= int64(*total) {
					return
				}
				letters(r, key)
				st := time.Now()
				_, err := c.Put(context.Background(), string(key), string(val))
				lat[t] = time.Since(st)
				if err != nil {
					atomic.AddInt64(&failed, 1)
					firstErr.Store(err.Error())
				}
			}
		}(cs[i], rand.New(rand.NewSource(seed+int64(i))))
	}
	wg.Wait()
	elapsed := time.Since(start)
	if failed > 0 {
		die("%d of %d puts failed, first: %v", failed, *total, firstErr.Load())
	}
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	fmt.Printf("%.2f %.3f %.3f\n", float64(*total)/elapsed.Seconds(), ms(nearestRank(lat, 50)), ms(nearestRank(lat, 99)))
}

func cmdFailover(args []string) {
	fs := flag.NewFlagSet("failover", flag.ExitOnError)
	eps := fs.String("endpoints", "", "comma-separated client URLs")
	pidList := fs.String("pids", "", "the process id of each endpoint's server, same order")
	fs.Parse(args)
	endpoints := strings.Split(*eps, ",")
	var pids []int
	for _, s := range strings.Split(*pidList, ",") {
		p, err := strconv.Atoi(s)
		if err != nil {
			die("bad pid %q", s)
		}
		pids = append(pids, p)
	}
	if len(pids) != len(endpoints) {
		die("-endpoints and -pids differ in length")
	}
	leader, err := leaderIndex(endpoints)
	if err != nil {
		die("%v", err)
	}
	// One client over every endpoint, the way an application would use etcd.
	c := newClient(endpoints)
	defer c.Close()
	for i := 0; i < 20; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.Put(ctx, "failover:warm", strconv.Itoa(i))
		cancel()
		if err != nil {
			die("the cluster does not take writes before the kill: %v", err)
		}
	}
	// A put that reaches a follower which still believes in the dead leader
	// is forwarded to it and lost, and the server holds the request until
	// the client's deadline (etcd 3.4, etcdserver/v3_server.go): a probe
	// that waited for each attempt in turn would measure its own timeout.
	// So a fresh attempt starts every 5 ms, each with a long deadline, and
	// the first acknowledged one ends the measurement.
	ctx, cancelAll := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancelAll()
	first := make(chan time.Duration, 1)
	t0 := time.Now()
	if err := syscall.Kill(pids[leader], syscall.SIGKILL); err != nil {
		die("cannot kill the leader (pid %d): %v", pids[leader], err)
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for attempt := 0; ; attempt++ {
		go func(n int) {
			actx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if _, err := c.Put(actx, "failover:probe", strconv.Itoa(n)); err == nil {
				select {
				case first <- time.Since(t0):
				default: // a later one; the first is in
				}
			}
		}(attempt)
		select {
		case d := <-first:
			fmt.Printf("%.1f\n", float64(d.Microseconds())/1000)
			return
		case <-ctx.Done():
			die("no put acknowledged within 60 s of the kill")
		case <-tick.C:
		}
	}
}

func main() {
	if len(os.Args) < 2 {
		die("usage: etcdput leader|put|failover [flags] (see the comment at the top of main.go)")
	}
	switch os.Args[1] {
	case "leader":
		cmdLeader(os.Args[2:])
	case "put":
		cmdPut(os.Args[2:])
	case "failover":
		cmdFailover(os.Args[2:])
	default:
		die("unknown command %q", os.Args[1])
	}
}
