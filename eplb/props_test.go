package eplb

import (
	"math"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

// scenario is a random but valid Rebalance input.
type scenario struct {
	weight [][]float32
	cfg    Config
	hier   bool // the hierarchical algorithm runs
}

// drawWeights draws an L × E load matrix; small integer ranges make ties
// frequent, floats exercise float32 rounding.
func drawWeights(t *rapid.T, L, E int, label string) [][]float32 {
	kind := rapid.IntRange(0, 2).Draw(t, label+"Kind")
	w := make([][]float32, L)
	for l := range w {
		w[l] = make([]float32, E)
		for e := range w[l] {
			switch kind {
			case 0:
				w[l][e] = float32(rapid.IntRange(0, 5).Draw(t, label))
			case 1:
				w[l][e] = float32(rapid.IntRange(0, 1000).Draw(t, label))
			default:
				w[l][e] = rapid.Float32Range(0, 1000).Draw(t, label)
			}
		}
	}
	return w
}

func drawScenario(t *rapid.T) scenario {
	N := rapid.IntRange(1, 3).Draw(t, "nodes")
	gpn := rapid.IntRange(1, 3).Draw(t, "groupsPerNode")
	gs := rapid.IntRange(1, 4).Draw(t, "groupSize")
	m := rapid.IntRange(1, 4).Draw(t, "gpusPerNode")
	G, R := N*gpn, N*m
	E := G * gs
	ppgMin := (E + R - 1) / R
	ppg := rapid.IntRange(ppgMin, ppgMin+3).Draw(t, "slotsPerGPU")
	L := rapid.IntRange(1, 3).Draw(t, "layers")
	policy := rapid.SampledFrom([]Policy{Auto, Hierarchical, Global}).Draw(t, "policy")
	cfg := Config{Replicas: R * ppg, Groups: G, Nodes: N, GPUs: R, Policy: policy}
	return scenario{weight: drawWeights(t, L, E, "load"), cfg: cfg, hier: policy != Global}
}

// checkPlan asserts the invariants every plan must have.
func checkPlan(t fataler, s scenario, plan *Plan) {
	if err := ValidatePlan(plan); err != nil {
		t.Fatalf("invalid plan: %v", err)
	}
	L, E, P := len(s.weight), len(s.weight[0]), s.cfg.Replicas
	if plan.Layers() != L || plan.Experts() != E || plan.Replicas() != P {
		t.Fatalf("plan shape %d×%d×%d, want %d×%d×%d", plan.Layers(), plan.Experts(), plan.Replicas(), L, E, P)
	}
	// One K for the whole plan: the largest count.
	k := 0
	for _, row := range plan.LogCnt {
		k = max(k, slices.Max(row))
	}
	if got := len(plan.Log2Phy[0][0]); got != k {
		t.Fatalf("log2phy has %d columns, want max logcnt %d", got, k)
	}
	// (expert, rank) pairs are a bijection onto slots; ValidatePlan checked
	// log2phy against phy2log, here check Phy2Log[Log2Phy[e][k]] == e directly.
	for l := range L {
		for e, row := range plan.Log2Phy[l] {
			for r, slot := range row {
				if r < plan.LogCnt[l][e] {
					if plan.Phy2Log[l][slot] != e {
						t.Fatalf("layer %d: phy2log[log2phy[%d][%d]] = %d", l, e, r, plan.Phy2Log[l][slot])
					}
				} else if slot != -1 {
					t.Fatalf("layer %d: log2phy[%d][%d] = %d beyond logcnt", l, e, r, slot)
				}
			}
		}
	}
	if !s.hier {
		return
	}
	// Hierarchical: every group on one node; each node holds E/N distinct
	// experts and P/N slots.
	N, G := s.cfg.Nodes, s.cfg.Groups
	gs, ppn := E/G, P/N
	for l := range L {
		nodeOf := make([]int, E)
		for i := range nodeOf {
			nodeOf[i] = -1
		}
		for slot, e := range plan.Phy2Log[l] {
			n := slot / ppn
			if nodeOf[e] >= 0 && nodeOf[e] != n {
				t.Fatalf("layer %d: expert %d on nodes %d and %d", l, e, nodeOf[e], n)
			}
			nodeOf[e] = n
		}
		perNode := make([]int, N)
		for g := range G {
			for e := g * gs; e < (g+1)*gs; e++ {
				if nodeOf[e] != nodeOf[g*gs] {
					t.Fatalf("layer %d: group %d split over nodes %d and %d", l, g, nodeOf[g*gs], nodeOf[e])
				}
				perNode[nodeOf[e]]++
			}
		}
		for n, c := range perNode {
			if c != E/N {
				t.Fatalf("layer %d: node %d holds %d experts, want %d", l, n, c, E/N)
			}
		}
	}
}

var sharedPlanner Planner // reused across checks: scratch reuse must not leak state

func TestPropertiesRebalance(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := drawScenario(t)
		plan, err := Rebalance(s.weight, s.cfg)
		if err != nil {
			t.Fatalf("Rebalance(%+v): %v", s.cfg, err)
		}
		checkPlan(t, s, plan)

		// Deterministic, and a reused Planner and destination give the same plan.
		again, err := Rebalance(s.weight, s.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(plan, again); d != "" {
			t.Fatalf("not deterministic:\n%s", d)
		}
		reused := &Plan{}
		for range 2 {
			if err := sharedPlanner.RebalanceInto(reused, s.weight, s.cfg); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(plan, reused); d != "" {
				t.Fatalf("reused Planner differs:\n%s", d)
			}
		}

		// Scaling every load by 2^k leaves the plan unchanged (exact in
		// float32 for these magnitudes).
		k := rapid.IntRange(-20, 20).Draw(t, "scaleExp")
		f := float32(math.Ldexp(1, k))
		scaled := make([][]float32, len(s.weight))
		for l, row := range s.weight {
			scaled[l] = make([]float32, len(row))
			for e, x := range row {
				scaled[l][e] = x * f
			}
		}
		sp, err := Rebalance(scaled, s.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(plan, sp); d != "" {
			t.Fatalf("scaling by 2^%d changed the plan:\n%s", k, d)
		}
	})
}

func TestPropertiesBalancedPacking(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := rapid.IntRange(1, 5).Draw(t, "packs")
		c := rapid.IntRange(1, 5).Draw(t, "perPack")
		w := drawWeights(t, rapid.IntRange(1, 3).Draw(t, "rows"), m*c, "w")
		idx, rank, err := BalancedPacking(w, m)
		if err != nil {
			t.Fatal(err)
		}
		for x := range w {
			seen := make([]bool, m*c)
			for j := range w[x] {
				p, r := idx[x][j], rank[x][j]
				if p < 0 || p >= m || r < 0 || r >= c || seen[p*c+r] {
					t.Fatalf("row %d item %d: pack %d rank %d invalid or taken", x, j, p, r)
				}
				seen[p*c+r] = true
			}
		}
	})
}

