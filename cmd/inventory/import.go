package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"

	"github.com/shelfline/inventory/client"
	"github.com/shelfline/inventory/engine"
)

// runImport streams a CSV file of stock lines through the bulk routes. See
// the flag set's summary.
func runImport(ctx context.Context, args []string, stdout, stderr *os.File) error {
	fs := newFlagSet("import", "Import FILE.csv into a running server: a header row naming the columns store, sku, and\n"+
		"on_hand or delta (each line gives one of them), optional reason and state. on_hand lines go\n"+
		"through PUT /v1/items (created or set), delta lines through POST /v1/adjustments, a delta in a\n"+
		"state other than available through the item's adjust route. Lines go in chunks, up to --parallel\n"+
		"at once, a chunk never before an earlier one that names one of its items; each chunk carries\n"+
		"an Idempotency-Key made from its lines and their line numbers, so running the same file again\n"+
		"(after a crash, within the server's 24 h idempotency window, with the same --chunk) replays\n"+
		"what was applied and applies the rest, never a line twice. Refused lines and their problem go\n"+
		"to --report, in file order.\n"+
		"usage: inventory import FILE.csv [flags]", stderr, os.Getenv)
	url := fs.String("url", "INVENTORY_IMPORT_URL", "http://127.0.0.1:8080", "the server's base URL")
	token := fs.Secret("token", "INVENTORY_IMPORT_TOKEN", "", "an API token that may write the file's stores", always)
	chunk := fs.Int("chunk", "INVENTORY_IMPORT_CHUNK", 1000, "lines per request (1..1000)")
	parallel := fs.Int("parallel", "INVENTORY_IMPORT_PARALLEL", 4, "requests in flight (1..64)")
	report := fs.String("report", "INVENTORY_IMPORT_REPORT", "", "file for the refused lines (default FILE.refused.csv)")
	reason := fs.String("reason", "INVENTORY_IMPORT_REASON", "import", "reason of delta lines that give none")
	progress := fs.String("progress", "INVENTORY_IMPORT_PROGRESS", "auto", "auto (a bar on a terminal, else lines), bar, lines or off")
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if file == "" && fs.NArg() == 1 {
		file = fs.Arg(0)
	} else if fs.NArg() > 0 || file == "" {
		fmt.Fprintln(stderr, "usage: inventory import FILE.csv [flags]")
		return errUsage
	}
	if err := errors.Join(fs.errs...); err != nil {
		return err
	}
	if *chunk < 1 || *chunk > 1000 {
		return fmt.Errorf("--chunk must be 1..1000, got %d", *chunk)
	}
	if *parallel < 1 || *parallel > 64 {
		return fmt.Errorf("--parallel must be 1..64, got %d", *parallel)
	}
	if *token == "" {
		return errors.New("--token (INVENTORY_IMPORT_TOKEN) is required")
	}
	if *report == "" {
		*report = strings.TrimSuffix(file, ".csv") + ".refused.csv"
	}
	mode := *progress
	if mode == "auto" {
		mode = "lines"
		if isatty.IsTerminal(stderr.Fd()) {
			mode = "bar"
		}
	}
	switch mode {
	case "bar", "lines", "off":
	default:
		return fmt.Errorf("--progress must be auto, bar, lines or off, got %q", *progress)
	}
	// One kept connection per request in flight (the default keeps 2).
	hc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: *parallel, IdleConnTimeout: 90 * time.Second}}
	im := &importer{c: client.New(*url, *token, client.WithHTTPClient(hc)), chunk: *chunk, parallel: *parallel, reason: *reason, progress: mode, out: stderr}
	st, err := im.run(ctx, file, *report)
	fmt.Fprintf(stdout, "import %s: %d lines in %s (%.0f lines/s): %d applied, %d refused (%s)\n", file, st.lines,
		st.elapsed.Round(time.Millisecond), float64(st.lines)/max(st.elapsed.Seconds(), 1e-9), st.applied, st.refused, *report)
	return err
}

// importLine is one data line of the file.
type importLine struct {
	n          int // line number in the file, from 1 (the header)
	store, sku string
	onHand     *int64
	delta      *int64
	reason     string
	state      string
}

type lineKind int

const (
	kindSet lineKind = iota
	kindAdjust
	kindState
)

