// Command fhirbench measures a running fhirbox server under a closed-loop load and
// compares it with its ceiling: the same requests as bare SQL statements sent straight
// to the server's database at the same concurrency, which is what fhirbox would reach
// if everything it adds to the database cost nothing.
//
//	fhirbench -db postgres://… -load 1000 -scenario read
//	fhirbench -db sqlite:./data/fhirbox.db -load 1000 -scenario read
//
// -db names the database as FHIRBOX_DATABASE_URL does: a PostgreSQL URL, or the SQLite
// file of the running server, which fhirbench opens beside it (fhirbox keeps other
// fhirbox processes off the file, not other readers and writers).
//
// It loads patients derived from the Synthea sample through the HTTP API when asked
// (-load), runs the scenario for -warmup then -d against the server while sampling its
// resident memory from /metrics every second, runs the ceiling likewise, and prints
// human-readable lines followed by one JSON object as the last line. It exits with
// status 1 when more than 1% of the requests failed, 2 when it could not run.
//
// The OAuth scenarios measure the token endpoint and bearer authentication:
//
//	token-client-credentials  POST /auth/token, client_credentials, opaque tokens;
//	                          ceiling: one INSERT of the Session a token is recorded in
//	token-jwt                 the same with JWTs; ceiling: RS256 signing in-process
//	token-password            the password grant; ceiling: bcrypt in-process (cost 10)
//	read-bearer-opaque        read with an opaque bearer token; ceiling: read's SQL
//	read-bearer-jwt           read with a JWT bearer token; ceiling: read's SQL
//	introspect                POST /auth/introspect of an opaque client_credentials token
//	                          by its own client; ceiling: a point read of a Session row
//
// They first write, through the admin API and only when missing or different, the
// Clients fhirbench-cc (opaque), fhirbench-jwt and fhirbench-pw, the User
// fhirbench-user and the AccessPolicy fhirbench-read that lets them GET. Every token
// issued is a Session resource the server keeps; the run says how many it made. The
// in-process ceilings are measured without -db as well.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fhirbox/fhirbox/pkg/app"
)

// maxErrorRate is the share of failed requests above which a run fails.
const maxErrorRate = 0.01

type config struct {
	url, user, secret, db string
	scenario              string
	conc                  int
	dur, warmup           time.Duration
	load, obsPP           int
	data                  string
	client                string
	rounds                int
	seed                  uint64
}

// Output is the JSON line. The pointers are null when not measured: without -db there
// is no ceiling (but for the in-process ones, see CeilingNeedsDB), without a readable
// /metrics no RSS.
type Output struct {
	Scenario    string   `json:"scenario"`
	RPS         float64  `json:"rps"`
	P50ms       float64  `json:"p50_ms"`
	P99ms       float64  `json:"p99_ms"`
	CeilingRPS  *float64 `json:"ceiling_rps"`
	Ratio       *float64 `json:"ratio"`
	Errors      int      `json:"errors"`
	RSSMB       *float64 `json:"rss_mb"`
	Concurrency int      `json:"concurrency"`
	DurationS   float64  `json:"duration_s"`
	Patients    int      `json:"patients"`
	// Backend is the database the ceiling ran on (postgres or sqlite); empty without -db.
	Backend string `json:"backend,omitempty"`
	// Client is fhirbench's HTTP client (-client).
	Client string `json:"client"`
	// Rounds is how many turns fhirbox and the ceiling took (-rounds).
	Rounds int `json:"rounds"`
}