// bruteMaxLoad returns min over count vectors (each ≥ 1, summing to slots)
// of max_j w_j / c_j, in float64.
func bruteMaxLoad(w []float32, slots int) float64 {
	best := math.Inf(1)
	cnt := make([]int, len(w))
	var rec func(j, left int)
	rec = func(j, left int) {
		if j == len(w)-1 {
			cnt[j] = left
			v := 0.0
			for i, x := range w {
				v = max(v, float64(x)/float64(cnt[i]))
			}
			best = min(best, v)
			return
		}
		for c := 1; c <= left-(len(w)-1-j); c++ {
			cnt[j] = c
			rec(j+1, left-c)
		}
	}
	rec(0, slots)
	return best
}

func TestPropertiesReplicationOptimal(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 5).Draw(t, "experts")
		slots := n + rapid.IntRange(0, 6).Draw(t, "redundant")
		w := make([]float32, n)
		for i := range w {
			w[i] = float32(rapid.IntRange(0, 50).Draw(t, "w"))
		}
		_, _, cnt, err := ReplicateExperts([][]float32{w}, slots)
		if err != nil {
			t.Fatal(err)
		}
		got, sum := 0.0, 0
		for i, x := range w {
			got = max(got, float64(x)/float64(cnt[0][i]))
			sum += cnt[0][i]
			if cnt[0][i] < 1 {
				t.Fatalf("expert %d has %d replicas", i, cnt[0][i])
			}
		}
		if sum != slots {
			t.Fatalf("counts sum to %d, want %d", sum, slots)
		}
		if want := bruteMaxLoad(w, slots); got != want {
			t.Fatalf("max load/count %v, brute-force optimum %v (counts %v)", got, want, cnt[0])
		}
	})
}

