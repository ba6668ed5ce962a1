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
	"os"
	"regexp"
	"strconv"
	"strings"
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
		"state other than available through the item's adjust route. Lines go in order, in chunks; each\n"+
		"chunk carries an Idempotency-Key made from its lines and their line numbers, so running the\n"+
		"same file again (after a crash, within the server's 24 h idempotency window) replays what was\n"+
		"applied and applies the rest, never a line twice. Refused lines and their problem go to --report.\n"+
		"usage: inventory import FILE.csv [flags]", stderr, os.Getenv)
	url := fs.String("url", "INVENTORY_IMPORT_URL", "http://127.0.0.1:8080", "the server's base URL")
	token := fs.Secret("token", "INVENTORY_IMPORT_TOKEN", "", "an API token that may write the file's stores", always)
	chunk := fs.Int("chunk", "INVENTORY_IMPORT_CHUNK", 1000, "lines per request (1..1000)")
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
	im := &importer{c: client.New(*url, *token), chunk: *chunk, reason: *reason, progress: mode, out: stderr}
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
	reason   string
	progress string
	out      io.Writer

	rep   *csv.Writer
	stats importStats
	total int
	start time.Time
	bar   *progressbar.ProgressBar
	last  time.Time
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
	var batch []importLine
	kind := kindSet
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := im.send(ctx, kind, batch)
		batch = batch[:0]
		return err
	}
	for n := 2; ; n++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) && !errors.Is(pe.Err, csv.ErrFieldCount) {
				im.refuse(n, "", "", 0, "unreadable CSV: "+pe.Err.Error())
				continue
			}
			return im.stats, fmt.Errorf("%s: %w", file, err)
		}
		l, problem := parseImportLine(n, rec, cols, im.reason)
		if problem != "" {
			im.refuse(n, l.store, l.sku, 0, problem)
			continue
		}
		if k := l.kind(); k != kind || len(batch) == im.chunk {
			if err := flush(); err != nil {
				return im.stats, err
			}
			kind = k
		}
		batch = append(batch, l)
	}
	if err := flush(); err != nil {
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

// send applies one chunk and records each line's outcome. A call the
// server refuses as a whole because of one line (400 naming it) loses that
// line to the report and goes again without it, under the key of what is
// left.
func (im *importer) send(ctx context.Context, kind lineKind, lines []importLine) error {
	if kind == kindState {
		for _, l := range lines {
			_, err := im.c.Adjust(ctx, l.store, l.sku, client.Adjustment{Delta: *l.delta, Reason: l.reason, State: l.state},
				client.WithIdempotencyKey(chunkKey(kind, []importLine{l})))
			if err := im.outcome(l, err); err != nil {
				return err
			}
		}
		return nil
	}
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
					im.refuse(lines[i].n, lines[i].store, lines[i].sku, 400, p.Detail)
					lines = append(lines[:i:i], lines[i+1:]...)
					continue
				}
			}
		}
		if err != nil {
			return fmt.Errorf("lines %d..%d: %w", lines[0].n, lines[len(lines)-1].n, err)
		}
		if len(res.Results) != len(lines) {
			return fmt.Errorf("lines %d..%d: the server answered %d results for %d lines", lines[0].n, lines[len(lines)-1].n, len(res.Results), len(lines))
		}
		for i, r := range res.Results {
			if r.Status >= 300 {
				detail := http3xx(r)
				im.refuse(lines[i].n, lines[i].store, lines[i].sku, r.Status, detail)
				continue
			}
			im.applied(1)
		}
		return nil
	}
	return nil
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

// outcome records one line sent on its own: refused when the server said
// 4xx, the error returned otherwise.
func (im *importer) outcome(l importLine, err error) error {
	if err == nil {
		im.applied(1)
		return nil
	}
	if p := client.ProblemOf(err); p != nil && p.Status >= 400 && p.Status < 500 && p.Status != 401 && p.Status != 429 {
		im.refuse(l.n, l.store, l.sku, p.Status, p.Detail)
		return nil
	}
	return fmt.Errorf("line %d: %w", l.n, err)
}

func (im *importer) applied(n int) {
	im.stats.applied += n
	im.stats.lines += n
	im.tick(n)
}

func (im *importer) refuse(n int, store, sku string, status int, problem string) {
	im.stats.refused++
	im.stats.lines++
	st := ""
	if status > 0 {
		st = strconv.Itoa(status)
	}
	_ = im.rep.Write([]string{strconv.Itoa(n), store, sku, st, problem})
	im.tick(1)
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