func (l *importLine) kind() lineKind {
	switch {
	case l.onHand != nil:
		return kindSet
	case l.state != "" && l.state != "available":
		return kindState
	}
	return kindAdjust
}

type importStats struct {
	lines, applied, refused int
	elapsed                 time.Duration
}

type importer struct {
	c        *client.Client
	chunk    int
	parallel int
	reason   string
	progress string
	out      io.Writer

	rep   *csv.Writer
	total int
	start time.Time
	bar   *progressbar.ProgressBar
	last  time.Time

	// Chunks run up to parallel at once and finish in any order; their
	// outcomes are written (report, counts, progress) in file order: mu
	// guards what follows.
	mu      sync.Mutex
	stats   importStats
	pending map[int]*segment // finished, not yet written, by sequence
	next    int              // the sequence to write next
	err     error            // the first failure in file order; writing stops there
}

// lineOutcome is what became of one line.
type lineOutcome struct {
	n          int
	store, sku string
	status     int // 0: refused before sending
	problem    string
	applied    bool
}

// segment is a run of lines in file order: a chunk, or a line refused
// before sending.
type segment struct {
	rows []lineOutcome
	err  error
}

// job is a chunk on its way: done is closed once it finished, sent or not.
type job struct {
	seq   int
	kind  lineKind
	lines []importLine
	deps  []*job
	done  chan struct{}
	// pre are lines refused before sending that lie among the chunk's
	// lines in the file: reported with them, in file order.
	pre []lineOutcome
}

// columns of the file, found by the header row.
type columns struct{ store, sku, onHand, delta, reason, state int }

func headerColumns(h []string) (columns, error) {
	c := columns{-1, -1, -1, -1, -1, -1}
	for i, name := range h {
		switch strings.ToLower(strings.TrimSpace(strings.TrimPrefix(name, "\ufeff"))) {
		case "store":
			c.store = i
		case "sku":
			c.sku = i
		case "on_hand":
			c.onHand = i
		case "delta":
			c.delta = i
		case "reason":
			c.reason = i
		case "state":
			c.state = i
		default:
			return c, fmt.Errorf("header: unknown column %q (store, sku, on_hand, delta, reason, state)", name)
		}
	}
	if c.store < 0 || c.sku < 0 || (c.onHand < 0 && c.delta < 0) {
		return c, errors.New("header: the file needs the columns store, sku, and on_hand or delta")
	}
	return c, nil
}