func main() { os.Exit(run()) }

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func parseFlags() config {
	var c config
	flag.StringVar(&c.url, "url", "http://127.0.0.1:8080", "fhirbox base URL")
	flag.StringVar(&c.user, "user", envOr("FHIRBOX_ADMIN_CLIENT_ID", "admin"), "Basic auth user (env FHIRBOX_ADMIN_CLIENT_ID)")
	flag.StringVar(&c.secret, "secret", envOr("FHIRBOX_ADMIN_SECRET", "secret"), "Basic auth secret (env FHIRBOX_ADMIN_SECRET)")
	flag.StringVar(&c.db, "db", os.Getenv("FHIRBOX_DATABASE_URL"), "the server's database, for the ceiling: postgres://… or sqlite:<path> (env FHIRBOX_DATABASE_URL); without it only the in-process ceilings (token-jwt, token-password) are measured")
	flag.StringVar(&c.scenario, "scenario", "read", strings.Join(Scenarios, " | ")+
		"\n(token-* and read-bearer-* first write the Clients fhirbench-cc, fhirbench-jwt, fhirbench-pw, the User fhirbench-user and the AccessPolicy fhirbench-read through the admin API)")
	flag.IntVar(&c.conc, "c", 16, "concurrency: closed-loop workers, and connections of the ceiling's pool")
	flag.DurationVar(&c.dur, "d", 10*time.Second, "measured duration")
	flag.DurationVar(&c.warmup, "warmup", 2*time.Second, "unmeasured run before each measurement")
	flag.IntVar(&c.load, "load", 0, "load this many derived patients first (idempotent); 0 uses the patients in the database (needs -db)")
	flag.IntVar(&c.obsPP, "observations-per-patient", 0, "observations loaded with each patient (search-observation, -chain, -has, -observation-patient and -include need some)")
	flag.StringVar(&c.data, "data", "", "Synthea data directory, NDJSON files gzipped or not (default: $FHIRBOX_SYNTHEA, else the repository's testdata/synthea)")
	flag.Uint64Var(&c.seed, "seed", 1, "seed of the derived data and of the request choices")
	flag.IntVar(&c.rounds, "rounds", 5, "turns fhirbox and the ceiling take, each measured for -d/rounds per turn")
	flag.StringVar(&c.client, "client", "wire", "HTTP client: wire (fhirbench's own HTTP/1.1 client, a connection per worker, plain http:// only) or net/http (Go's Transport, which costs the shared cores more CPU per request)")
	flag.Parse()
	return c
}