// gpuContents returns, per layer, the sorted list of each GPU's sorted
// (expert, rank) pairs, which a migration (a permutation of GPUs and slots)
// must preserve.
func gpuContents(p *Plan, gpus int) [][][2]int {
	c := p.Replicas() / gpus
	out := make([][][2]int, p.Layers())
	for l := range out {
		gs := make([][][2]int, gpus)
		for g := range gpus {
			for s := g * c; s < (g+1)*c; s++ {
				gs[g] = append(gs[g], [2]int{p.Phy2Log[l][s], p.PhyRank[l][s]})
			}
			slices.SortFunc(gs[g], cmpPair)
		}
		slices.SortFunc(gs, func(a, b [][2]int) int { return slices.CompareFunc(a, b, cmpPair) })
		for _, g := range gs {
			out[l] = append(out[l], g...)
		}
	}
	return out
}

func cmpPair(a, b [2]int) int {
	if a[0] != b[0] {
		return a[0] - b[0]
	}
	return a[1] - b[1]
}

func TestPropertiesNoDuplicates(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := drawScenario(t)
		r, err := s.cfg.resolve(len(s.weight), len(s.weight[0]))
		if err != nil {
			t.Fatal(err)
		}
		s.cfg.NoDuplicates = true
		nd, err := Rebalance(s.weight, s.cfg)
		if r.expertsPerNode() < r.slotsPerGPU() {
			if err == nil {
				t.Fatalf("infeasible no-duplicates accepted: %+v", s.cfg)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		checkPlan(t, s, nd)
		m, err := Evaluate(s.weight, nd, s.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if m.Duplicates != 0 {
			t.Fatalf("%d duplicates with NoDuplicates: %v", m.Duplicates, nd.Phy2Log)
		}
		s.cfg.NoDuplicates = false
		ref, err := Rebalance(s.weight, s.cfg)
		if err != nil {
			t.Fatal(err)
		}
		mr, err := Evaluate(s.weight, ref, s.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if mr.Duplicates == 0 {
			if d := cmp.Diff(ref, nd); d != "" {
				t.Fatalf("reference had no duplicates but NoDuplicates changed the plan:\n%s", d)
			}
		}
	})
}

// permuteGPUs returns p with nodes, GPUs inside nodes and slots inside GPUs
// shuffled at random (what migration may undo).
func permuteGPUs(t *rapid.T, p *Plan, nodes, gpus int) *Plan {
	c := p.Replicas() / gpus
	m := gpus / nodes
	out := &Plan{LogCnt: p.LogCnt}
	for l := range p.Layers() {
		nodePerm := rapid.Permutation(seq(nodes)).Draw(t, "nodePerm")
		log, rank := make([]int, p.Replicas()), make([]int, p.Replicas())
		for n := range nodes {
			gpuPerm := rapid.Permutation(seq(m)).Draw(t, "gpuPerm")
			for i := range m {
				slotPerm := rapid.Permutation(seq(c)).Draw(t, "slotPerm")
				src := (n*m + i) * c
				dst := (nodePerm[n]*m + gpuPerm[i]) * c
				for k := range c {
					log[dst+slotPerm[k]] = p.Phy2Log[l][src+k]
					rank[dst+slotPerm[k]] = p.PhyRank[l][src+k]
				}
			}
		}
		out.Phy2Log = append(out.Phy2Log, log)
		out.PhyRank = append(out.PhyRank, rank)
	}
	out.Log2Phy = reshape3(nil, p.Layers(), p.Experts(), len(p.Log2Phy[0][0]))
	fillLog2Phy(out)
	return out
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// bruteMoved returns the fewest slots that differ from prev over every
// permutation of nodes, GPUs inside nodes and slots inside GPUs of plan.
func bruteMoved(plan, prev []int, nodes, gpus, c int) int {
	m := gpus / nodes
	overlap := func(i, j int) int {
		a := slices.Clone(plan[i*c : (i+1)*c])
		n := 0
		for _, e := range prev[j*c : (j+1)*c] {
			if k := slices.Index(a, e); k >= 0 {
				a[k] = -1
				n++
			}
		}
		return n
	}
	best := -1
	for _, np := range perms(nodes) {
		total := 0
		for a, b := range np {
			bestNode := 0
			for _, gp := range perms(m) {
				v := 0
				for i, j := range gp {
					v += overlap(a*m+i, b*m+j)
				}
				bestNode = max(bestNode, v)
			}
			total += bestNode
		}
		best = max(best, total)
	}
	return len(plan) - best
}

func perms(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range perms(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := append(append(slices.Clone(p[:i]), n-1), p[i:]...)
			out = append(out, q)
		}
	}
	return out
}

func TestPropertiesMigration(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := drawScenario(t)
		fresh, err := Rebalance(s.weight, s.cfg)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := s.cfg.resolve(len(s.weight), len(s.weight[0]))

		// A shuffled copy of the same plan as Previous: nothing moves.
		shuffled := permuteGPUs(t, fresh, r.nodes, r.gpus)
		cfg := s.cfg
		cfg.Previous = shuffled
		same, err := Rebalance(s.weight, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if n := SlotsChanged(same, shuffled); n != 0 {
			t.Fatalf("re-planning a shuffled plan moved %d slots", n)
		}

		// A plan for other loads as Previous: a valid permutation of the
		// fresh plan that moves the fewest experts (brute force on small
		// shapes), never more than the fresh plan would.
		prev, err := Rebalance(drawWeights(t, len(s.weight), len(s.weight[0]), "prevLoad"), s.cfg)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Previous = prev
		mig, err := Rebalance(s.weight, cfg)
		if err != nil {
			t.Fatal(err)
		}
		checkPlan(t, s, mig)
		if d := cmp.Diff(fresh.LogCnt, mig.LogCnt); d != "" {
			t.Fatalf("migration changed logcnt:\n%s", d)
		}
		if d := cmp.Diff(gpuContents(fresh, r.gpus), gpuContents(mig, r.gpus)); d != "" {
			t.Fatalf("migration changed GPU contents:\n%s", d)
		}
		moved := SlotsChanged(mig, prev)
		if naive := SlotsChanged(fresh, prev); moved > naive {
			t.Fatalf("migration moved %d slots, the fresh plan %d", moved, naive)
		}
		m, err := Evaluate(s.weight, mig, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if m.SlotsChanged != moved {
			t.Fatalf("Metrics.SlotsChanged %d, counted %d", m.SlotsChanged, moved)
		}
		if r.gpusPerNode() <= 4 && r.nodes <= 3 {
			want := 0
			for l := range fresh.Layers() {
				want += bruteMoved(fresh.Phy2Log[l], prev.Phy2Log[l], r.nodes, r.gpus, r.slotsPerGPU())
			}
			if moved != want {
				t.Fatalf("migration moved %d slots, brute-force optimum %d", moved, want)
			}
		}
	})
}

// fataler is what checkPlan needs from *testing.T and *rapid.T.
type fataler interface {
	Fatalf(format string, args ...any)
}

// TestPropertiesReplicateLinearEqualsHeap checks that the linear-scan and
// heap forms of replication pick the same experts, with and without a cap.
func TestPropertiesReplicateLinearEqualsHeap(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 40).Draw(t, "experts")
		maxCnt := rapid.IntRange(0, 5).Draw(t, "maxCnt")
		if maxCnt == 1 {
			maxCnt = 0
		}
		limit := n + 3*linearPicks
		if maxCnt > 0 {
			limit = min(limit, n*maxCnt)
		}
		slots := rapid.IntRange(n, limit).Draw(t, "slots")
		w := drawWeights(t, 1, n, "w")[0]
		var a, b replicator
		pa, ra, ca := make([]int, slots), make([]int, slots), make([]int, n)
		pb, rb, cb := make([]int, slots), make([]int, slots), make([]int, n)
		a.replicateRow(w, slots, pa, ra, ca, maxCnt)
		b.linearRow(w, slots, pb, rb, cb, maxCnt)
		var h replicator
		ph, rh, ch := make([]int, slots), make([]int, slots), make([]int, n)
		h.heapRow(w, slots, ph, rh, ch, maxCnt)
		if !slices.Equal(pa, pb) || !slices.Equal(pb, ph) || !slices.Equal(rb, rh) || !slices.Equal(cb, ch) {
			t.Fatalf("replicateRow %v, linear %v, heap %v", pa, pb, ph)
		}
	})
}