func (im *importer) run(ctx context.Context, file, report string) (st importStats, err error) {
	im.start = time.Now()
	im.last = im.start
	defer func() {
		im.stats.elapsed = time.Since(im.start)
		st = im.stats
	}()
	total, err := countLines(file)
	if err != nil {
		return im.stats, err
	}
	im.total = max(total-1, 0)
	f, err := os.Open(file)
	if err != nil {
		return im.stats, err
	}
	defer f.Close()
	rf, err := os.Create(report)
	if err != nil {
		return im.stats, err
	}
	defer rf.Close()
	im.rep = csv.NewWriter(rf)
	defer im.rep.Flush()
	if err := im.rep.Write([]string{"line", "store", "sku", "status", "problem"}); err != nil {
		return im.stats, err
	}
	if im.progress == "bar" {
		im.bar = progressbar.NewOptions(im.total, progressbar.OptionSetWriter(im.out), progressbar.OptionSetDescription("import"),
			progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("lines"),
			progressbar.OptionSetPredictTime(true), progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionFullWidth())
	}
	r := csv.NewReader(bufio.NewReaderSize(f, 1<<20))
	r.ReuseRecord = true
	r.FieldsPerRecord = -1
	h, err := r.Read()
	if err != nil {
		return im.stats, fmt.Errorf("%s: header: %w", file, err)
	}
	cols, err := headerColumns(h)
	if err != nil {
		return im.stats, fmt.Errorf("%s: %w", file, err)
	}
	ctx, cancelCause := context.WithCancelCause(ctx)
	defer cancelCause(nil)
	cancel := func() { cancelCause(nil) }
	im.pending = map[int]*segment{}
	var (
		seq    int
		wg     sync.WaitGroup
		sem    = make(chan struct{}, im.parallel)   // requests in flight
		window = make(chan struct{}, 4*im.parallel) // chunks read ahead, bounding memory
		dmu    sync.Mutex
		latest = map[engine.ItemRef]*job{} // per item, the last chunk naming it that is not done
	)
	// dispatch starts a chunk once every earlier chunk naming one of its
	// items is done: lines on one item apply in file order, chunks on
	// other items run alongside. The chunks themselves (and so their keys)
	// depend on the file and --chunk only, never on --parallel or timing.
	dispatch := func(kind lineKind, lines []importLine, pre []lineOutcome) {
		j := &job{seq: seq, kind: kind, lines: lines, pre: pre, done: make(chan struct{})}
		seq++
		dmu.Lock()
		seen := map[*job]bool{}
		for _, l := range lines {
			ref := engine.ItemRef{Store: l.store, SKU: l.sku}
			if d := latest[ref]; d != nil && d != j && !seen[d] {
				seen[d] = true
				j.deps = append(j.deps, d)
			}
			latest[ref] = j
		}
		dmu.Unlock()
		window <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-window }()
			defer close(j.done)
			var (
				rows []lineOutcome
				err  error
			)
			for _, d := range j.deps {
				select {
				case <-d.done:
				case <-ctx.Done():
				}
			}
			if err = context.Cause(ctx); err == nil {
				sem <- struct{}{}
				rows, err = im.send(ctx, j.kind, j.lines)
				<-sem
			}
			if err != nil {
				cancelCause(err) // stop here; a rerun resumes, replaying what was applied
			}
			dmu.Lock()
			for _, l := range j.lines {
				ref := engine.ItemRef{Store: l.store, SKU: l.sku}
				if latest[ref] == j {
					delete(latest, ref)
				}
			}
			dmu.Unlock()
			if len(j.pre) > 0 {
				rows = append(rows, j.pre...)
				sort.Slice(rows, func(a, b int) bool { return rows[a].n < rows[b].n })
			}
			im.finish(j.seq, &segment{rows: rows, err: err})
		}()
	}
	var (
		batch []importLine
		pre   []lineOutcome
	)
	kind := kindSet
	refuseNow := func(n int, store, sku, problem string) {
		o := lineOutcome{n: n, store: store, sku: sku, problem: problem}
		if len(batch) > 0 { // reported with the chunk it lies in
			pre = append(pre, o)
			return
		}
		im.finish(seq, &segment{rows: []lineOutcome{o}})
		seq++
	}
	flush := func() {
		if len(batch) > 0 {
			dispatch(kind, batch, pre)
			batch, pre = make([]importLine, 0, im.chunk), nil
		}
	}
	for n := 2; ctx.Err() == nil; n++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) && !errors.Is(pe.Err, csv.ErrFieldCount) {
				refuseNow(n, "", "", "unreadable CSV: "+pe.Err.Error())
				continue
			}
			cancel()
			wg.Wait()
			return im.stats, fmt.Errorf("%s: %w", file, err)
		}
		l, problem := parseImportLine(n, rec, cols, im.reason)
		if problem != "" {
			refuseNow(n, l.store, l.sku, problem)
			continue
		}
		if k := l.kind(); k != kind || len(batch) == im.chunk {
			flush()
			kind = k
		}
		batch = append(batch, l)
	}
	flush()
	wg.Wait()
	im.mu.Lock()
	err = im.err
	im.mu.Unlock()
	if err != nil {
		// The failure that stopped the import, rather than a chunk it
		// cancelled.
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
			err = cause
		}
		im.rep.Flush()
		return im.stats, err
	}
	im.report(true)
	if im.bar != nil {
		_ = im.bar.Finish()
		fmt.Fprintln(im.out)
	}
	im.rep.Flush()
	return im.stats, im.rep.Error()
}

// finish takes the outcome of segment seq and writes every finished
// segment that is next in file order: the report's rows, the counts, the
// progress. A failed segment stops the writing: what follows it is left
// to a rerun.
func (im *importer) finish(seq int, sg *segment) {
	im.mu.Lock()
	defer im.mu.Unlock()
	im.pending[seq] = sg
	for im.err == nil {
		sg, ok := im.pending[im.next]
		if !ok {
			return
		}
		delete(im.pending, im.next)
		im.next++
		for _, o := range sg.rows {
			im.stats.lines++
			if o.applied {
				im.stats.applied++
				continue
			}
			im.stats.refused++
			st := ""
			if o.status > 0 {
				st = strconv.Itoa(o.status)
			}
			_ = im.rep.Write([]string{strconv.Itoa(o.n), o.store, o.sku, st, o.problem})
		}
		im.tick(len(sg.rows))
		im.err = sg.err
	}
}

