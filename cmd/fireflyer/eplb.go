package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/fireflyer-go/fireflyer/eplb"
	"github.com/fireflyer-go/fireflyer/eplb/eplbio"
	eplbsvg "github.com/fireflyer-go/fireflyer/eplb/svg"
)

func init() {
	register(command{name: "eplb", summary: "plan expert replication and placement from per-expert loads (EPLB)", run: runEPLB})
}

// eplbOutput is the --json object: the plan's keys plus "metrics".
type eplbOutput struct {
	*eplb.Plan
	Metrics *eplb.Metrics `json:"metrics"`
}

func runEPLB(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("eplb", "eplb --replicas P --gpus R [--groups G] [--nodes N] [--policy auto|hierarchical|global] [--no-duplicates] [--previous plan.json] [--json] [--svg out.svg] [FILE]\n\n"+
		"Reads per-expert loads [layers][experts] from FILE (or standard input when FILE\n"+
		"is absent or -) as JSON ([[...],[...]], one array per layer) or CSV (one layer\n"+
		"per line) and prints a replication and placement plan (upstream deepseek-ai/EPLB).", stderr)
	replicas := fs.Int("replicas", 0, "physical expert slots per layer, P (required; multiple of --gpus, >= experts)")
	groups := fs.Int("groups", 1, "expert groups, G (hierarchical: every group stays on one node)")
	nodes := fs.Int("nodes", 1, "server nodes, N")
	gpus := fs.Int("gpus", 0, "total GPUs, R (required)")
	policyName := fs.String("policy", "auto", "auto (hierarchical when groups % nodes == 0), hierarchical or global")
	noDup := fs.Bool("no-duplicates", false, "forbid two replicas of one expert on the same GPU")
	previous := fs.String("previous", "", "plan file written by --json; permute the new plan to move the fewest experts")
	asJSON := fs.Bool("json", false, "print one JSON object: phy2log, log2phy, logcnt, phyrank, metrics")
	svgPath := fs.String("svg", "", "also write per-GPU load bars (before/after) as SVG to this file ('-': to standard output instead of the table)")

	var files []string
	for {
		if code, ok := parseFlags(fs, args); !ok {
			return code
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if *svgPath == "-" && *asJSON {
		fmt.Fprintln(stderr, "fireflyer eplb: --svg - writes the picture to standard output; drop --json")
		return exitUsage
	}
	if err := checkOutFile("svg", *svgPath); err != nil {
		fmt.Fprintf(stderr, "fireflyer eplb: %v\n", err)
		return exitUsage
	}
	if len(files) > 1 {
		fmt.Fprintf(stderr, "fireflyer eplb: at most one input FILE, got %d (%s)\n", len(files), strings.Join(files, ", "))
		return exitUsage
	}
	policy, err := eplb.ParsePolicy(*policyName)
	if err != nil {
		fmt.Fprintf(stderr, "fireflyer eplb: --policy: %v\n", err)
		return exitUsage
	}
	for _, req := range []struct {
		name string
		v    int
	}{{"replicas", *replicas}, {"gpus", *gpus}} {
		if req.v <= 0 {
			fmt.Fprintf(stderr, "fireflyer eplb: --%s is required and must be positive (got %d)\n", req.name, req.v)
			return exitUsage
		}
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"groups", *groups}, {"nodes", *nodes}} {
		if f.v < 1 { // the library reads 0 as 1; on the command line it is a mistake
			fmt.Fprintf(stderr, "fireflyer eplb: --%s %d must be ≥ 1\n", f.name, f.v)
			return exitUsage
		}
	}

	if len(files) == 0 && isTerminal(stdin) {
		// Nothing is piped in: waiting on the terminal would look like a
		// hang.
		fmt.Fprintln(stderr, "fireflyer eplb: no FILE given and standard input is a terminal\nusage: fireflyer eplb [flags] FILE|-  (or pipe the weights JSON in: ... | fireflyer eplb [flags])")
		return exitUsage
	}
	in, name := stdin, "standard input"
	if len(files) == 1 && files[0] != "-" {
		f, err := os.Open(files[0])
		if err != nil {
			fmt.Fprintf(stderr, "fireflyer eplb: FILE: %v\n", err)
			return exitUsage
		}
		defer f.Close()
		in, name = f, files[0]
	}
	weight, err := eplbio.ParseWeights(in)
	if err != nil {
		fmt.Fprintf(stderr, "fireflyer eplb: %s: %v\n", name, err)
		return exitUsage
	}
	cfg := eplb.Config{Replicas: *replicas, Groups: *groups, Nodes: *nodes, GPUs: *gpus, Policy: policy, NoDuplicates: *noDup}
	if *previous != "" {
		f, err := os.Open(*previous)
		if err != nil {
			fmt.Fprintf(stderr, "fireflyer eplb: --previous: %v\n", err)
			return exitUsage
		}
		prev, err := eplbio.ReadPlan(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(stderr, "fireflyer eplb: --previous %s: %v\n", *previous, err)
			return exitUsage
		}
		cfg.Previous = prev
	}
	plan, err := eplb.Rebalance(weight, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "fireflyer eplb: %v\n", err)
		return exitUsage
	}
	metrics, err := eplb.Evaluate(weight, plan, cfg)
	if err != nil { // cannot happen for a plan Rebalance accepted
		fmt.Fprintf(stderr, "fireflyer eplb: metrics: %v\n", err)
		return exitFail
	}
	if *svgPath == "-" {
		if err := eplbsvg.Write(stdout, metrics); err != nil {
			fmt.Fprintf(stderr, "fireflyer eplb: --svg: %v\n", err)
			return exitFail
		}
		return exitOK
	}
	if *svgPath != "" {
		if err := writeSVGFile(*svgPath, metrics); err != nil {
			fmt.Fprintf(stderr, "fireflyer eplb: --svg: %v\n", err)
			return exitFail
		}
	}
	if *asJSON {
		data, err := json.Marshal(eplbOutput{Plan: plan, Metrics: metrics})
		if err != nil {
			fmt.Fprintf(stderr, "fireflyer eplb: %v\n", err)
			return exitFail
		}
		data = append(data, '\n')
		if _, err := stdout.Write(data); err != nil {
			return exitFail
		}
		return exitOK
	}
	if err := writeEPLBTable(stdout, weight, plan, metrics, cfg); err != nil {
		return exitFail
	}
	return exitOK
}