// TestPropertiesSortDesc checks both forms of sortDesc against a stable
// descending sort.
func TestPropertiesSortDesc(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 3*radixMin).Draw(t, "n")
		w := drawWeights(t, 1, n, "w")[0]
		if rapid.Bool().Draw(t, "negZero") {
			w[rapid.IntRange(0, n-1).Draw(t, "at")] = float32(math.Copysign(0, -1))
		}
		want := seq(n)
		slices.SortStableFunc(want, func(a, b int) int {
			switch {
			case w[a] > w[b]:
				return -1
			case w[a] < w[b]:
				return 1
			}
			return 0
		})
		var pk packer
		got := make([]int, n)
		pk.sortDesc(w, got)
		if !slices.Equal(want, got) {
			t.Fatalf("sortDesc(%v) = %v, want %v", w, got, want)
		}
	})
}

// TestPropertiesPackFormsAgree checks that the linear-scan, heap and
// label-constrained (with distinct labels, so unconstrained) forms of the
// greedy packing give the same packs, including when float32 pack weights
// overflow to +Inf.
func TestPropertiesPackFormsAgree(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := rapid.IntRange(1, 20).Draw(t, "packs")
		c := rapid.IntRange(2, 5).Draw(t, "perPack")
		n := m * c
		w := make([]float32, n)
		for i := range w {
			w[i] = rapid.SampledFrom([]float32{0, 1, 2, 3e38, math.MaxFloat32, 0.5}).Draw(t, "w")
		}
		labels := seq(n)
		var a, b, l packer
		order := make([]int, n)
		pa, ra := make([]int, n), make([]int, n)
		pb, rb := make([]int, n), make([]int, n)
		pl, rl := make([]int, n), make([]int, n)
		prep := func(pk *packer) {
			pk.sortDesc(w, order)
			pk.weight = grow(pk.weight, m)
			pk.count = grow(pk.count, m)
			clear(pk.weight)
			clear(pk.count)
		}
		prep(&a)
		a.packLinear(w, m, c, order, pa, ra)
		prep(&b)
		b.packHeap(w, m, c, order, pb, rb)
		l.packRow(w, m, pl, rl, make([]int, n), labels, n)
		if !slices.Equal(pa, pb) || !slices.Equal(ra, rb) || !slices.Equal(pa, pl) || !slices.Equal(ra, rl) {
			t.Fatalf("w %v: linear %v/%v, heap %v/%v, labelled %v/%v", w, pa, ra, pb, rb, pl, rl)
		}
	})
}