// parseImportLine reads one record; a non-empty problem refuses it (the
// checks are the engine's own, so a line the server would refuse as a
// whole never reaches it).
func parseImportLine(n int, rec []string, c columns, defReason string) (importLine, string) {
	get := func(i int) string {
		if i < 0 || i >= len(rec) {
			return ""
		}
		return strings.TrimSpace(rec[i])
	}
	l := importLine{n: n, store: get(c.store), sku: get(c.sku), reason: get(c.reason), state: strings.ToLower(get(c.state))}
	if err := engine.ValidateItemRef(l.store, l.sku); err != nil {
		return l, err.Error()
	}
	oh, d := get(c.onHand), get(c.delta)
	switch {
	case oh != "" && d != "":
		return l, "give on_hand or delta, not both"
	case oh != "":
		v, err := strconv.ParseInt(oh, 10, 64)
		if err != nil || v < 0 || v > engine.MaxOnHand {
			return l, fmt.Sprintf("on_hand must be an integer 0..%d", int64(engine.MaxOnHand))
		}
		if l.state != "" && l.state != "available" {
			return l, "a state applies to a delta, not to on_hand"
		}
		l.onHand = &v
	case d != "":
		v, err := strconv.ParseInt(d, 10, 64)
		if err != nil || v == 0 || v < -engine.MaxOnHand || v > engine.MaxOnHand {
			return l, "delta must be a non-zero integer"
		}
		l.delta = &v
		if l.reason == "" {
			l.reason = defReason
		}
	default:
		return l, "the line gives neither on_hand nor delta"
	}
	if len(l.reason) > engine.MaxReasonLen {
		return l, fmt.Sprintf("reason is longer than %d bytes", engine.MaxReasonLen)
	}
	return l, ""
}

// chunkKey is the Idempotency-Key of a chunk: a digest of its kind and of
// every line with its line number, so the same chunk of the same file gets
// the same key on every run, and equal lines elsewhere in the file do not.
func chunkKey(kind lineKind, lines []importLine) string {
	h := sha256.New()
	fmt.Fprintf(h, "inventory-import\x00%d", kind)
	for _, l := range lines {
		fmt.Fprintf(h, "\x00%d\x00%s\x00%s\x00%s\x00%s\x00%s\x00%s", l.n, l.store, l.sku, opt(l.onHand), opt(l.delta), l.reason, l.state)
	}
	return "import-" + hex.EncodeToString(h.Sum(nil)[:20])
}

func opt(p *int64) string {
	if p == nil {
		return "-"
	}
	return strconv.FormatInt(*p, 10)
}

var lineFieldRE = regexp.MustCompile(`^(?:items|updates)\[(\d+)\]`)