func writeSVGFile(path string, m *eplb.Metrics) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := eplbsvg.Write(f, m); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// usedPolicy names the policy Rebalance ran for cfg.
func usedPolicy(cfg eplb.Config) eplb.Policy {
	if cfg.Policy != eplb.Auto {
		return cfg.Policy
	}
	if cfg.Groups%cfg.Nodes == 0 {
		return eplb.Hierarchical
	}
	return eplb.Global
}

// fmtLoad prints a GPU load in plain decimal (121.5, 1048576), switching to
// exponent form outside [1e-4, 1e21) so that extreme loads stay short.
func fmtLoad(x float64) string {
	if a := math.Abs(x); a != 0 && (a < 1e-4 || a >= 1e21) {
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	return strconv.FormatFloat(x, 'f', -1, 64)
}

func fmtRatio(x float64) string { return strconv.FormatFloat(x, 'f', 3, 64) }

// writeEPLBTable prints, per layer, each GPU's node, load and experts, then
// the metrics.
func writeEPLBTable(w io.Writer, weight [][]float32, plan *eplb.Plan, m *eplb.Metrics, cfg eplb.Config) error {
	ew := &errWriter{w: w}
	L, E, P, R := plan.Layers(), plan.Experts(), plan.Replicas(), cfg.GPUs
	c := P / R
	fmt.Fprintf(ew, "policy %s: %d layers, %d experts, %d replicas, %d GPUs, %d nodes, %d groups\n",
		usedPolicy(cfg), L, E, P, R, cfg.Nodes, cfg.Groups)
	for l := range L {
		fmt.Fprintf(ew, "\nlayer %d\n", l)
		tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "gpu\tnode\tload\texperts")
		for g := range R {
			node := "-"
			if cfg.Nodes > 0 && R%cfg.Nodes == 0 {
				node = strconv.Itoa(g / (R / cfg.Nodes))
			}
			ids := make([]string, c)
			for k, e := range plan.Phy2Log[l][g*c : (g+1)*c] {
				ids[k] = strconv.Itoa(e)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", g, node, fmtLoad(m.GPULoad[l][g]), strings.Join(ids, " "))
		}
		tw.Flush()
	}
	fmt.Fprintln(ew, "\nmetrics")
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "layer\tmax/mean\tmean/max\tbefore max/mean")
	for l := range L {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", l, fmtRatio(m.Imbalance[l]), fmtRatio(m.Balancedness[l]), fmtRatio(m.BaselineImbalance[l]))
	}
	tw.Flush()
	fmt.Fprintf(ew, "max imbalance (max/mean): %s\n", fmtRatio(m.MaxImbalance))
	fmt.Fprintf(ew, "mean balancedness (mean/max): %s\n", fmtRatio(m.MeanBalancedness))
	fmt.Fprintf(ew, "duplicates on one GPU: %d\n", m.Duplicates)
	if m.SlotsChanged >= 0 {
		fmt.Fprintf(ew, "slots changed vs previous: %d of %d\n", m.SlotsChanged, L*P)
	}
	return ew.err
}

// errWriter remembers the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

// Write implements io.Writer, remembering the first error.
func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