func run() int {
	c := parseFlags()
	fail := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "fhirbench: "+format+"\n", a...)
		return 2
	}
	if !slices.Contains(Scenarios, c.scenario) {
		return fail("unknown -scenario %q: one of %s", c.scenario, strings.Join(Scenarios, ", "))
	}
	if c.conc < 1 || c.dur <= 0 || c.rounds < 1 || c.warmup < 0 || c.load < 0 || c.obsPP < 0 {
		return fail("-c, -d and -rounds must be positive, -warmup, -load and -observations-per-patient not negative")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	dir, err := FindDataDir(c.data)
	if err != nil {
		return fail("%v", err)
	}
	src, err := LoadSource(dir)
	if err != nil {
		return fail("reading %s: %v", dir, err)
	}
	der := NewDeriver(src, c.seed)
	api, err := NewAPI(c.url, c.user, c.secret, c.conc, c.client)
	if err != nil {
		return fail("-client: %v", err)
	}

	var db *DB
	if c.db != "" {
		// One connection per worker, all opened before the measurement.
		if db, err = OpenDB(ctx, c.db, c.conc); err != nil {
			return fail("-db: %v", err)
		}
		defer db.Close()
	} else if CeilingNeedsDB(c.scenario) {
		fmt.Fprintln(os.Stderr, "fhirbench: no -db: the ceiling is not measured")
	}

	fmt.Printf("scenario     %s, %d workers, %s after %s warm-up, seed %d\n", c.scenario, c.conc, c.dur, c.warmup, c.seed)
	fmt.Printf("server       %s (client %s)\n", c.url, c.client)
	fmt.Printf("data         %s (%d patients, %d observations)\n", dir, len(src.Patients), len(src.Observations))

	var patients []PatientInfo
	switch {
	case c.load > 0:
		l := &Loader{API: api, Der: der, DB: db, Conc: c.conc, ObsPP: c.obsPP}
		if patients, err = l.Load(ctx, c.load); err != nil {
			return fail("load: %v", err)
		}
	case db != nil:
		if patients, err = PopulationFromDB(ctx, db); err != nil {
			return fail("reading the patients in the database: %v", err)
		}
	default:
		return fail("-load 0 takes the patients from the database: give -db, or -load N")
	}
	if db != nil {
		var np, no int
		if err := db.QueryRow(ctx, `SELECT count(*) FILTER (WHERE resource_type = 'Patient'),
  count(*) FILTER (WHERE resource_type = 'Observation') FROM resource WHERE NOT deleted`).Scan(&np, &no); err == nil {
			fmt.Printf("database     %s, %d patients, %d observations\n", db.Backend, np, no)
			// Measure the database as autovacuum leaves it on a server that has been
			// running: statistics for the planner, and a visibility map that lets
			// index-only scans skip the heap. A fresh load may have had neither yet.
			// SQLite has no autovacuum to imitate, and fhirbox never runs ANALYZE on
			// its file: statistics would plan the server's statements as they are
			// never planned in use.
			if db.Backend == app.Postgres {
				if _, err := db.Exec(ctx, `VACUUM ANALYZE`); err != nil {
					fmt.Printf("warning      VACUUM ANALYZE: %v\n", err)
				}
			}
		}
	}
	w, err := NewWorkload(c.scenario, der, patients)
	if err != nil {
		return fail("%v", err)
	}
	w.Issuer = c.url
	w.Codes = int((c.warmup + c.dur).Seconds() * CodesPerSecond)
	fmt.Printf("sampling     %d patients (%d with observations)\n", len(patients), len(w.WithObs))
	if IsAuthScenario(c.scenario) {
		if err := w.SetupAuth(ctx, api); err != nil {
			return fail("setup: %v", err)
		}
		if w.Auth.CodesMade > 0 {
			fmt.Printf("codes        %d made through /auth/authorize in %s\n", w.Codes, w.Auth.CodesMade.Round(time.Millisecond))
			// Thousands of codes written just now: the statistics autovacuum would
			// gather before a server that issues codes all day reads one by its hash.
			// Without them PostgreSQL found each code by scanning every code's row.
			if db != nil {
				if _, err := db.Exec(ctx, "ANALYZE"); err != nil {
					return fail("ANALYZE: %v", err)
				}
			}
		}
		if len(w.Auth.Written) > 0 {
			fmt.Printf("setup        wrote %s\n", strings.Join(w.Auth.Written, ", "))
		} else {
			fmt.Printf("setup        clients, user and policy already in place\n")
		}
		if w.Auth.Bearer != "" {
			// One token serves the whole run: past its expiry every read would fail.
			if ttl := time.Duration(w.Auth.ExpiresIn) * time.Second; ttl < c.warmup+c.dur+time.Minute {
				return fail("the bearer token expires in %s, before the run ends: shorten -d", ttl)
			}
			fmt.Printf("token        %s, expires in %d s\n", w.Auth.sc.token.ClientID, w.Auth.ExpiresIn)
		}
	}
	probeRNG := rand.New(rand.NewPCG(c.seed, 0xfeed))
	search := strings.HasPrefix(c.scenario, "search-")
	if search {
		path, n, err := w.ProbeHTTP(ctx, api, probeRNG)
		if err != nil {
			return fail("probe %s: %v", path, err)
		}
		fmt.Printf("probe        %s → %d matches\n", path, n)
		if n == 0 {
			// Every request is drawn to match something: a database loaded before
			// the scenario's data existed (the narratives of search-text) would be
			// measured finding nothing, fast for the wrong reason.
			fmt.Printf("warning      the probe found nothing: was the database loaded by an older fhirbench? Reload it.\n")
		}
	}

	runner := Runner{Conc: c.conc, Seed: c.seed}
	op := w.HTTPOp(api)
	var sop Op
	if db != nil || !CeilingNeedsDB(c.scenario) {
		if search {
			n, err := w.ProbeSQL(ctx, db, probeRNG)
			if err != nil {
				return fail("ceiling probe: %v", err)
			}
			fmt.Printf("probe        ceiling → %d matches\n", n)
		}
		var cleanup func()
		if sop, cleanup, err = w.CeilingOp(ctx, db); err != nil {
			return fail("ceiling: %v", err)
		}
		defer cleanup()
		if d := ceilingDescriptions[c.scenario]; d != "" {
			fmt.Printf("ceiling is   %s\n", d)
		}
	}

	// fhirbox and its ceiling take turns, -rounds times each, so that both meet the
	// machine as it is during the same stretch of time: on a shared machine the speed
	// of either alone drifts by more than the difference being measured. fhirbox's
	// memory is sampled every second from before the warm-up to the end.
	rss := &rssSampler{api: api}
	rss.start(ctx)
	runner.Run(ctx, c.warmup, 1, op)
	if sop != nil {
		runner.Run(ctx, c.warmup, 3, sop)
	}
	var srv, ceil Result
	for i := range uint64(c.rounds) {
		srv = srv.Merge(runner.Run(ctx, c.dur/time.Duration(c.rounds), 2|i<<8, op))
		if sop != nil {
			ceil = ceil.Merge(runner.Run(ctx, c.dur/time.Duration(c.rounds), 4|i<<8, sop))
		}
	}
	rss.stop(ctx)
	if ctx.Err() != nil {
		return fail("interrupted")
	}
	report("fhirbox", srv)
	if w.Auth != nil {
		reportSessions(ctx, db, w.Auth)
	}

	out := Output{
		Scenario:    c.scenario,
		RPS:         round(srv.RPS(), 1),
		P50ms:       round(ms(srv.P50), 3),
		P99ms:       round(ms(srv.P99), 3),
		Errors:      srv.Errors,
		Concurrency: c.conc,
		DurationS:   c.dur.Seconds(),
		Patients:    len(patients),
		Client:      c.client,
		Rounds:      c.rounds,
	}
	if db != nil {
		out.Backend = db.Backend
	}
	failed := srv.ErrorRate() > maxErrorRate

	if sop != nil {
		report("ceiling", ceil)
		cr := round(ceil.RPS(), 1)
		out.CeilingRPS = &cr
		if ceil.RPS() > 0 {
			ratio := round(srv.RPS()/ceil.RPS(), 3)
			out.Ratio = &ratio
			fmt.Printf("ratio        %.3f of the ceiling\n", ratio)
		}
		if ceil.ErrorRate() > maxErrorRate {
			fmt.Printf("FAILED       ceiling errors %.2f%% > %.0f%%\n", 100*ceil.ErrorRate(), 100*maxErrorRate)
			failed = true
		}
	}

	if peak, ok := rss.result(); ok {
		mb := round(peak/(1<<20), 1)
		out.RSSMB = &mb
		fmt.Printf("server RSS   before %.1f MB, peak %.1f MB, after %.1f MB (%d samples)\n",
			rss.before/(1<<20), mb, rss.after/(1<<20), rss.samples)
	} else {
		fmt.Printf("server RSS   not measured: %v\n", rss.err)
	}
	if srv.ErrorRate() > maxErrorRate {
		fmt.Printf("FAILED       errors %.2f%% > %.0f%%\n", 100*srv.ErrorRate(), 100*maxErrorRate)
	}

	line, _ := json.Marshal(out)
	fmt.Println(string(line))
	if failed {
		return 1
	}
	return 0
}