// send applies one chunk and returns each line's outcome. A call the
// server refuses as a whole because of one line (400 naming it) loses that
// line to the report and goes again without it, under the key of what is
// left.
func (im *importer) send(ctx context.Context, kind lineKind, lines []importLine) ([]lineOutcome, error) {
	if kind == kindState {
		rows := make([]lineOutcome, 0, len(lines))
		for _, l := range lines {
			_, err := im.c.Adjust(ctx, l.store, l.sku, client.Adjustment{Delta: *l.delta, Reason: l.reason, State: l.state},
				client.WithIdempotencyKey(chunkKey(kind, []importLine{l})))
			o, err := outcomeOf(l, err)
			if err != nil {
				return rows, err
			}
			rows = append(rows, o)
		}
		return rows, nil
	}
	var refused []lineOutcome // lines refused as a whole request's fault, by line number
	lines = append([]importLine(nil), lines...)
	for len(lines) > 0 {
		key := client.WithIdempotencyKey(chunkKey(kind, lines))
		var (
			res *client.BulkResult
			err error
		)
		if kind == kindSet {
			items := make([]client.BulkSetItem, len(lines))
			for i, l := range lines {
				items[i] = client.BulkSetItem{Store: l.store, SKU: l.sku, OnHand: *l.onHand}
			}
			res, err = im.c.SetItems(ctx, items, key)
		} else {
			ups := make([]client.BulkUpdate, len(lines))
			for i, l := range lines {
				ups[i] = client.BulkUpdate{Store: l.store, SKU: l.sku, Delta: *l.delta, Reason: l.reason}
			}
			res, err = im.c.BulkAdjust(ctx, ups, key)
		}
		if p := client.ProblemOf(err); p != nil && p.Status == 400 {
			if m := lineFieldRE.FindStringSubmatch(p.Field); m != nil {
				if i, _ := strconv.Atoi(m[1]); i < len(lines) {
					refused = append(refused, lineOutcome{n: lines[i].n, store: lines[i].store, sku: lines[i].sku, status: 400, problem: p.Detail})
					lines = append(lines[:i:i], lines[i+1:]...)
					continue
				}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("lines %d..%d: %w", lines[0].n, lines[len(lines)-1].n, err)
		}
		if len(res.Results) != len(lines) {
			return nil, fmt.Errorf("lines %d..%d: the server answered %d results for %d lines", lines[0].n, lines[len(lines)-1].n, len(res.Results), len(lines))
		}
		rows := make([]lineOutcome, 0, len(lines)+len(refused))
		for i, r := range res.Results {
			l := lines[i]
			if r.Status >= 300 {
				rows = append(rows, lineOutcome{n: l.n, store: l.store, sku: l.sku, status: r.Status, problem: http3xx(r)})
				continue
			}
			rows = append(rows, lineOutcome{n: l.n, store: l.store, sku: l.sku, applied: true})
		}
		rows = append(rows, refused...)
		sort.Slice(rows, func(a, b int) bool { return rows[a].n < rows[b].n })
		return rows, nil
	}
	sort.Slice(refused, func(a, b int) bool { return refused[a].n < refused[b].n })
	return refused, nil
}

func http3xx(r client.BulkLineResult) string {
	if r.Error != nil {
		if r.Error.Detail != "" {
			return r.Error.Detail
		}
		return r.Error.Title
	}
	return "refused"
}

// outcomeOf is the outcome of one line sent on its own: refused when the
// server said 4xx, the error returned otherwise.
func outcomeOf(l importLine, err error) (lineOutcome, error) {
	o := lineOutcome{n: l.n, store: l.store, sku: l.sku}
	if err == nil {
		o.applied = true
		return o, nil
	}
	if p := client.ProblemOf(err); p != nil && p.Status >= 400 && p.Status < 500 && p.Status != 401 && p.Status != 429 {
		o.status, o.problem = p.Status, p.Detail
		return o, nil
	}
	return o, fmt.Errorf("line %d: %w", l.n, err)
}

func (im *importer) tick(n int) {
	if im.bar != nil {
		_ = im.bar.Add(n)
		return
	}
	im.report(false)
}

// report prints a plain progress line at most every 2 s (and at the end).
func (im *importer) report(final bool) {
	if im.progress != "lines" {
		return
	}
	now := time.Now()
	if !final && now.Sub(im.last) < 2*time.Second {
		return
	}
	im.last = now
	el := now.Sub(im.start)
	rate := float64(im.stats.lines) / max(el.Seconds(), 1e-9)
	eta := "–"
	if rate > 0 && im.total > im.stats.lines {
		eta = (time.Duration(float64(im.total-im.stats.lines)/rate) * time.Second).Round(time.Second).String()
	}
	pct := 100.0
	if im.total > 0 {
		pct = 100 * float64(im.stats.lines) / float64(im.total)
	}
	fmt.Fprintf(im.out, "import: %d/%d lines (%.1f%%), %.0f lines/s, ETA %s, %d refused\n", im.stats.lines, im.total, pct, rate, eta, im.stats.refused)
}

// countLines counts the file's lines (for the progress's total and ETA).
func countLines(file string) (int, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	n, last := 0, byte('\n')
	for {
		k, err := f.Read(buf)
		n += bytes.Count(buf[:k], []byte{'\n'})
		if k > 0 {
			last = buf[k-1]
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	if last != '\n' {
		n++
	}
	return n, nil
}