// reportSessions says how many Session resources the run left on the server: every
// token issued is one, and none is closed.
func reportSessions(ctx context.Context, db *DB, a *AuthSetup) {
	n := a.Issued.Load()
	plural := "s"
	if n == 1 {
		plural = ""
	}
	line := fmt.Sprintf("sessions     %d Session resource%s created by this run (setup, warm-up and measurement), left on the server", n, plural)
	var live int
	if db != nil && db.QueryRow(ctx, `SELECT count(*) FROM resource WHERE resource_type = 'Session' AND NOT deleted`).Scan(&live) == nil {
		line += fmt.Sprintf("; %d live Sessions in the database", live)
	}
	fmt.Println(line)
}

// report prints a measured phase and its most frequent errors.
func report(name string, r Result) {
	fmt.Printf("%-12s %.1f req/s, p50 %.3f ms, p99 %.3f ms, %d ok, %d errors (%.2f%%) in %s\n",
		name, r.RPS(), ms(r.P50), ms(r.P99), r.OK, r.Errors, 100*r.ErrorRate(), r.Elapsed.Round(time.Millisecond))
	type kind struct {
		msg string
		n   int
	}
	var ks []kind
	for m, n := range r.ErrorKinds {
		ks = append(ks, kind{m, n})
	}
	slices.SortFunc(ks, func(a, b kind) int { return b.n - a.n })
	for i, k := range ks {
		if i == 5 {
			break
		}
		fmt.Printf("  error ×%d: %s\n", k.n, k.msg)
	}
}

// rssSampler keeps the largest server RSS seen on /metrics, sampled every second.
type rssSampler struct {
	api *API

	mu            sync.Mutex
	before, after float64
	peak          float64
	samples       int
	err           error

	done chan struct{}
	wg   sync.WaitGroup
}

func (s *rssSampler) sample(ctx context.Context) float64 {
	v, err := s.api.RSS(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.err = err
		return 0
	}
	s.samples++
	s.peak = max(s.peak, v)
	return v
}

func (s *rssSampler) start(ctx context.Context) {
	s.before = s.sample(ctx)
	s.done = make(chan struct{})
	s.wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				s.sample(ctx)
			case <-s.done:
				return
			case <-ctx.Done():
				return
			}
		}
	})
}

func (s *rssSampler) stop(ctx context.Context) {
	close(s.done)
	s.wg.Wait()
	s.after = s.sample(ctx)
}

// result is the peak RSS, if any sample succeeded.
func (s *rssSampler) result() (float64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak, s.samples > 0
}
